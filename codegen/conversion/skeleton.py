"""Skeleton modules for layers nobody can convert (``--allow-unsupported``).

For each layer without a converter (a custom layer, a ``Lambda``...), ``model.py`` gets a
clearly named ``nn.Module`` (``<KerasClass>Skeleton``) that holds the layer's weights as
``nn.Parameter``s under the Keras variable names and shapes (loaded from ``model.pt`` like
every other weight), documents the layer's config in its docstring and raises
``NotImplementedError`` naming the layer in ``forward``. The user writes one method; the
rest of the model, the state_dict and the call site already work. The skeleton sees its
inputs and returns its outputs in the Keras layout, as Keras's ``call()`` does.
"""

from __future__ import annotations

import pprint
import textwrap
from functools import partial
from typing import Any

import numpy as np

from codegen.ir.graph import Layer
from codegen.ir.layout import keras_order
from codegen.ir.naming import FILE_NAMES, MODULE_MEMBERS, Namespace, comment_text, to_class_name

from . import registry
from .engine import CallContext, Options, _unique_class, shape_text

MAX_CONFIG_LINES = 60
MAX_LIST_ITEMS = 16
MAX_STRING = 80

_TORCH_DTYPES = {
    "float16": "torch.float16",
    "float64": "torch.float64",
    "bfloat16": "torch.bfloat16",
    "int8": "torch.int8",
    "int16": "torch.int16",
    "int32": "torch.int32",
    "int64": "torch.int64",
    "uint8": "torch.uint8",
    "bool": "torch.bool",
}


def converter_for(layer: Layer, options: Options, reason: str) -> registry.Converter | None:
    """The converter of ``layer``: built-in or plugin, else a skeleton when allowed."""
    from .plugins import lookup

    conv = lookup(layer.class_name, layer.is_op)
    if conv is None and options.allow_unsupported:
        conv = registry.Converter(
            "skeleton", partial(convert_skeleton, reason=reason), registry.KERAS, False
        )
    return conv


def skeleton_layers(session) -> list[str]:
    """Names of the skeleton classes a conversion produced."""
    return list(dict.fromkeys(session.skeletons.values()))


def convert_skeleton(call, ctx: CallContext, reason: str = "") -> None:
    layer = ctx.layer
    session = ctx.builder.session
    ctx.config.read.update(ctx.config.keys())  # every option is documented, none ported
    params = _parameter_names(layer)
    name = session.skeletons.get(id(layer))
    if name is None:
        short = layer.class_name.rsplit(">", 1)[-1]
        name = _unique_class(session, to_class_name(short, fallback="Layer") + "Skeleton")
        session.skeletons[id(layer)] = name
        session.helper_sources[name] = _source(name, call, layer, params, reason)
        session.use_helper(name)
    attr = ctx.module(f"{name}()")
    for key, param in params.items():
        array = layer.weights[key]
        ctx.weight(param, array, key, "identity")
    args = ", ".join(
        ctx.input(i, keras_order(len(ctx.input_shape(i)))) for i in range(ctx.n_inputs)
    )
    layouts = [keras_order(t.rank) for t in call.outputs]
    if len(layouts) == 1:
        ctx.output(f"{attr}({args})", layouts[0])
    else:
        ctx.outputs(f"{attr}({args})", layouts)


def _parameter_names(layer: Layer) -> dict[str, str]:
    """Keras variable key -> attribute name (the Keras name made a safe identifier)."""
    namespace = Namespace(MODULE_MEMBERS | FILE_NAMES)
    return {key: namespace.name(key, fallback="weight") for key in layer.weights}


def _source(name: str, call, layer: Layer, params: dict[str, str], reason: str) -> str:
    from codegen.render.source import environment

    init, variables = [], []
    for key, param in params.items():
        array = np.asarray(layer.weights[key])
        shape = tuple(int(d) for d in array.shape)
        dims = ", ".join(str(d) for d in shape) if shape else "()"
        trainable = layer.trainable.get(key, True)
        kind = array.dtype.name
        if array.dtype.kind == "f":
            frozen = "" if trainable else ", requires_grad=False"
            init.append(f"self.{param} = nn.Parameter(torch.zeros({dims}){frozen})")
        else:
            dtype = _TORCH_DTYPES.get(kind, "torch.int64")
            init.append(f"self.register_buffer({param!r}, torch.zeros({dims}, dtype={dtype}))")
        flags = "" if trainable else ", not trainable"
        variables.append(
            f"{comment_text(key)}: {shape_text(shape) if shape else '()'} {kind}{flags} -> self.{param}"
        )
    n_in, n_out = len(call.inputs), len(call.outputs)
    params_ = ["x"] if n_in == 1 else [f"x{i}" for i in range(n_in)]
    params_ = [f"{p}: torch.Tensor" for p in params_] if n_in else []
    annotation = (
        " -> torch.Tensor"
        if n_out == 1
        else " -> tuple[" + ", ".join(["torch.Tensor"] * n_out) + "]"
    )
    ins = ", ".join(shape_text(t.shape) for t in call.inputs) or "no tensors"
    outs = ", ".join(shape_text(t.shape) for t in call.outputs)
    signature = f"{len(call.inputs)} input(s) {ins} -> {n_out} output(s) {outs}"
    if layer.is_op and (call.args or call.kwargs):  # a keras.ops call: its constant arguments
        arguments = _clean({"args": list(call.args), "kwargs": dict(call.kwargs)})
        signature += f"; arguments {arguments} (TensorRef(i) is input i)"
    intro = f"keras2torch has no converter for {layer.class_name}"
    intro += f": {reason.rstrip('.')}." if reason else "."
    intro += (
        " This module only holds the layer's weights (loaded from model.pt): write forward()"
        " and the rest of the model already works. Inputs and outputs are in the Keras layout"
        " (channels last), as Keras's call() sees them."
    )
    if layer.class_name == "Lambda" and "never" not in reason:
        intro += (
            " A Lambda's Python code is stored as marshalled bytecode, which keras2torch never"
            " loads or runs: port it from your Keras source."
        )
    elif layer.weights and all(k.startswith("variable_") for k in layer.weights):
        intro += (
            " The .keras format stores no variable names: they are numbered in the order the"
            " layer created them."
        )
    message = (
        f"port the Keras layer {comment_text(layer.name, 60)} ({comment_text(layer.class_name, 60)}) "
        f"by hand: write {name}.forward() in model.py"
    )
    view = dict(
        name=name,
        layer_label=comment_text(f"{layer.name!r} ({layer.class_name})"),
        intro=textwrap.wrap(comment_text(intro, max_length=None), width=84),
        signature=comment_text(signature),
        variables=variables,
        config_lines=_config_lines(layer.config),
        init=init,
        params=params_,
        annotation=annotation,
        message=repr(message),
    )
    return environment().get_template("skeleton.py.j2").render(**view).strip()


def _config_lines(config: dict) -> list[str]:
    cleaned = _clean({k: v for k, v in config.items() if k != "name"})
    text = pprint.pformat(cleaned, width=84, sort_dicts=False)
    lines = [comment_text(line, max_length=120) for line in text.splitlines()]
    if len(lines) > MAX_CONFIG_LINES:
        rest = len(lines) - MAX_CONFIG_LINES
        lines = lines[:MAX_CONFIG_LINES] + [f"... ({rest} more lines)"]
    return lines


def _clean(value: Any, depth: int = 0) -> Any:
    """The config, compacted for reading: dtype policies by name, long values shortened."""
    if depth > 12:
        return "..."
    if isinstance(value, dict):
        if value.get("class_name") == "__lambda__":
            return "<marshalled Python bytecode, never loaded>"
        if value.get("class_name") == "DTypePolicy" and isinstance(value.get("config"), dict):
            return value["config"].get("name", "float32")
        return {str(k): _clean(v, depth + 1) for k, v in value.items() if k != "shared_object_id"}
    if isinstance(value, (list, tuple)):
        items = [_clean(v, depth + 1) for v in value[:MAX_LIST_ITEMS]]
        if len(value) > MAX_LIST_ITEMS:
            items.append(f"... {len(value) - MAX_LIST_ITEMS} more")
        return items if isinstance(value, list) else tuple(items)
    if isinstance(value, str) and len(value) > MAX_STRING:
        return value[:MAX_STRING] + f"... ({len(value)} characters)"
    if isinstance(value, (int, float, bool)) or value is None or isinstance(value, str):
        return value
    return repr(value)[:MAX_STRING]


def check_verifiable(generated, model) -> None:
    """Refuse ``--verify`` up front when the port or the Keras model cannot run."""
    from codegen.errors import InputError
    from codegen.read.standins import standin_layers

    skeletons = list(dict.fromkeys(generated.session.skeletons.values()))
    if skeletons:
        raise InputError(
            f"cannot verify: {len(skeletons)} layer(s) became skeletons to write by hand "
            f"({', '.join(skeletons)}); convert without --verify, write their forward() and "
            "run `keras2torch verify`"
        )
    if model is not None:
        missing = standin_layers(model)
    else:  # read without Keras: which classes would Keras not have when it loads the file
        missing = [
            (layer.name, layer.class_name)
            for layer in generated.graph.walk_layers()
            if not layer.is_op and layer.subgraph is None and not _keras_can_run(layer.class_name)
        ]
    if missing:
        names = ", ".join(f"{comment_text(n)!r} ({comment_text(c)})" for n, c in missing[:5])
        raise InputError(
            f"cannot verify: Keras cannot run layer(s) {names} without their Python class; "
            "pass the file that defines it (register_keras_serializable) with --plugin, "
            "or convert without --verify"
        )


def _keras_can_run(class_name: str) -> bool:
    from codegen.read.keras_import import import_keras

    from .plugins import owner

    if class_name == "Lambda":  # safe mode never loads its code
        return False
    builtin = registry.lookup(class_name)
    if builtin is not None and owner(builtin.key) is None:
        return True  # built-in converters exist only for Keras's own classes
    keras = import_keras()
    if keras.saving.get_registered_object(class_name) is not None:
        return True
    return ">" not in class_name and isinstance(getattr(keras.layers, class_name, None), type)

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

from .context import CallContext
from .dtypes import TORCH_DTYPES
from .model import shape_text, unique_class
from .registry import KERAS, Converter

MAX_CONFIG_LINES = 60
MAX_LIST_ITEMS = 16
MAX_STRING = 80


def skeleton_converter(layer: Layer, reason: str) -> Converter:
    """The fallback converter (``--allow-unsupported``): a skeleton module for ``layer``."""
    return Converter("skeleton", partial(convert_skeleton, reason=reason), KERAS, False)


def skeleton_layers(session) -> list[str]:
    """Names of the skeleton classes a conversion produced."""
    return list(dict.fromkeys(session.skeletons.values()))


def convert_skeleton(call, ctx: CallContext, reason: str = "") -> None:
    layer = ctx.layer
    session = ctx.session
    ctx.config.read.update(ctx.config.keys())  # every option is documented, none ported
    params = _parameter_names(layer)
    name = session.skeletons.get(id(layer))
    if name is None:
        short = layer.class_name.rsplit(">", 1)[-1]
        name = unique_class(session, to_class_name(short, fallback="Layer") + "Skeleton")
        session.skeletons[id(layer)] = name
        session.helper_views[name] = ("skeleton.py.j2", _view(name, call, layer, params, reason))
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


def _view(name: str, call, layer: Layer, params: dict[str, str], reason: str) -> dict:
    """What ``skeleton.py.j2`` needs to write the module (rendered with the rest of the file)."""
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
            dtype = TORCH_DTYPES.get(kind, "torch.int64")
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
    reason, _, code = reason.partition("\n")  # a Lambda's disassembly follows its reason
    code_lines = [comment_text(line) for line in code.splitlines()[:100]]
    intro = f"keras2torch has no converter for {layer.class_name}"
    intro += f": {reason.rstrip('.')}." if reason else "."
    intro += (
        " This module only holds the layer's weights (loaded from model.pt): write forward()"
        " and the rest of the model already works. Inputs and outputs are in the Keras layout"
        " (channels last), as Keras's call() sees them."
    )
    if layer.class_name == "Lambda" and "never" not in reason:
        intro += (
            " A Lambda's Python code is stored as marshalled bytecode, which keras2torch reads"
            " as data and never loads or runs: port it from your Keras source."
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
        code_lines=code_lines,
        variables=variables,
        config_lines=_config_lines(layer.config),
        init=init,
        params=params_,
        annotation=annotation,
        message=repr(message),
    )
    return view


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

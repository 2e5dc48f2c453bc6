"""A live model's ``Lambda`` layer as keras.ops operations, translated as in a file.

The layer's ``get_config()`` holds its function as Keras saves it (the marshalled code,
read as data by :mod:`codegen.read.lambda_layer`); the operations it becomes get their
shapes from the file reader's shape rules, and the result must have the shape Keras gave the
layer's output, or the layer is refused.
"""

from __future__ import annotations

from typing import Any

from codegen.ir.graph import Call, Layer, Tensor, TensorRef

from . import layers as _rules  # noqa: F401  (registers the shape rules)
from .lambda_functions import resolve_global
from .lambda_layer import LambdaUnsupported, OpSession, translate_lambda
from .shapes import ShapeError, Site, infer
from .tf_functions import TFFunctionUnsupported


def translate_live_lambda(
    name: str,
    config: dict,
    inputs: Any,
    expected: Tensor,
    keras_version: str,
    standin: bool = False,
    function: Any = None,
) -> list[Call]:
    """The calls computing the Lambda; the last one's output stands for ``expected``."""
    emitted: list[Call] = []
    if function is not None:
        _check_globals(function)

    def emit(class_name, op_config, op_args, op_kwargs=None, is_op=True, suffix=""):
        op_name = f"{name}_{suffix or len(emitted)}"
        layer = Layer(
            name=op_name, class_name=class_name, config=dict(op_config, name=op_name), is_op=is_op
        )
        layer.origin = (name, "Lambda")
        call = _make_call(layer, tuple(op_args), dict(op_kwargs or {}))
        emitted.append(call)
        return list(call.outputs)

    ops = OpSession(emit, lambda: list(emitted), emitted.clear)
    output = translate_lambda(config, inputs, ops, keras_version)
    if tuple(output.shape[1:]) != tuple(expected.shape[1:]) or output.dtype != expected.dtype:
        hint = (
            " (Keras loaded it as a stand-in, whose output shape is a guess: convert the file"
            " with --reader file)"
            if standin
            else ""
        )
        raise LambdaUnsupported(
            f"its translation gives {output.shape[1:]} {output.dtype}, Keras "
            f"{expected.shape[1:]} {expected.dtype}{hint}"
        )
    emitted[-1].layer.name = name
    emitted[-1].layer.config["name"] = name
    emitted[-1].outputs[0] = expected
    expected.producer, expected.index = emitted[-1], 0
    return emitted


# What a global name must be for the translation's reading of it to hold (module names).
_EXPECTED_MODULES = {"backend": "backend", "tf": "tensorflow", "ops": "ops", "keras": "keras"}


def _check_globals(function: Any) -> None:
    """In a live model the lambda's globals can be looked at: ``K`` must be a Keras backend
    module, ``tf`` TensorFlow, ``ops`` keras.ops, or the translation would misread them."""
    code = getattr(function, "__code__", None)
    names = getattr(code, "co_names", ())
    scope = getattr(function, "__globals__", {})
    for name in names:
        family = resolve_global(name)
        if family is None or name not in scope:
            continue
        module = getattr(scope[name], "__name__", "")
        if not isinstance(module, str) or _EXPECTED_MODULES[family] not in module:
            raise LambdaUnsupported(
                f"its global name {name!r} is {module or type(scope[name]).__name__!r}, "
                f"not the module the translation takes it for ({family})"
            )


def _make_call(layer: Layer, args: tuple, kwargs: dict) -> Call:
    flat: list[Tensor] = []

    def plain(value):
        if isinstance(value, Tensor):
            flat.append(value)
            return TensorRef(len(flat) - 1)
        if isinstance(value, (list, tuple)):
            return type(value)(plain(v) for v in value)
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    call = Call(layer=layer, inputs=[], outputs=[], args=plain(args), kwargs=plain(kwargs))
    call.inputs = flat
    layer.calls.append(call)
    site = Site(
        layer.class_name,
        layer.config,
        [t.shape for t in flat],
        [t.dtype for t in flat],
        call.args,
        call.kwargs,
    )
    try:
        results = infer(site, layer.is_op)
    except ShapeError as exc:
        raise TFFunctionUnsupported(f"cannot compute the shape of its {layer.class_name}: {exc}")
    for i, (shape, dtype) in enumerate(results):
        call.outputs.append(Tensor(shape=tuple(shape), dtype=str(dtype), producer=call, index=i))
    return call

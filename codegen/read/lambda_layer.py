"""A ``Lambda`` layer of a model file as keras.ops operations, or one clear refusal.

The stored function (:mod:`codegen.read.lambda_payload`) is read for every Python version
whose code-object layout fits it; each reading is translated
(:mod:`codegen.read.lambda_eval`) and the operations it emits are compared: the versions
that translate must all give the same operations, else the file is refused as ambiguous.
Anything that does not translate is refused with the disassembly and the instruction that
stopped it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from codegen.ir.graph import Call, Tensor

from .lambda_bytecode import disassembly
from .lambda_eval import LambdaUntranslatable, evaluate
from .lambda_payload import LambdaPayloadError, candidates, payload

PLUGIN_HINT = (
    "rewrite it with built-in layers or keras.ops, or port it with a --plugin "
    "(a converter registered for the layer name)"
)
_KNOWN_OPTIONS = {
    "name",
    "trainable",
    "dtype",
    "function",
    "function_type",
    "module",
    "output_shape",
    "output_shape_type",
    "output_shape_module",
    "arguments",
    "mask",
    "mask_type",
    "batch_input_shape",
    "batch_shape",
}


class LambdaUnsupported(Exception):
    """The Lambda cannot be translated exactly (the message says why, for the user)."""


class OpSession:
    """What the translation needs from the file reader: emit operations, undo them."""

    def __init__(
        self,
        emit: Callable[..., list],
        emitted: Callable[[], list[Call]],
        rollback: Callable[[], None],
    ):
        self.emit, self.emitted, self.rollback = emit, emitted, rollback


def translate_lambda(config: dict, inputs: Any, ops: OpSession, keras_version: str) -> Tensor:
    """The output tensor of the Lambda called on ``inputs``; LambdaUnsupported if it cannot be."""
    _check_options(config)
    try:
        stored = payload(config.get("function"))
        readings = candidates(stored.code)
    except LambdaPayloadError as exc:
        raise LambdaUnsupported(f"its Python code cannot be read: {exc}; {PLUGIN_HINT}") from None
    arguments = config.get("arguments") or {}
    if not isinstance(arguments, dict):
        raise LambdaUnsupported(f"its arguments are not a dict; {PLUGIN_HINT}")
    tf2 = _tf2(keras_version)
    results, failures = [], []
    for reading in readings:
        try:
            output = evaluate(
                reading.code,
                reading.version,
                inputs,
                arguments,
                stored.defaults,
                stored.closure,
                ops.emit,
                tf2,
            )
        except LambdaUntranslatable as exc:
            failures.append((reading, exc))
            ops.rollback()
            continue
        results.append((reading, _signature(ops.emitted(), inputs, output)))
        ops.rollback()
    if not results:
        reading, exc = max(failures, key=lambda f: f[1].progress)
        where = f" at offset {exc.offset}" if exc.offset is not None else ""
        raise LambdaUnsupported(
            f"its Python code (read as Python {_v(reading.version)} bytecode) cannot be "
            f"translated exactly: {exc}{where}; {PLUGIN_HINT}\n"
            + disassembly(reading.code, reading.version, exc.offset)
        )
    if len({sig for _, sig in results}) > 1:
        versions = ", ".join(_v(r.version) for r, _ in results)
        raise LambdaUnsupported(
            f"its Python code reads differently as Python {versions} bytecode and the file "
            f"does not say which Python wrote it; {PLUGIN_HINT}"
        )
    reading = results[0][0]
    before = len(ops.emitted())
    output = evaluate(
        reading.code,
        reading.version,
        inputs,
        arguments,
        stored.defaults,
        stored.closure,
        ops.emit,
        tf2,
    )
    if len(ops.emitted()) == before or output is not ops.emitted()[-1].outputs[0]:
        # It returns one of its inputs (``lambda x: x``, ``lambda v: v[0]``): a layer call
        # of its own keeps the graph's calls and tensors one to one.
        (output,) = ops.emit("Identity", {}, (output,), is_op=False)
    _check_output_shape(config, output)
    return output


def _v(version: tuple[int, int]) -> str:
    return f"{version[0]}.{version[1]}"


def _tf2(keras_version: str) -> bool:
    """Whether the file was written on TensorFlow 2 (Keras 3, or tf.keras/Keras 2.4+)."""
    try:
        major, minor = (int(p) for p in str(keras_version).split(".")[:2])
    except ValueError:
        return False
    return (major, minor) >= (2, 4)


def _check_options(config: dict) -> None:
    unknown = sorted(set(config) - _KNOWN_OPTIONS)
    if unknown:
        raise LambdaUnsupported(f"unsupported option(s) {', '.join(unknown)}; {PLUGIN_HINT}")
    if config.get("mask") is not None:
        raise LambdaUnsupported(f"it computes a Keras mask (mask=...); {PLUGIN_HINT}")
    function_type = config.get("function_type", "lambda")
    if function_type != "lambda":
        raise LambdaUnsupported(
            f"its function is stored as {str(function_type)[:30]!r}, not as Python code "
            f"in the file; {PLUGIN_HINT}"
        )


def recorded_output_shape(config: dict, inputs: Any) -> tuple | None:
    """The output shape the config declares (``output_shape`` without the batch axis)."""
    shape = config.get("output_shape")
    if config.get("output_shape_type", "raw") != "raw" or not isinstance(shape, (list, tuple)):
        return None
    if not all(d is None or (isinstance(d, int) and not isinstance(d, bool)) for d in shape):
        return None
    first = inputs[0] if isinstance(inputs, (list, tuple)) and inputs else inputs
    batch = first.shape[0] if isinstance(first, Tensor) and first.shape else None
    return (batch, *shape)


def _check_output_shape(config: dict, output: Tensor) -> None:
    declared = recorded_output_shape(config, [output])
    if declared is None:
        return
    got = tuple(output.shape)
    same = len(declared) == len(got) and all(
        a is None or b is None or a == b for a, b in zip(declared[1:], got[1:])
    )
    if not same:
        raise LambdaUnsupported(
            f"its translation gives shape {got[1:]} but the file declares output_shape "
            f"{declared[1:]}; {PLUGIN_HINT}"
        )


def _signature(emitted: list[Call], inputs: Any, output: Tensor) -> str:
    """The emitted operations as text, tensors named by where they come from."""
    flat = inputs if isinstance(inputs, (list, tuple)) else [inputs]
    names: dict[int, str] = {id(t): f"in{i}" for i, t in enumerate(flat)}
    parts = []
    for j, call in enumerate(emitted):
        for k, t in enumerate(call.outputs):
            names[id(t)] = f"op{j}.{k}"
        config = {k: v for k, v in call.layer.config.items() if k != "name"}
        parts.append(
            json.dumps(
                [
                    call.layer.class_name,
                    repr(config),
                    repr(call.args),
                    repr(call.kwargs),
                    [names.get(id(t), "?") for t in call.inputs],
                ]
            )
        )
    parts.append(names.get(id(output), "?"))
    return "\n".join(parts)

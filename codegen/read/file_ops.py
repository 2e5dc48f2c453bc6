"""Layers of a model file that become operations: tf.keras TensorFlow-op layers and Lambdas.

A mixin of the file reader's model builder (:mod:`codegen.read.from_file`): a
``TFOpLambda``/``TensorFlowOpLayer`` node is translated by :mod:`codegen.read.tf_functions`,
a ``Lambda``'s bytecode by :mod:`codegen.read.lambda_layer`; their operations are emitted as
calls of synthetic layers named after the file's layer, and undone together when the
translation fails. A layer that cannot be translated is kept as one unsupported call whose
output shape is the file's ``output_shape``, else assumed equal to its input's (its
skeleton says so).
"""

from __future__ import annotations

from collections.abc import Callable

from codegen.ir.graph import Call, Layer, Tensor, TensorRef

from .lambda_layer import LambdaUnsupported, OpSession, recorded_output_shape, translate_lambda
from .legacy_config import LayerSpec
from .tf_functions import TFFunctionUnsupported, translate
from .tf_node_defs import node_def_call


def _flatten(value) -> list:
    if isinstance(value, (list, tuple)):
        return [x for v in value for x in _flatten(v)]
    if isinstance(value, dict):
        return [x for k in sorted(value) for x in _flatten(value[k])]
    return [value]


class OperationReading:
    """The builder's methods for layers that become operations (see the module's doc)."""

    def _tf_function(
        self, spec: LayerSpec, layer: Layer, args: tuple, kwargs: dict
    ) -> list[Tensor]:
        function = str(spec.config.get("function", ""))
        first = args[0] if args else None
        ops = self._op_session(spec, lambda: f"tf.{function}")
        node_def = spec.class_name == "TensorFlowOpLayer"  # tf.keras 2.0-2.3: a NodeDef
        try:
            if node_def:
                tensors = [v for v in _flatten(args) if isinstance(v, Tensor)]
                function, first, kwargs = node_def_call(spec.config, tensors)
            return list(translate(function, first, kwargs, ops.emit))
        except TFFunctionUnsupported as exc:
            ops.rollback()
            note = " (its output shape is assumed equal to its input's)"
            return self._unsupported_call(layer, args, kwargs, str(exc) + note, "input")

    def _lambda(self, spec: LayerSpec, layer: Layer, args: tuple, kwargs: dict) -> list[Tensor]:
        """A Lambda's Python code translated into operations (never run: see lambda_layer)."""
        ops = self._op_session(spec, lambda: "its code")
        inputs = args[0] if len(args) == 1 else None
        try:
            if inputs is None or set(kwargs) - {"mask", "training"} or kwargs.get("mask"):
                raise LambdaUnsupported("it is called with arguments besides its input")
            output = translate_lambda(spec.config, inputs, ops, str(self.keras_version))
            self._rename_output(spec, ops.emitted(), output)
            return [output]
        except LambdaUnsupported as exc:
            ops.rollback()
            shape = recorded_output_shape(spec.config, args[0] if args else None)
            note = (
                f" (its output shape {shape[1:]} is the file's output_shape)"
                if shape is not None
                else " (its output shape is assumed equal to its input's)"
            )
            head, newline, code = str(exc).partition("\n")  # the note before the disassembly
            reason = head + note + newline + code
            return self._unsupported_call(layer, args, kwargs, reason, shape or "input")

    def _rename_output(self, spec: LayerSpec, emitted: list[Call], output: Tensor) -> None:
        """The operation giving the Lambda's result takes the Lambda's name; comments name
        the Lambda for each of its operations."""
        last = output.producer.layer if output.producer is not None else None
        first = next((c.layer for c in emitted if c.layer.name == spec.name), None)
        for op in {id(c.layer): c.layer for c in emitted}.values():
            op.origin = (spec.name, "Lambda")
        if last is None or first is None or last is first:
            return
        first.name, last.name = last.name, spec.name
        first.config["name"], last.config["name"] = first.name, last.name

    def _op_session(self, spec: LayerSpec, what: Callable[[], str]) -> OpSession:
        """Operations emitted for one layer of the file, named after it, undone together."""
        emitted: list[Call] = []
        before = len(self.calls)

        def emit(class_name, config, op_args, op_kwargs=None, is_op=True, suffix=""):
            base = spec.name if not suffix else f"{spec.name}_{suffix}"
            op_layer = self._synthetic_layer(base, class_name, config, is_op, own=not suffix)
            call = self._make_call(op_layer, tuple(op_args), dict(op_kwargs or {}))
            emitted.append(call)
            if id(call) in self.unknown:
                raise TFFunctionUnsupported(f"{what()}: cannot compute the shape of its result")
            return list(call.outputs)

        def rollback():
            for call in emitted:  # drop what was emitted before the failure
                self.taken.discard(call.layer.name)
                self.unknown.discard(id(call))
            emitted.clear()
            del self.calls[before:]

        return OpSession(emit, lambda: list(emitted), rollback)

    def _unsupported_call(
        self, layer: Layer, args, kwargs, reason: str, shape: tuple | str | None = None
    ) -> list[Tensor]:
        """A call reported as unsupported; with ``shape`` (or ``"input"``: its first input's)
        later layers are still read with shapes, else they are only kept connected."""
        layer.unsupported = reason
        flat = [v for v in _flatten((args, kwargs)) if isinstance(v, Tensor)]
        call = Call(layer=layer, inputs=flat, outputs=[])
        call.args = (TensorRef(0),) if flat else ()
        call.index = len(layer.calls)
        layer.calls.append(call)
        source = flat[0] if flat else Tensor(shape=(None,))
        out_shape = source.shape if shape is None or shape == "input" else shape
        call.outputs.append(Tensor(shape=out_shape, dtype=source.dtype, producer=call, index=0))
        self.calls.append(call)
        self.open_outputs.add(id(call))
        if shape is None:
            self.unknown.add(id(call))
        return call.outputs

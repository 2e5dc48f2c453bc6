"""Read a Keras model file into a :class:`Graph` without TensorFlow or Keras.

The file's config (:mod:`codegen.legacy_config`) gives the layers and their calls, the shape
rules (:mod:`codegen.shapes`) give every tensor its Keras shape, tf.keras TensorFlow-op
layers become keras.ops operations (:mod:`codegen.tf_functions`) and the weights are read
and keyed as Keras 3 keys them (:mod:`codegen.stored_weights`). The result is the Graph
:func:`codegen.read_keras.read_model` would give for the same model: calls in the same order,
the same tensors, masks recorded the way Keras 3 records them.

Only ``h5py``, ``numpy``, ``zipfile`` and ``json`` are used, and nothing from the file is
executed: a ``Lambda`` layer is reported as unsupported, never unmarshalled.
"""

from __future__ import annotations

import heapq
import os
import re
from typing import Any

import numpy as np

from codegen.errors import InputError
from codegen.ir.graph import Call, Graph, Layer, Tensor, TensorRef

from .formats import ModelFile, open_model_file
from .keras_classes import AUGMENTATION_LAYERS
from .legacy_config import TF_OP_LAYERS, LayerSpec, ModelSpec, NodeSpec, Ref, parse_model
from .shapes import ShapeError, Site, infer
from .stored_weights import (
    Var,
    WeightsUnsupported,
    assign_legacy,
    from_cudnn,
    from_theano,
    legacy_group_weights,
    lora_factor,
    name_parts,
    variables,
)
from .tf_functions import TFFunctionUnsupported, translate


class FileReaderUnsupported(InputError):
    """Something this reader cannot reproduce exactly; the Keras reader may still read it."""


def read_file(path: str | os.PathLike, check_shapes: bool = False) -> Graph:
    """The Graph of a full-model ``.h5`` or a ``.keras`` file, read without Keras.

    ``check_shapes``: fail when a shape rule disagrees with a shape the file records (a
    self-check for the rules; the file's shapes are used either way).
    """
    with open_model_file(path) as model_file:
        return read_model_file(model_file, check_shapes)


def read_model_file(model_file: ModelFile, check_shapes: bool = False) -> Graph:
    spec = parse_model(model_file.config, model_file.keras_major)
    builder = _ModelBuilder(spec)
    builder.theano = model_file.kind == "h5" and str(model_file.backend).lower() == "theano"
    graph = builder.build()
    if check_shapes:
        mismatches = builder.all_mismatches()
        if mismatches:
            raise AssertionError("shape rules disagree with the file:\n" + "\n".join(mismatches))
    if model_file.weights is not None:
        if model_file.kind == "keras":
            builder.load_zip_weights(model_file.weights, "")
        else:
            builder.load_legacy_weights(model_file.weights)
    else:
        builder.check_no_weights()
    return graph


def spec_has_lambda(model_file: ModelFile) -> list[str]:
    """Names of Lambda layers anywhere in the model (they hold Python code)."""
    spec = parse_model(model_file.config, model_file.keras_major)
    found = []

    def walk(model: ModelSpec):
        for layer in model.layers:
            if layer.class_name == "Lambda":
                found.append(layer.name)
            inner = layer.config.get("layer") if isinstance(layer.config, dict) else None
            if isinstance(inner, dict) and inner.get("class_name") == "Lambda":
                found.append(layer.name)
            if layer.model is not None:
                walk(layer.model)

    walk(spec)
    return found


# Keras 3 records these call arguments even when the caller gave none (see Layer.__call__):
# the input's mask for layers whose call() takes ``mask=`` ...
_MASK_ARGUMENT = {
    "BatchNormalization",
    "Bidirectional",
    "ConvLSTM1D",
    "ConvLSTM2D",
    "ConvLSTM3D",
    "GRU",
    "GlobalAveragePooling1D",
    "LSTM",
    "RNN",
    "SimpleRNN",
    "Softmax",
    "TimeDistributed",
}
# ... and ``training`` where call()'s default is not None.
_TRAINING_DEFAULT = {
    name: False
    for name in [
        "AlphaDropout",
        "ConvLSTM1D",
        "ConvLSTM2D",
        "ConvLSTM3D",
        "Dropout",
        "GRU",
        "GaussianDropout",
        "GaussianNoise",
        "LSTM",
        "RNN",
        "SimpleRNN",
        "SpatialDropout1D",
        "SpatialDropout2D",
        "SpatialDropout3D",
    ]
} | {name: True for name in (*AUGMENTATION_LAYERS, "CenterCrop", "Resizing")}
# Layers whose output carries the mask of their first input (Keras's default compute_mask).
_KEEPS_MASK = set(
    [
        "Activation",
        "ELU",
        "LeakyReLU",
        "PReLU",
        "ReLU",
        "Softmax",
        "Dense",
        "Identity",
        "BatchNormalization",
        "GroupNormalization",
        "LayerNormalization",
        "UnitNormalization",
        "Normalization",
        "Rescaling",
        "ActivityRegularization",
        "AlphaDropout",
        "Dropout",
        "GaussianDropout",
        "GaussianNoise",
        "SpatialDropout1D",
        "SpatialDropout2D",
        "SpatialDropout3D",
        "MultiHeadAttention",
        "GroupedQueryAttention",
        "GroupQueryAttention",
    ]
)
_MERGES = {"Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum"}
_RNNS = {"LSTM", "GRU", "SimpleRNN", "RNN", "ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D"}
_MASK_FLAG = object()  # a Keras 3 mask recorded in the file: only whether there is one matters


def _flatten(value) -> list:
    if isinstance(value, (list, tuple)):
        return [x for v in value for x in _flatten(v)]
    if isinstance(value, dict):
        return [x for k in sorted(value) for x in _flatten(value[k])]
    return [value]


class _ModelBuilder:
    """Builds the Graph of one (possibly nested) model spec."""

    def __init__(self, spec: ModelSpec, trainable: bool = True) -> None:
        self.spec = spec
        # Keras 2 configs and Sequential configs do not record what Keras 3 adds to each call
        # (masks and their operations, ``training``): make them as Keras 3 would.
        self.synthesize_masks = spec.legacy or spec.class_name == "Sequential"
        self.trainable = trainable and spec.trainable
        self.layers: dict[str, Layer] = {}
        self.specs: dict[int, LayerSpec] = {}  # id(Layer) -> spec (None for synthetic ones)
        self.children: dict[int, _ModelBuilder] = {}  # id(Layer) -> builder of a nested model
        self.outputs: dict[tuple[str, int], list[Tensor]] = {}
        self.masks: dict[int, Any] = {}  # id(tensor) -> its Keras mask (a Tensor or _MASK_FLAG)
        self.calls: list[Call] = []
        self.unknown: set[int] = set()  # calls whose output shapes could not be known
        self.taken: set[str] = set()  # names of the layers made here (operations)
        self.mismatches: list[str] = []  # shape rules that disagree with shapes in the file
        self.theano = False  # weights saved by Keras 2 with the Theano backend
        self.graph: Graph | None = None

    # -- layers ---------------------------------------------------------------------------
    def _layer(self, spec: LayerSpec) -> Layer:
        layer = self.layers.get(spec.name)
        if layer is not None:
            return layer
        layer = Layer(
            name=spec.name, class_name=spec.class_name, config=spec.config, is_op=spec.is_op
        )
        if spec.custom is not None:
            layer.class_name = spec.custom
        if spec.class_name == "Lambda":
            layer.unsupported = (
                "a Lambda layer holds Python code, which keras2torch never unmarshals or runs; "
                "rewrite it with built-in layers or keras.ops"
            )
        if spec.class_name == "TensorFlowOpLayer":
            node_def = spec.config.get("node_def") or {}
            layer.unsupported = (
                f"TensorFlow op {node_def.get('op', '?')!r} saved by tf.keras 2.0-2.3 "
                "(TensorFlowOpLayer) is not supported"
            )
        if spec.model is not None:
            child = _ModelBuilder(spec.model, self.trainable and spec.trainable)
            layer.subgraph = child.build()
            self.children[id(layer)] = child
        if spec.class_name == "TimeDistributed":
            inner = spec.config.get("layer")
            if isinstance(inner, dict) and inner.get("class_name") in (
                "Sequential",
                "Functional",
                "Model",
            ):
                sub = parse_model(inner, 2 if self.spec.legacy else 3)
                child = _ModelBuilder(sub, self.trainable and spec.trainable)
                layer.wrapped = child.build()
                self.children[id(layer)] = child
        self.layers[spec.name] = layer
        self.specs[id(layer)] = spec
        return layer

    def _synthetic_layer(
        self, base: str, class_name: str, config: dict, is_op: bool, own: bool = False
    ) -> Layer:
        """A layer the config does not list: an operation Keras 3 would record (a mask's
        not_equal) or one a TensorFlow function becomes (``own``: it may take ``base``, the
        name of the TFOpLambda layer it replaces)."""
        name, count = base, 0
        while name in self.taken or (name in self.layers and not (own and name == base)):
            count += 1
            name = f"{base}_{count}"
        self.taken.add(name)
        return Layer(name=name, class_name=class_name, config=dict(config, name=name), is_op=is_op)

    # -- calls ----------------------------------------------------------------------------
    def _make_call(
        self, layer: Layer, args: tuple, kwargs: dict, recorded: list | None = None
    ) -> Call:
        """A call of ``layer`` on Tensor-valued ``args``/``kwargs``; outputs shaped by rule."""
        flat = [v for v in _flatten((args, kwargs)) if isinstance(v, Tensor)]
        positions = {id(t): i for i, t in enumerate(flat)}

        def plain(value):
            if isinstance(value, Tensor):
                return TensorRef(positions[id(value)])
            if isinstance(value, tuple):
                return tuple(plain(v) for v in value)
            if isinstance(value, list):
                return [plain(v) for v in value]
            if isinstance(value, dict):
                return {k: plain(v) for k, v in value.items()}
            return value

        call = Call(
            layer=layer,
            inputs=flat,
            outputs=[],
            args=plain(tuple(args)),
            kwargs=plain(dict(kwargs)),
        )
        call.index = len(layer.calls)
        layer.calls.append(call)
        results = self._output_specs(call, recorded)
        for i, (shape, dtype) in enumerate(results):
            tensor = Tensor(shape=tuple(shape), dtype=str(dtype), producer=call, index=i)
            call.outputs.append(tensor)
        self.calls.append(call)
        return call

    def _output_specs(self, call: Call, recorded: list | None) -> list:
        layer = call.layer
        results = None
        if not layer.unsupported and not any(id(t.producer) in self.unknown for t in call.inputs):
            try:
                results = self._infer(call)
            except ShapeError as exc:
                complete = recorded and all(r is not None for r in recorded)
                if _has_converter(layer) and not complete:
                    raise FileReaderUnsupported(
                        f"layer {layer.name!r} ({layer.class_name}): {exc} in the file reader"
                    ) from None
                results = list(recorded) if complete else None
        if results is not None and recorded:
            for i, value in enumerate(recorded):
                if value is None or i >= len(results):
                    continue
                if tuple(results[i][0]) != tuple(value[0]) or results[i][1] != value[1]:
                    self.mismatches.append(
                        f"{layer.name} ({layer.class_name}) output {i}: rule {results[i]}, file {value}"
                    )
                results[i] = value
        if results is None:
            # Only to keep the graph connected: the call is reported as unsupported.
            first = call.inputs[0] if call.inputs else Tensor(shape=(None,))
            results = [(first.shape, first.dtype)]
            self.unknown.add(id(call))
        return results

    def _infer(self, call: Call) -> list:
        layer = call.layer
        if layer.subgraph is not None:
            return _rerun(
                layer.subgraph, [t.shape for t in call.inputs], [t.dtype for t in call.inputs]
            )
        wrapped = getattr(layer, "wrapped", None)
        if wrapped is not None and call.inputs:  # TimeDistributed(model): the model per step
            x = call.inputs[0].shape
            step = _rerun(wrapped, [(x[0], *x[2:])], [call.inputs[0].dtype])
            return [((x[0], x[1], *shape[1:]), dtype) for shape, dtype in step]
        site = Site(
            layer.class_name,
            layer.config,
            [t.shape for t in call.inputs],
            [t.dtype for t in call.inputs],
            call.args,
            call.kwargs,
        )
        return infer(site, layer.is_op)

    # -- building -------------------------------------------------------------------------
    def build(self) -> Graph:
        spec = self.spec
        for layer_spec in spec.layers:
            self._layer(layer_spec)
        pending = {s.name: list(enumerate(s.nodes)) for s in spec.layers if s.nodes}
        for layer_spec in spec.layers:
            if layer_spec.class_name == "InputLayer":
                self._input(layer_spec)
        recorded = self._recorded_shapes()
        # Keras's own order: sweep the layers, calling each node whose inputs exist.
        while pending:
            progress = False
            for layer_spec in spec.layers:
                queue = pending.get(layer_spec.name)
                while queue:
                    position, node = queue[0]
                    resolved = self._resolve(node)
                    if resolved is None:
                        break
                    self._node(
                        layer_spec, position, *resolved, recorded.get((layer_spec.name, position))
                    )
                    queue.pop(0)
                    progress = True
                if queue == []:
                    pending.pop(layer_spec.name, None)
            if not progress:
                missing = sorted(pending)
                raise InputError(
                    f"model {spec.name!r}: the calls of {missing[:5]} refer to layers or calls "
                    "the config does not define"
                )
        inputs = [self._tensor(r) for r in spec.inputs]
        outputs = [self._tensor(r) for r in spec.outputs]
        self.graph = _ordered_graph(spec, inputs, outputs, self.calls)
        return self.graph

    def _recorded_shapes(self) -> dict:
        """Keras 3 configs give each argument's shape: ``(layer, node) -> [(shape, dtype)]``."""
        found: dict[tuple[str, int], dict[int, tuple]] = {}
        for layer_spec in self.spec.layers:
            for node in layer_spec.nodes:
                for value in _flatten((node.args, node.kwargs)):
                    if isinstance(value, Ref) and value.shape is not None:
                        found.setdefault((value.layer, value.node), {})[value.tensor] = (
                            tuple(value.shape),
                            value.dtype or "float32",
                        )
        result = {}
        for key, by_index in found.items():
            count = max(by_index) + 1
            result[key] = [by_index.get(i) for i in range(count)]
        return result

    def _input(self, spec: LayerSpec) -> None:
        layer = self.layers[spec.name]
        cfg = spec.config
        shape = cfg.get("batch_shape") or cfg.get("batch_input_shape")
        if shape is None:
            raise InputError(f"input {spec.name!r} has no shape in the config")
        dtype = cfg.get("dtype") or "float32"
        if isinstance(dtype, dict):
            dtype = (dtype.get("config") or {}).get("name", "float32")
        call = Call(layer=layer, inputs=[], outputs=[])
        call.index = len(layer.calls)
        layer.calls.append(call)
        tensor = Tensor(shape=tuple(shape), dtype=str(dtype), producer=call, index=0)
        call.outputs.append(tensor)
        self.calls.append(call)
        self.outputs[(spec.name, 0)] = [tensor]

    def _tensor(self, ref: Ref) -> Tensor:
        outputs = self.outputs.get((ref.layer, ref.node))
        if outputs is None or ref.tensor >= len(outputs):
            raise InputError(
                f"model {self.spec.name!r}: no tensor {ref.layer}[{ref.node}][{ref.tensor}]"
            )
        return outputs[ref.tensor]

    def _resolve(self, node: NodeSpec):
        """Args/kwargs with Refs replaced by tensors; None while an input is not computed."""
        missing = False

        def value(v):
            nonlocal missing
            if isinstance(v, Ref):
                outputs = self.outputs.get((v.layer, v.node))
                if outputs is None:
                    self.spec.layer(v.layer)  # InputError for a layer that does not exist
                    missing = True
                    return None
                producer = outputs[0].producer if outputs else None
                while (
                    v.tensor >= len(outputs)
                    and producer is not None
                    and id(producer) in self.unknown
                ):
                    # An unsupported call with more outputs than known (tf.split): keep the
                    # graph connected; the call itself is reported.
                    outputs.append(
                        Tensor(
                            shape=outputs[0].shape,
                            dtype=outputs[0].dtype,
                            producer=producer,
                            index=len(outputs),
                        )
                    )
                    producer.outputs.append(outputs[-1])
                if v.tensor >= len(outputs):
                    raise InputError(
                        f"model {self.spec.name!r}: {v.layer!r} has no output {v.tensor}"
                    )
                return outputs[v.tensor]
            if isinstance(v, tuple):
                return tuple(value(x) for x in v)
            if isinstance(v, list):
                return [value(x) for x in v]
            if isinstance(v, dict):
                return {k: value(x) for k, x in v.items()}
            return v

        args = value(node.args)
        kwargs = value(node.kwargs)
        return None if missing else (args, kwargs)

    def _node(self, spec: LayerSpec, position: int, args: tuple, kwargs: dict, recorded) -> None:
        layer = self.layers[spec.name]
        if (
            spec.is_op
            and spec.class_name == "GetItem"
            and len(args) > 1
            and isinstance(args[1], list)
        ):
            args = (args[0], tuple(args[1]), *args[2:])  # JSON made the index tuple a list
        if spec.class_name in TF_OP_LAYERS and spec.custom is None:
            outputs = self._tf_function(spec, layer, args, kwargs)
        else:
            args, kwargs = self._mask_arguments(spec, args, kwargs)
            call = self._make_call(layer, args, kwargs, recorded)
            self._propagate_mask(spec, call, args, kwargs)
            outputs = call.outputs
        self.outputs[(spec.name, position)] = outputs

    # -- TensorFlow functions ---------------------------------------------------------------
    def _tf_function(
        self, spec: LayerSpec, layer: Layer, args: tuple, kwargs: dict
    ) -> list[Tensor]:
        function = str(spec.config.get("function", ""))
        first = args[0] if args else None
        emitted: list[Call] = []

        def emit(class_name, config, op_args, op_kwargs=None, is_op=True, suffix=""):
            base = spec.name if not suffix else f"{spec.name}_{suffix}"
            op_layer = self._synthetic_layer(base, class_name, config, is_op, own=not suffix)
            call = self._make_call(op_layer, tuple(op_args), dict(op_kwargs or {}))
            emitted.append(call)
            if id(call) in self.unknown:
                raise TFFunctionUnsupported(
                    f"tf.{function}: cannot compute the shape of its result"
                )
            return list(call.outputs)

        before = len(self.calls)
        try:
            return list(translate(function, first, kwargs, emit))
        except TFFunctionUnsupported as exc:
            for call in emitted:  # drop what was emitted before the failure
                self.taken.discard(call.layer.name)
            del self.calls[before:]
            layer.unsupported = str(exc)
            flat = [v for v in _flatten((args, kwargs)) if isinstance(v, Tensor)]
            call = Call(layer=layer, inputs=flat, outputs=[])
            call.args = (TensorRef(0),) if flat else ()
            call.index = len(layer.calls)
            layer.calls.append(call)
            source = flat[0] if flat else Tensor(shape=(None,))
            call.outputs.append(
                Tensor(shape=source.shape, dtype=source.dtype, producer=call, index=0)
            )
            self.calls.append(call)
            self.unknown.add(id(call))
            return call.outputs

    # -- masks ----------------------------------------------------------------------------
    def _first_tensor(self, args) -> Tensor | None:
        first = args[0] if args else None
        if isinstance(first, (list, tuple)) and first:
            first = first[0]
        return first if isinstance(first, Tensor) else None

    def _mask_arguments(self, spec: LayerSpec, args: tuple, kwargs: dict):
        """The call arguments Keras 3 adds itself (a config without nodes cannot say)."""
        if not self.synthesize_masks:
            return args, kwargs
        kwargs = dict(kwargs)
        kind = spec.class_name
        if kind in _TRAINING_DEFAULT and "training" not in kwargs:
            kwargs["training"] = _TRAINING_DEFAULT[kind]
        if (kind in _MASK_ARGUMENT or spec.model is not None) and "mask" not in kwargs:
            first = self._first_tensor(args)
            mask = self.masks.get(id(first)) if first is not None else None
            if mask is not None and spec.model is not None:
                raise FileReaderUnsupported(
                    f"model {spec.name!r} is called on a tensor with a Keras mask, which the "
                    "file reader does not pass into nested models"
                )
            if kind == "BatchNormalization" and self.spec.legacy:
                mask = None  # Keras 2 has no mask argument here; BN ignores masks at inference
            kwargs["mask"] = mask
        return args, kwargs

    def _propagate_mask(self, spec: LayerSpec, call: Call, args, kwargs) -> None:
        kind = spec.class_name
        first = self._first_tensor(args)
        explicit = kwargs.get("mask") if isinstance(kwargs, dict) else None
        if isinstance(explicit, Tensor):
            previous = explicit
        else:
            previous = self.masks.get(id(first)) if first is not None else None
        mask = None
        if kind == "Embedding":
            if spec.config.get("mask_zero"):
                mask = (
                    self._op_mask(spec, "NotEqual", {}, (first, 0))
                    if self.synthesize_masks
                    else _MASK_FLAG
                )
        elif kind == "Masking":
            if self.synthesize_masks:
                value = spec.config.get("mask_value", 0.0)
                not_equal = self._op_mask(spec, "NotEqual", {}, (first, value))
                mask = self._op_mask(spec, "Any", {"axis": -1, "keepdims": False}, (not_equal,))
            else:
                mask = _MASK_FLAG
        elif kind in _RNNS or kind == "Bidirectional":
            cfg = (
                spec.config.get("layer", {}).get("config", {})
                if kind == "Bidirectional"
                else spec.config
            )
            if cfg.get("return_sequences") and previous is not None:
                mask = previous
                n_merged = (
                    2
                    if kind == "Bidirectional" and spec.config.get("merge_mode", "concat") is None
                    else 1
                )
                for tensor in call.outputs[:n_merged]:
                    self._set_mask(tensor, mask)
            return
        elif kind in _MERGES:
            masks = [self.masks.get(id(t)) for t in _flatten(args) if isinstance(t, Tensor)]
            if any(m is not None for m in masks):
                if self.synthesize_masks:
                    if any(m is None for m in masks) or len({id(m) for m in masks}) != 1:
                        raise FileReaderUnsupported(
                            f"layer {spec.name!r} ({kind}) merges inputs with different Keras masks"
                        )
                    mask = masks[0]
                elif all(m is not None for m in masks):
                    mask = _MASK_FLAG
        elif kind in ("Attention", "AdditiveAttention"):
            inputs = args[0] if args else None
            query = inputs[0] if isinstance(inputs, (list, tuple)) and inputs else None
            mask = self.masks.get(id(query)) if isinstance(query, Tensor) else None
            if mask is not None and not self.synthesize_masks:
                mask = _MASK_FLAG
        elif kind in _KEEPS_MASK or kind == "TimeDistributed":
            mask = previous
        elif (
            previous is not None
            and self.synthesize_masks
            and (spec.model is not None or kind == "Concatenate")
        ):
            raise FileReaderUnsupported(
                f"layer {spec.name!r} ({kind}) receives a Keras mask, which the file reader "
                "does not pass through it"
            )
        if mask is not None and call.outputs:
            self._set_mask(call.outputs[0], mask)

    def _set_mask(self, tensor: Tensor, mask) -> None:
        self.masks[id(tensor)] = mask
        tensor.masked = True

    def _op_mask(self, spec: LayerSpec, class_name: str, config: dict, args: tuple) -> Tensor:
        base = re.sub(r"(?<!^)(?=[A-Z])", "_", class_name).lower()
        layer = self._synthetic_layer(base, class_name, config, True)
        (tensor,) = self._make_call(layer, args, {}).outputs
        return tensor

    def all_mismatches(self) -> list[str]:
        found = list(self.mismatches)
        for child in self.children.values():
            found += child.all_mismatches()
        return found

    # -- weights --------------------------------------------------------------------------
    def _leaves(self):
        """(Layer, LayerSpec, builder) of every weighted layer here and in nested models."""
        for layer in self.graph.layers if self.graph else []:
            spec = self.specs.get(id(layer))
            if spec is None:
                continue
            child = self.children.get(id(layer))
            if child is not None:
                yield from child._leaves()
                if layer.subgraph is not None:
                    continue
            yield layer, spec, self

    def _expected(self, layer: Layer, spec: LayerSpec) -> list[Var] | None:
        if layer.is_op or spec.model is not None:
            return []
        if spec.class_name == "TimeDistributed" and getattr(layer, "wrapped", None) is not None:
            return []
        try:
            return variables(spec.class_name, spec.config)
        except WeightsUnsupported as exc:
            raise FileReaderUnsupported(f"layer {layer.name!r}: {exc}") from None

    def _store(self, layer: Layer, spec: LayerSpec, expected: list[Var], arrays: dict) -> None:
        trainable = self.trainable and spec.trainable
        for var in expected:
            if var.lora and var.key not in arrays:
                prefix, _, base = var.key.rpartition("/")
                kernel_key = (prefix + "/" if prefix else "") + base[len("lora_") : -len("_a")]
                kernel = arrays.get(kernel_key)
                if kernel is None:
                    raise InputError(
                        f"layer {layer.name!r}: no {kernel_key!r} for its LoRA factors"
                    )
                arrays[var.key] = lora_factor(var, kernel, int(spec.config["lora_rank"]))
        for key, array in arrays.items():
            layer.weights[key] = np.asarray(array)
            var = next((v for v in expected if v.key == key), None)
            layer.trainable[key] = bool(trainable and (var.trainable if var else True))

    def check_no_weights(self) -> None:
        for layer, spec, builder in self._leaves():
            expected = builder._expected(layer, spec) or []
            if expected:
                raise InputError(
                    f"the file has no weights, but layer {layer.name!r} ({spec.class_name}) needs some"
                )

    def load_legacy_weights(self, root) -> None:
        for layer in self.graph.layers:
            spec = self.specs.get(id(layer))
            if spec is None or layer.class_name == "InputLayer":
                continue
            group = root.get(spec.name)
            if spec.model is not None or id(layer) in self.children:
                stored = legacy_group_weights(group) if group is not None else []
                child = self.children[id(layer)]
                child._set_theano(self.theano)
                child._load_nested_legacy(stored, layer.name)
                continue
            expected = self._expected(layer, spec)
            stored = legacy_group_weights(group) if group is not None else []
            if expected is None:
                arrays = {"/".join(name_parts(n)[-1:]): a for n, a in stored}
                self._store(layer, spec, [], arrays)
                continue
            arrays = assign_legacy(layer.name, spec.class_name, expected, stored)
            self._store(layer, spec, expected, self._legacy_arrays(spec, arrays))

    def _set_theano(self, theano: bool) -> None:
        self.theano = theano
        for child in self.children.values():
            child._set_theano(theano)

    def _legacy_arrays(self, spec: LayerSpec, arrays: dict) -> dict:
        """Variables as a Keras 2 file stored them -> as Keras 3 holds them."""
        if spec.cudnn:
            arrays = {k: from_cudnn(k, v) for k, v in arrays.items()}
        if self.theano:
            arrays = {k: from_theano(spec.class_name, k, v) for k, v in arrays.items()}
        return arrays

    def _load_nested_legacy(self, stored: list, model_name: str) -> None:
        """A nested model's weights: one flat list, each name starting with its layer's name."""
        leaves = []
        for layer, spec, builder in self._leaves():
            expected = builder._expected(layer, spec)
            if expected is None:
                raise FileReaderUnsupported(
                    f"layer {layer.name!r} ({spec.class_name}) inside model {model_name!r}"
                )
            if [v for v in expected if not v.lora]:
                leaves.append((layer, spec, builder, expected))
        names = {layer.name: i for i, (layer, *_rest) in enumerate(leaves)}
        groups: list[list] = [[] for _ in leaves]
        by_name = True
        for name, array in stored:
            parts = name_parts(name)
            index = next((names[p] for p in parts[:-1] if p in names), None)
            if index is None:
                by_name = False
                break
            groups[index].append((name, array))
        if by_name:
            for (layer, spec, builder, expected), group in zip(leaves, groups):
                wanted = [v for v in expected if not v.lora]
                if len(group) != len(wanted):
                    by_name = False
                    break
        if not by_name:
            groups = self._keras2_order(leaves, stored, model_name)
        for (layer, spec, builder, expected), group in zip(leaves, groups):
            arrays = assign_legacy(layer.name, spec.class_name, expected, group)
            builder._store(layer, spec, expected, builder._legacy_arrays(spec, arrays))

    def _keras2_order(self, leaves, stored, model_name: str) -> list[list]:
        """Keras 2 lists a model's weights trainable first (layer by layer), then the rest."""
        trainable_slots, frozen_slots = [], []
        for index, (layer, spec, builder, expected) in enumerate(leaves):
            layer_trainable = builder.trainable and spec.trainable
            for var in expected:
                if var.lora:
                    continue
                (trainable_slots if layer_trainable and var.trainable else frozen_slots).append(
                    index
                )
        slots = trainable_slots + frozen_slots
        if len(slots) != len(stored):
            raise InputError(
                f"model {model_name!r}: the file holds {len(stored)} weights, its layers have {len(slots)}"
            )
        groups: list[list] = [[] for _ in leaves]
        # Keep each layer's own order: its trainable weights, then its other ones.
        for index, item in zip(slots, stored):
            groups[index].append(item)
        return groups

    def load_zip_weights(self, root, path: str) -> None:
        """Keras 3 ``model.weights.h5``: paths built from snake-cased class names."""
        if self.spec.class_name == "Sequential":
            layers = [layer for layer in self._config_order() if layer.class_name != "InputLayer"]
        elif self.spec.legacy:  # tf-keras lists a model's layers in its config's order
            layers = self._config_order()
        else:
            layers = [layer for layer in self._graph_order() if not layer.is_op]
        used: dict[str, int] = {}
        for layer in layers:
            spec = self.specs.get(id(layer))
            if spec is None:
                continue
            class_name = (
                "Functional"
                if spec.model is not None and spec.class_name == "Functional"
                else spec.class_name
            )
            name = _unique(_snake(_saved_class(class_name)), used)
            layer_path = f"{path}layers/{name}"
            group = root.get(layer_path)
            group = self._check_zip_group(root, group, layer, layer_path, path)
            child = self.children.get(id(layer))
            if child is not None:
                inner = f"{layer_path}/" if spec.model is not None else f"{layer_path}/layer/"
                child.load_zip_weights(root, inner)
                continue
            expected = self._expected(layer, spec)
            if expected is None:
                arrays = {}
                if group is not None and "vars" in group:
                    for key in sorted(group["vars"], key=int):
                        arrays[f"variable_{key}"] = np.asarray(group["vars"][key])
                self._store(layer, spec, [], arrays)
                continue
            arrays = {}
            for var in expected:
                if not var.zip_path:
                    continue
                dataset = group.get(var.zip_path) if group is not None else None
                if dataset is None:
                    raise InputError(
                        f"layer {layer.name!r}: model.weights.h5 has no {layer_path}/{var.zip_path}"
                    )
                arrays[var.key] = np.asarray(dataset)
            self._store(layer, spec, expected, arrays)

    def _check_zip_group(self, root, group, layer: Layer, layer_path: str, path: str):
        """Newer Keras writes each layer's name next to its variables: use it when present."""
        vars_group = group.get("vars") if group is not None else None
        recorded = vars_group.attrs.get("name") if vars_group is not None else None
        if recorded is None:
            return group
        if isinstance(recorded, bytes):
            recorded = recorded.decode()
        if recorded == layer.name:
            return group
        parent = root.get(f"{path}layers") if path or "layers" in root else None
        if parent is not None:
            for key in parent:
                candidate = parent[key].get("vars")
                name = candidate.attrs.get("name") if candidate is not None else None
                if isinstance(name, bytes):
                    name = name.decode()
                if name == layer.name:
                    return parent[key]
        return group

    def _config_order(self) -> list[Layer]:
        return [self.layers[s.name] for s in self.spec.layers if s.name in self.layers]

    def _graph_order(self) -> list[Layer]:
        return list(_operations(self.graph.inputs, self.graph.outputs))


def _saved_class(class_name: str) -> str:
    return {"Model": "Functional", "GroupQueryAttention": "GroupedQueryAttention"}.get(
        class_name, class_name
    )


def _snake(name: str) -> str:
    """keras.src.utils.naming.to_snake_case."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _unique(name: str, used: dict[str, int]) -> str:
    if name in used:
        used[name] += 1
        return f"{name}_{used[name]}"
    used[name] = 0
    return name


def _has_converter(layer: Layer) -> bool:
    from codegen.conversion import registry

    return layer.subgraph is not None or registry.lookup(layer.class_name, layer.is_op) is not None


def _rerun(graph: Graph, shapes: list, dtypes: list) -> list:
    """Output (shape, dtype) of a nested model called on tensors of these shapes."""
    known: dict[int, tuple] = {}
    for tensor, shape, dtype in zip(graph.inputs, shapes, dtypes):
        known[id(tensor)] = (tuple(shape), tensor.dtype)
    for call in graph.calls:
        if call.layer.class_name == "InputLayer":
            continue
        if not all(id(t) in known for t in call.inputs):
            raise ShapeError(f"nested model {graph.name!r} has an unknown input")
        in_shapes = [known[id(t)][0] for t in call.inputs]
        in_dtypes = [known[id(t)][1] for t in call.inputs]
        if call.layer.subgraph is not None:
            results = _rerun(call.layer.subgraph, in_shapes, in_dtypes)
        else:
            site = Site(
                call.layer.class_name,
                call.layer.config,
                in_shapes,
                in_dtypes,
                call.args,
                call.kwargs,
            )
            results = infer(site, call.layer.is_op)
        for tensor, result in zip(call.outputs, results):
            known[id(tensor)] = result
    return [known[id(t)] for t in graph.outputs]


# -- ordering, as Keras and read_keras order the calls -------------------------------------------
def _operations(inputs: list[Tensor], outputs: list[Tensor]) -> list[Layer]:
    """Layers in the order of ``Functional.operations`` (keras.src.ops.function.map_graph)."""
    finished: set[int] = set()
    in_progress: set[int] = set()
    order: list[Call] = []
    indices: dict[int, int] = {}
    layers: dict[int, Layer] = {}
    input_ids = {id(t) for t in inputs}

    def visit(tensor: Tensor) -> None:
        call = tensor.producer
        if call is None or id(call) in finished:
            return
        is_input = call.layer.class_name == "InputLayer"
        if not is_input and id(tensor) in input_ids:
            finished.add(id(call))
            return
        if id(call) in in_progress:
            raise InputError("the model's graph has a cycle")
        if id(call.layer) not in indices:
            indices[id(call.layer)] = len(indices)
            layers[id(call.layer)] = call.layer
        in_progress.add(id(call))
        if not is_input:
            for t in call.inputs:
                visit(t)
        finished.add(id(call))
        in_progress.discard(id(call))
        order.append(call)

    for tensor in outputs:
        visit(tensor)
    in_graph = {id(c) for c in order}
    depth: dict[int, int] = {}
    layer_depth: dict[int, int] = {}
    for call in reversed(order):
        d = depth.setdefault(id(call), 0)
        d = max(d, layer_depth.get(id(call.layer), 0))
        layer_depth[id(call.layer)] = d
        depth[id(call)] = d
        for t in call.inputs:
            parent = t.producer
            if parent is None or id(parent) not in in_graph:
                continue
            depth[id(parent)] = max(d + 1, depth.get(id(parent), 0))
    for tensor in inputs:
        call = tensor.producer
        if (
            call is not None
            and id(call.layer) not in layer_depth
            and call.layer.class_name == "InputLayer"
        ):
            layer_depth[id(call.layer)] = 0
            indices[id(call.layer)] = -1
            layers[id(call.layer)] = call.layer
    by_depth: dict[int, list[int]] = {}
    for key, d in layer_depth.items():
        by_depth.setdefault(d, []).append(key)
    result = []
    for d in sorted(by_depth, reverse=True):
        for key in sorted(by_depth[d], key=lambda k: indices[k]):
            result.append(layers[key])
    return result


def _ordered_graph(
    spec: ModelSpec, inputs: list[Tensor], outputs: list[Tensor], calls: list[Call]
) -> Graph:
    """read_keras's order: Kahn's algorithm over the calls the outputs need, ties broken by
    the model's operation order, each layer's calls in the order Keras made them."""
    order = {id(layer): i for i, layer in enumerate(_operations(inputs, outputs))}
    needed: dict[int, Call] = {}
    stack = [t.producer for t in outputs if t.producer is not None]
    while stack:
        call = stack.pop()
        if id(call) in needed:
            continue
        needed[id(call)] = call
        for t in call.inputs:
            if t.producer is not None:
                stack.append(t.producer)
    creation = {id(c): i for i, c in enumerate(calls)}
    deps: dict[int, set[int]] = {}
    users: dict[int, list[int]] = {}
    for key, call in needed.items():
        parents = {id(t.producer) for t in call.inputs if t.producer is not None}
        deps[key] = parents
        for parent in parents:
            users.setdefault(parent, []).append(key)

    def rank(key: int):
        call = needed[key]
        return (order.get(id(call.layer), len(order)), creation[key])

    ready = [(rank(k), k) for k, d in deps.items() if not d]
    heapq.heapify(ready)
    ordered: list[Call] = []
    while ready:
        _, key = heapq.heappop(ready)
        ordered.append(needed[key])
        for user in users.get(key, []):
            deps[user].discard(key)
            if not deps[user]:
                heapq.heappush(ready, (rank(user), user))
    # Each layer keeps only the calls the model makes, numbered in this order.
    for layer in {id(c.layer): c.layer for c in calls}.values():
        layer.calls = []
    for call in ordered:
        call.index = len(call.layer.calls)
        call.layer.calls.append(call)
    input_names = [
        t.producer.layer.name if t.producer is not None else f"input_{i}"
        for i, t in enumerate(inputs)
    ]
    return Graph(
        name=spec.name,
        class_name=spec.class_name,
        inputs=inputs,
        outputs=outputs,
        calls=ordered,
        input_names=input_names,
    )

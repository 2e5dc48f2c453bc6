"""Read a Keras model file into a :class:`Graph` without TensorFlow or Keras.

The file's config (:mod:`codegen.read.legacy_config`) gives the layers and their calls, the
shape rules (:mod:`codegen.read.layers`, run by :mod:`codegen.read.shapes`) give every tensor
its Keras shape, tf.keras TensorFlow-op layers become keras.ops operations
(:mod:`codegen.read.tf_functions`) and the weights are read and keyed as Keras 3 keys them
(:mod:`codegen.read.file_weights`). The result is the Graph
:func:`codegen.read.from_keras.read_model` would give for the same model: calls in the same
order (:mod:`codegen.read.graph_order`), the same tensors, masks recorded the way Keras 3
records them (what each layer class takes and passes on: :mod:`codegen.read.layers`).

Only ``h5py``, ``numpy``, ``zipfile`` and ``json`` are used, and nothing from the file is
executed: a ``Lambda`` layer's code is translated from its bytecode read as data
(:mod:`codegen.read.lambda_layer`), never unmarshalled by CPython or run.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from codegen.errors import InputError
from codegen.ir.graph import Call, Graph, Layer, Tensor, TensorRef

from .file_masks import MaskPropagation, _flatten
from .file_ops import OperationReading
from .file_weights import WeightLoading
from .formats import ModelFile, open_model_file
from .graph_order import ordered_graph
from .layers import (
    shape_rule,
)
from .legacy_config import TF_OP_LAYERS, LayerSpec, ModelSpec, NodeSpec, Ref, parse_model
from .shapes import ShapeError, Site, infer, infer_graph
from .stored_weights import FileReaderUnsupported

# ``converts(class_name, is_op)``: whether the conversion that will use the Graph has a
# converter for the class (given by the caller: the reader never asks the conversion stage).
ConverterCheck = Callable[[str, bool], bool]


def builtin_facts(class_name: str, is_op: bool) -> bool:
    """The default ``converts``: the classes this reader has facts for, which are the classes
    with a built-in converter (tests/read/test_layer_facts.py)."""
    return shape_rule(class_name, is_op) is not None


def read_file(
    path: str | os.PathLike, check_shapes: bool = False, converts: ConverterCheck | None = None
) -> Graph:
    """The Graph of a full-model ``.h5`` or a ``.keras`` file, read without Keras.

    ``check_shapes``: fail when a shape rule disagrees with a shape the file records (a
    self-check for the rules; the file's shapes are used either way).

    ``converts(class_name, is_op)``: whether a converter will port the class (plugins
    included); a converted class whose output shapes this reader cannot know raises
    :class:`FileReaderUnsupported` (so that Keras reads the file instead), another one is
    left for the conversion to report. Default: :func:`builtin_facts`.
    """
    with open_model_file(path) as model_file:
        return read_model_file(model_file, check_shapes, converts)


def read_model_file(
    model_file: ModelFile, check_shapes: bool = False, converts: ConverterCheck | None = None
) -> Graph:
    spec = parse_model(model_file.config, model_file.keras_major)
    builder = _ModelBuilder(spec, converts=converts or builtin_facts)
    builder.theano = model_file.kind == "h5" and str(model_file.backend).lower() == "theano"
    builder.keras_version = str(model_file.keras_version or model_file.keras_major)
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


class _ModelBuilder(WeightLoading, MaskPropagation, OperationReading):
    """Builds the Graph of one (possibly nested) model spec."""

    def __init__(
        self,
        spec: ModelSpec,
        trainable: bool = True,
        converts: ConverterCheck = builtin_facts,
        input_masks: tuple | None = None,
        nested: bool = False,
    ) -> None:
        self.spec = spec
        self.converts = converts
        # A nested model called on masked tensors: the shape of each input's mask (or None);
        # the masks become extra inputs of its graph, after the model's own.
        self.input_masks = input_masks
        # Keras 2 configs and Sequential configs do not record what Keras 3 adds to each call
        # (masks and their operations, ``training``): make them as Keras 3 would; inside a
        # model called with masks, the config recorded none of them either.
        self.synthesize_masks = (
            spec.legacy or spec.class_name == "Sequential" or input_masks is not None
        )
        # Keras 2's nested models pass their outputs' masks on (Functional.compute_mask): they
        # become extra outputs of the graph, ``output_masks`` saying which output has which.
        self.export_masks = nested and spec.legacy
        self.output_masks: list[tuple[int, int]] = []
        self.nested_masks: dict[int, tuple] = {}  # id(Layer) of a nested model -> input_masks
        self.trainable = trainable and spec.trainable
        self.layers: dict[str, Layer] = {}
        self.specs: dict[int, LayerSpec] = {}  # id(Layer) -> spec (None for synthetic ones)
        self.children: dict[int, _ModelBuilder] = {}  # id(Layer) -> builder of a nested model
        self.outputs: dict[tuple[str, int], list[Tensor]] = {}
        self.masks: dict[int, Any] = {}  # id(tensor) -> its Keras mask (a Tensor or _MASK_FLAG)
        self.calls: list[Call] = []
        self.unknown: set[int] = set()  # calls whose output shapes could not be known
        self.open_outputs: set[int] = set()  # unsupported calls: how many outputs is unknown
        self.taken: set[str] = set()  # names of the layers made here (operations)
        self.mismatches: list[str] = []  # shape rules that disagree with shapes in the file
        self.theano = False  # weights saved by Keras 2 with the Theano backend
        self.keras_version = "3" if not spec.legacy else "2"  # set from the file's attributes
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
            if spec.custom.startswith("keras_hub>"):
                # Their variables are stored by KerasHub's own attribute names; Keras, with
                # KerasHub's classes, reads them (and the file reader then has nothing to add).
                raise FileReaderUnsupported(
                    f"layer {spec.name!r} is KerasHub's {spec.class_name}: read by Keras with "
                    "keras-hub installed"
                )
        if spec.model is not None:
            self._build_nested(layer, spec)
        if spec.class_name == "TimeDistributed":
            inner = spec.config.get("layer")
            if isinstance(inner, dict) and inner.get("class_name") in (
                "Sequential",
                "Functional",
                "Model",
            ):
                sub = parse_model(inner, 2 if self.spec.legacy else 3)
                child = _ModelBuilder(sub, self.trainable and spec.trainable, self.converts)
                child.keras_version = self.keras_version
                layer.wrapped = child.build()
                self.children[id(layer)] = child
        self.layers[spec.name] = layer
        self.specs[id(layer)] = spec
        return layer

    def _build_nested(self, layer: Layer, spec: LayerSpec, input_masks=None) -> None:
        child = _ModelBuilder(
            spec.model,
            self.trainable and spec.trainable,
            self.converts,
            input_masks=input_masks,
            nested=True,
        )
        child.keras_version = self.keras_version
        layer.subgraph = child.build()
        self.children[id(layer)] = child

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
                if self._converted(layer) and not complete:
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
                        f"{layer.name} ({layer.class_name}) output {i}: "
                        f"rule {results[i]}, file {value}"
                    )
                results[i] = value
        if results is None:
            # Only to keep the graph connected: the call is reported as unsupported.
            first = call.inputs[0] if call.inputs else Tensor(shape=(None,))
            results = [(first.shape, first.dtype)]
            self.unknown.add(id(call))
            self.open_outputs.add(id(call))
        return results

    def _converted(self, layer: Layer) -> bool:
        return layer.subgraph is not None or self.converts(layer.class_name, layer.is_op)

    def _infer(self, call: Call) -> list:
        layer = call.layer
        if layer.subgraph is not None:
            return infer_graph(
                layer.subgraph, [t.shape for t in call.inputs], [t.dtype for t in call.inputs]
            )
        wrapped = getattr(layer, "wrapped", None)
        if wrapped is not None and call.inputs:  # TimeDistributed(model): the model per step
            x = call.inputs[0].shape
            step = infer_graph(wrapped, [(x[0], *x[2:])], [call.inputs[0].dtype])
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
        mask_inputs = self._mask_inputs()
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
        inputs = [self._tensor(r) for r in spec.inputs] + mask_inputs
        outputs = [self._tensor(r) for r in spec.outputs]
        if self.export_masks:
            for i, tensor in enumerate(list(outputs)):
                mask = self.masks.get(id(tensor))
                if isinstance(mask, Tensor):
                    self.output_masks.append((i, len(outputs)))
                    outputs.append(mask)
        self.graph = ordered_graph(spec, inputs, outputs, self.calls)
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
        self.outputs[(spec.name, 0)] = [self._input_tensor(layer, tuple(shape), str(dtype))]

    def _input_tensor(self, layer: Layer, shape: tuple, dtype: str) -> Tensor:
        call = Call(layer=layer, inputs=[], outputs=[])
        call.index = len(layer.calls)
        layer.calls.append(call)
        tensor = Tensor(shape=shape, dtype=dtype, producer=call, index=0)
        call.outputs.append(tensor)
        self.calls.append(call)
        return tensor

    def _extend_unknown(self, outputs: list[Tensor], index: int) -> None:
        """An unsupported call with more outputs than known (tf.split): keep the graph
        connected up to output ``index``; the call itself is reported."""
        producer = outputs[0].producer if outputs else None
        while index >= len(outputs) and producer is not None and id(producer) in self.open_outputs:
            outputs.append(
                Tensor(
                    shape=outputs[0].shape,
                    dtype=outputs[0].dtype,
                    producer=producer,
                    index=len(outputs),
                )
            )
            producer.outputs.append(outputs[-1])

    def _tensor(self, ref: Ref) -> Tensor:
        outputs = self.outputs.get((ref.layer, ref.node))
        if outputs is not None:
            self._extend_unknown(outputs, ref.tensor)
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
                self._extend_unknown(outputs, v.tensor)
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
        if spec.class_name in (*TF_OP_LAYERS, "TensorFlowOpLayer") and spec.custom is None:
            outputs = self._tf_function(spec, layer, args, kwargs)
        elif spec.class_name == "Lambda" and spec.custom is None:
            outputs = self._lambda(spec, layer, args, kwargs)
        else:
            args, kwargs = self._mask_arguments(spec, args, kwargs)
            call = self._make_call(layer, args, kwargs, recorded)
            self._propagate_mask(spec, call, args, kwargs)
            outputs = call.outputs
            child = self.children.get(id(layer)) if spec.model is not None else None
            if child is not None and child.output_masks:
                for i, j in child.output_masks:  # a Keras 2 nested model's output masks
                    self._set_mask(outputs[i], outputs[j])
                outputs = outputs[: len(child.spec.outputs)]
        self.outputs[(spec.name, position)] = outputs

    def all_mismatches(self) -> list[str]:
        found = list(self.mismatches)
        for child in self.children.values():
            found += child.all_mismatches()
        return found

"""Model configs of every Keras era, read into one plain form (:class:`ModelSpec`).

A config says which layers a model has and how they are called. Its format changed over the
years; this module reads all of them the way the Keras version that wrote them meant them:

- Sequential configs as a bare list of layers (Keras <= 2.1) or a dict, with the input shape in
  an ``InputLayer`` or as ``batch_input_shape`` of the first layer (Keras 2);
- functional configs (class ``Model``, ``Functional``) whose ``inbound_nodes`` are nested lists
  ``[layer, node, tensor, kwargs]`` (Keras 2, tf.keras; extra call arguments and TF-op
  arguments in ``kwargs``, tensors among them as ``[layer, node, tensor]``) or dicts
  ``{"args": ..., "kwargs": ...}`` holding ``__keras_tensor__`` objects (Keras 3);
- node indices of nested models, which Keras 2 counts from 1 (node 0 is the model's own);
- layer options as Keras 2 meant them: ``hard_sigmoid`` is ``clip(0.2 x + 0.5, 0, 1)``, GRUs
  without ``reset_after`` are ``reset_after=False``, LeakyReLU's ``alpha``, Bidirectional's
  implicit backward layer; options that do not change inference and that Keras 3 rejects
  (``time_major=False``, ``groups=1`` of depthwise and transposed convolutions, the shapes
  MultiHeadAttention recorded, ``input_length``) are dropped.

Nothing here runs code from the file: a ``Lambda`` layer stays a config naming a layer that
cannot be converted.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from codegen.errors import InputError

from .keras1_config import keras1_layer, keras1_model
from .stored_weights import FileReaderUnsupported

# Keras 2's hard_sigmoid (0.2 x + 0.5, clipped); Keras 3's "hard_sigmoid" is relu6(x + 3) / 6.
KERAS2_HARD_SIGMOID = "hard_sigmoid_keras2"

MODEL_CLASSES = {"Functional", "Model", "Sequential"}
# TensorFlow-op layers of tf.keras whose call keeps its input structure (a list stays a list).
TF_OP_LAYERS = {"TFOpLambda", "SlicingOpLambda"}


class ConstructorBuiltModel(FileReaderUnsupported):
    """A keras.Model subclass whose config holds its constructor's arguments, not its graph:
    the graph exists only as Python code (every KerasHub Backbone, for one)."""

    def __init__(self, class_name) -> None:
        self.class_name = class_name
        super().__init__(
            f"the file holds a {class_name!r} model whose config stores only its constructor's "
            "arguments, not its graph of layers (a keras.Model subclass built in __init__, "
            "like KerasHub backbones): only Keras, with the class imported, can rebuild it "
            "(reader 'keras')"
        )


@dataclass(frozen=True)
class Ref:
    """A tensor in a config: output ``tensor`` of call ``node`` of layer ``layer``.

    ``node`` counts the calls recorded in this model's config (0 for the first), whatever
    the file's own convention. Keras 3 configs also record the tensor's shape and dtype.
    """

    layer: str
    node: int
    tensor: int
    shape: tuple | None = None
    dtype: str | None = None


@dataclass
class NodeSpec:
    args: tuple
    kwargs: dict


@dataclass
class LayerSpec:
    name: str
    class_name: str
    config: dict
    nodes: list[NodeSpec] = field(default_factory=list)
    is_op: bool = False  # a keras.ops operation in a Keras 3 functional config
    model: ModelSpec | None = None  # a nested Sequential/Functional model
    custom: str | None = None  # registered name of a class Keras does not define
    trainable: bool = True
    cudnn: bool = False  # a Keras 2 CuDNNLSTM/CuDNNGRU (in cuDNN's weight layout), read as LSTM/GRU
    keras1_kernel: str | None = None  # a Keras 1 kernel layout (keras1_config.keras1_weights)


@dataclass
class ModelSpec:
    name: str
    class_name: str  # "Functional" or "Sequential"
    layers: list[LayerSpec]
    inputs: list[Ref]
    outputs: list[Ref]
    trainable: bool = True
    legacy: bool = False  # written by Keras 1/2 (tf.keras)
    input_keys: list[str] | None = None  # dict inputs/outputs: their keys (see dict_keys)
    output_keys: list[str] | None = None

    def layer(self, name: str) -> LayerSpec:
        for spec in self.layers:
            if spec.name == name:
                return spec
        raise InputError(f"model {self.name!r} refers to a layer {name!r} it does not have")


def parse_model(entry: Any, keras_major: int) -> ModelSpec:
    """Read ``{"class_name": ..., "config": ...}`` (a model's serialized config)."""
    if not isinstance(entry, dict) or "class_name" not in entry:
        raise InputError("the model config has no class_name: not a Keras model config")
    return _Parser(keras_major).model(entry)


class _Parser:
    def __init__(self, keras_major: int) -> None:
        self.legacy = keras_major < 3
        self.keras1 = keras_major < 2  # configs read as Keras 2 reads them (keras1_config)

    # -- models ---------------------------------------------------------------------------
    def model(self, entry: dict) -> ModelSpec:
        if self.keras1:
            entry = keras1_model(entry)
        class_name = entry.get("class_name")
        config = entry.get("config")
        if class_name == "Sequential":
            return self.sequential(config)
        if class_name in ("Functional", "Model") or (
            isinstance(config, dict) and "layers" in config and "output_layers" in config
        ):
            spec = self.functional(config)
            if isinstance(class_name, str) and class_name not in ("Functional", "Model"):
                spec.class_name = class_name  # a keras.Model subclass that saved its graph
            return spec
        raise ConstructorBuiltModel(class_name)

    def _layer_spec(self, entry: dict, name: str | None = None) -> LayerSpec:
        class_name = entry.get("class_name")
        config = entry.get("config")
        if not isinstance(config, dict):
            config = {} if config is None else {"value": config}
        name = name or entry.get("name") or config.get("name")
        if not isinstance(class_name, str) or not isinstance(
            name, str
        ):  # "" is a name Keras allows
            raise InputError(f"a layer config without class_name or name: {str(entry)[:200]}")
        module = entry.get("module")
        registered = entry.get("registered_name")
        is_op = isinstance(module, str) and module.startswith(("keras.src.ops", "keras.ops"))
        if module is None and not self.legacy and class_name != "InputLayer":
            # Keras 3's .h5 writer drops "module": an operation's config has neither the
            # "trainable" nor the "dtype" every layer's config has.
            is_op = "trainable" not in config and "dtype" not in config and "layers" not in config
        # Keras's Python class names, where the registered name differs.
        class_name = {"GroupQueryAttention": "GroupedQueryAttention"}.get(class_name, class_name)
        cudnn = False
        if self.legacy:
            inner = config.get("layer") if class_name == "Bidirectional" else None
            cudnn = class_name in CUDNN or (
                isinstance(inner, dict) and inner.get("class_name") in CUDNN
            )
            if class_name in CUDNN:
                class_name, config = CUDNN[class_name], cudnn_config(CUDNN[class_name], config)
        keras1_kernel = None
        if self.keras1 and class_name not in MODEL_CLASSES:
            class_name, config, keras1_kernel = keras1_layer(class_name, config)
        spec = LayerSpec(name=name, class_name=class_name, config=_clean(config), is_op=is_op)
        spec.cudnn = cudnn
        spec.keras1_kernel = keras1_kernel
        spec.trainable = config.get("trainable", True) is not False
        if isinstance(module, str) and not module.startswith(("keras", "tf_keras", "tensorflow")):
            spec.custom = registered or f"{module}.{class_name}"
        elif isinstance(registered, str) and ">" in registered:
            spec.custom = registered
        saved_graph = isinstance(config, dict) and "layers" in config and "output_layers" in config
        if (spec.custom is None and class_name in MODEL_CLASSES) or saved_graph:
            # (a keras.Model subclass that saved its graph is that graph, registered or not)
            spec.model = self.model({"class_name": class_name, "config": config})
            spec.class_name = spec.model.class_name
            spec.custom = None
        elif not is_op:
            spec.config = self.layer_config(class_name, spec.config)
        return spec

    def sequential(self, config) -> ModelSpec:
        if isinstance(config, list):  # Keras <= 2.1
            layers, name, trainable, build_shape = config, "sequential", True, None
        elif isinstance(config, dict):
            layers = config.get("layers") or []
            name = config.get("name") or "sequential"
            trainable = config.get("trainable", True) is not False
            build_shape = config.get("build_input_shape")
        else:
            raise InputError("a Sequential config that is neither a list nor a dict")
        entries = [e for e in layers if isinstance(e, dict)]
        if not entries:
            raise InputError(f"Sequential model {name!r} has no layers")
        specs: list[LayerSpec] = []
        first = entries[0]
        first_config = first.get("config") if isinstance(first.get("config"), dict) else {}
        if first.get("class_name") == "InputLayer":
            input_spec = self._layer_spec(first)
            entries = entries[1:]
        else:
            shape = first_config.get("batch_input_shape") or first_config.get("batch_shape")
            if shape is None and build_shape is not None:
                shape = build_shape
            if shape is None:
                raise InputError(
                    f"Sequential model {name!r} was saved before it was built: its input shape "
                    "is unknown (build it on an Input and save it again)"
                )
            dtype = first_config.get("dtype") or first_config.get("input_dtype")  # Keras 1
            if not isinstance(dtype, str):
                dtype = "float32"
            input_name = (
                f"{first_config.get('name', 'input')}_input" if self.legacy else "input_layer"
            )
            input_spec = LayerSpec(
                input_name,
                "InputLayer",
                {"batch_shape": list(shape), "dtype": dtype, "name": input_name},
            )
        specs.append(input_spec)
        previous = Ref(input_spec.name, 0, 0)
        for entry in entries:
            spec = self._layer_spec(entry)
            if spec.class_name == "InputLayer":
                raise InputError(
                    f"Sequential model {name!r} has an InputLayer after its first layer"
                )
            spec.nodes = [NodeSpec((previous,), {})]
            specs.append(spec)
            previous = Ref(spec.name, 0, 0)
        _check_unique(specs, name)
        return ModelSpec(
            name,
            "Sequential",
            specs,
            [Ref(input_spec.name, 0, 0)],
            [previous],
            trainable,
            self.legacy,
        )

    def functional(self, config: dict) -> ModelSpec:
        name = config.get("name") or "model"
        entries = config.get("layers") or []
        specs = [self._layer_spec(e) for e in entries if isinstance(e, dict)]
        _check_unique(specs, name)
        by_name = {s.name: s for s in specs}
        raw_nodes = {}
        for entry, spec in zip([e for e in entries if isinstance(e, dict)], specs):
            raw_nodes[spec.name] = entry.get("inbound_nodes") or []
        # Nodes first (Refs keep the file's node numbers), then renumber the nested models'.
        for spec in specs:
            spec.nodes = [self.node(data, spec) for data in raw_nodes[spec.name]]
        inputs = _leaves(config.get("input_layers"))
        outputs = _leaves(config.get("output_layers"))
        offsets = self._offsets(specs, inputs, outputs)
        for spec in specs:
            for node in spec.nodes:
                node.args = _renumber(node.args, offsets)
                node.kwargs = _renumber(node.kwargs, offsets)
        # Keras 3 numbers the nodes of a nested Functional in input_layers/output_layers from 1.
        io_offsets = dict(offsets)
        if not self.legacy:
            io_offsets = {
                n: 1
                for n, s in by_name.items()
                if s.model is not None and s.class_name == "Functional"
            }
        inputs = [_shift(r, io_offsets) for r in inputs]
        outputs = [_shift(r, io_offsets) for r in outputs]
        for ref in inputs + outputs:
            if ref.layer not in by_name:
                raise InputError(
                    f"model {name!r}: its inputs/outputs name a missing layer {ref.layer!r}"
                )
        return ModelSpec(
            name,
            "Functional",
            specs,
            inputs,
            outputs,
            config.get("trainable", True) is not False,
            self.legacy,
            input_keys=dict_keys(config.get("input_layers")),
            output_keys=dict_keys(config.get("output_layers")),
        )

    def _offsets(self, specs, inputs, outputs) -> dict[str, int]:
        """How many nodes to subtract from references to each nested model (Keras 2: 1)."""
        if not self.legacy:
            return {}
        used: dict[str, set[int]] = {}

        def collect(value):
            if isinstance(value, Ref):
                used.setdefault(value.layer, set()).add(value.node)
            elif isinstance(value, (list, tuple)):
                for v in value:
                    collect(v)
            elif isinstance(value, dict):
                for v in value.values():
                    collect(v)

        for spec in specs:
            for node in spec.nodes:
                collect(node.args)
                collect(node.kwargs)
        collect(inputs)
        collect(outputs)
        offsets = {}
        for spec in specs:
            if spec.model is None:
                continue
            indices = used.get(spec.name, set())
            offsets[spec.name] = 0 if 0 in indices else 1
        return offsets

    # -- nodes ----------------------------------------------------------------------------
    def node(self, data, spec: LayerSpec) -> NodeSpec:
        if isinstance(data, dict) and ("args" in data or "kwargs" in data):
            args = _keras3_value(data.get("args") or [])
            kwargs = _keras3_value(data.get("kwargs") or {})
            return NodeSpec(tuple(args) if isinstance(args, list) else (args,), dict(kwargs))
        if not isinstance(data, list):
            raise InputError(
                f"layer {spec.name!r}: an inbound node Keras cannot read: {str(data)[:200]}"
            )
        leaves: list = []
        structure = _legacy_structure(data, leaves)
        kwargs = {}
        if leaves:
            last = leaves[-1]
            kwargs = last[3] if len(last) > 3 and isinstance(last[3], dict) else {}
        kwargs = {k: _legacy_kwarg(v) for k, v in kwargs.items()}
        if (
            spec.class_name not in TF_OP_LAYERS
            and isinstance(structure, list)
            and len(structure) == 1
        ):
            structure = structure[0]
        return NodeSpec((structure,), kwargs)

    # -- layer configs --------------------------------------------------------------------
    def layer_config(self, class_name: str, config: dict) -> dict:
        config = dict(config)
        if class_name == "InputLayer":
            if "batch_input_shape" in config and "batch_shape" not in config:
                config["batch_shape"] = config.pop("batch_input_shape")
            return config
        if not self.legacy:
            return config
        return normalize_legacy_config(class_name, config)


def normalize_legacy_config(class_name: str, config: dict) -> dict:
    """A Keras 2 layer config in the form (and with the meaning) Keras 3 would give it."""
    config = {k: v for k, v in config.items() if k not in ("batch_input_shape", "batch_size")}
    for key in ("activation", "recurrent_activation"):
        if config.get(key) == "hard_sigmoid":
            config[key] = KERAS2_HARD_SIGMOID
    if class_name == "LeakyReLU" and "alpha" in config and "negative_slope" not in config:
        config["negative_slope"] = config.pop("alpha")
    if class_name in ("LSTM", "GRU", "SimpleRNN"):
        if config.get("time_major") is False:
            config.pop("time_major")
        config.pop("implementation", None)
        if class_name == "GRU" and "reset_after" not in config:
            config["reset_after"] = False  # Keras <= 2.3 default
    if class_name in (
        "DepthwiseConv1D",
        "DepthwiseConv2D",
        "SeparableConv1D",
        "SeparableConv2D",
        "Conv1DTranspose",
        "Conv2DTranspose",
        "Conv3DTranspose",
    ) and config.get("groups") in (1, None):
        config.pop("groups", None)  # tf.keras writes groups=1 here; Keras 3 refuses it
    if class_name in ("DepthwiseConv1D", "DepthwiseConv2D") and config.get("filters") is None:
        config.pop("filters", None)
    if class_name == "MultiHeadAttention":
        for key in ("query_shape", "key_shape", "value_shape"):
            config.pop(key, None)
    if class_name == "Embedding":
        config.pop("input_length", None)
    if class_name == "BatchNormalization":
        axis = config.get("axis")
        if isinstance(axis, list) and len(axis) == 1:
            config["axis"] = axis[0]
    if class_name == "Bidirectional":
        inner = _wrapped(config.get("layer"))
        if inner is not None:
            inner_name = str(inner["config"].get("name", "layer"))
            forward = copy.deepcopy(inner)
            forward["config"]["name"] = "forward_" + _removeprefix(inner_name, "forward_")
            config["layer"] = forward
            backward = _wrapped(config.get("backward_layer"))
            if backward is None:
                backward = copy.deepcopy(inner)
                backward["config"]["go_backwards"] = not inner["config"].get("go_backwards", False)
                backward["config"]["name"] = "backward_" + _removeprefix(inner_name, "backward_")
            config["backward_layer"] = backward
    if class_name == "TimeDistributed":
        inner = _wrapped(config.get("layer"))
        if inner is not None:
            config["layer"] = inner
    return config


def _clean(value):
    """A config without the ``shared_object_id`` marks Keras 3 adds when saving."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items() if k != "shared_object_id"}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


# Keras 2's cuDNN-only recurrent layers: an LSTM/GRU with fixed activations (cuDNN's sigmoid,
# not Keras 2's default hard_sigmoid) whose weights are stored in cuDNN's layout.
CUDNN = {"CuDNNLSTM": "LSTM", "CuDNNGRU": "GRU"}


def cudnn_config(kind: str, config: dict) -> dict:
    config = dict(config, activation="tanh", recurrent_activation="sigmoid", use_bias=True)
    if kind == "GRU":
        config["reset_after"] = True
    return config


def _wrapped(entry) -> dict | None:
    """The normalized config of a layer inside a wrapper (Bidirectional, TimeDistributed)."""
    if not isinstance(entry, dict) or not isinstance(entry.get("config"), dict):
        return None
    inner = copy.deepcopy(entry)
    if inner.get("class_name") in CUDNN:
        kind = CUDNN[inner["class_name"]]
        inner["class_name"], inner["config"] = kind, cudnn_config(kind, inner["config"])
    inner["config"] = normalize_legacy_config(str(inner.get("class_name")), inner["config"])
    return inner


def _removeprefix(text: str, prefix: str) -> str:
    return text.removeprefix(prefix)


def _check_unique(specs: list[LayerSpec], model: str) -> None:
    seen = set()
    for spec in specs:
        if spec.name in seen:
            raise InputError(f"model {model!r} has two layers named {spec.name!r}")
        seen.add(spec.name)


# -- values inside nodes ----------------------------------------------------------------------
def _is_legacy_leaf(value) -> bool:
    """``[layer_name, node_index, tensor_index(, kwargs)]`` as tf.keras writes them."""
    return (
        isinstance(value, list)
        and len(value) in (3, 4)
        and isinstance(value[0], str)
        and isinstance(value[1], int)
        and (len(value) == 3 or value[3] is None or isinstance(value[3], dict))
    )


_CONSTANT = "_CONSTANT_VALUE"


def _legacy_structure(data, leaves: list):
    """The first call argument of a legacy node: Refs (and constants) in their structure."""
    if _is_legacy_leaf(data):
        leaves.append(data)
        if data[0] == _CONSTANT:
            return _legacy_kwarg(data[2])
        return Ref(data[0], int(data[1]), int(data[2]))
    if isinstance(data, list):
        return [_legacy_structure(d, leaves) for d in data]
    if isinstance(data, dict):
        return {k: _legacy_structure(v, leaves) for k, v in data.items()}
    return data


def _legacy_kwarg(value):
    """Call arguments: ``[layer, node, tensor]`` lists are tensors (as tf.keras reads them)."""
    if (
        isinstance(value, list)
        and len(value) in (3, 4)
        and isinstance(value[0], str)
        and isinstance(value[1], int)
        and isinstance(value[2], int)
    ):
        return Ref(value[0], int(value[1]), int(value[2]))
    if isinstance(value, list):
        return [_legacy_kwarg(v) for v in value]
    if isinstance(value, dict):
        return {k: _legacy_kwarg(v) for k, v in value.items()}
    return value


def _keras3_value(value):
    """Deserialize a Keras 3 call argument: tensors, slices, tuples, numpy constants."""
    if isinstance(value, list):
        return [_keras3_value(v) for v in value]
    if not isinstance(value, dict):
        return value
    kind = value.get("class_name")
    inner = value.get("config")
    if kind == "__keras_tensor__" and isinstance(inner, dict):
        history = inner.get("keras_history") or []
        if len(history) != 3:
            raise InputError(f"a tensor without history in a node: {str(value)[:200]}")
        shape = inner.get("shape")
        return Ref(
            str(history[0]),
            int(history[1]),
            int(history[2]),
            None if shape is None else tuple(shape),
            inner.get("dtype"),
        )
    if kind == "__slice__" and isinstance(inner, dict):
        return slice(inner.get("start"), inner.get("stop"), inner.get("step"))
    if kind == "__ellipsis__":
        return Ellipsis
    if kind == "__tuple__" and isinstance(inner, dict):
        return tuple(_keras3_value(v) for v in inner.get("value", []))
    if kind in ("__numpy__", "__tensor__") and isinstance(inner, dict):
        import numpy as np

        return np.asarray(inner.get("value"), dtype=inner.get("dtype"))
    if kind is None:
        return {k: _keras3_value(v) for k, v in value.items()}
    return value


def dict_keys(value) -> list[str] | None:
    """The keys of a flat ``{key: [layer, node, tensor]}`` input_layers/output_layers entry,
    in the order :func:`_leaves` gives the tensors (Keras flattens dicts by sorted key)."""
    if not isinstance(value, dict) or not value:
        return None
    if not all(isinstance(k, str) and len(_leaves(v)) == 1 for k, v in value.items()):
        return None
    return sorted(value)


def _leaves(value) -> list[Ref]:
    """input_layers/output_layers: one ``[name, node, tensor]`` or a (nested) list/dict of them."""
    if value is None:
        return []
    if (
        isinstance(value, list)
        and len(value) == 3
        and isinstance(value[0], str)
        and isinstance(value[1], int)
    ):
        return [Ref(value[0], int(value[1]), int(value[2]))]
    if isinstance(value, dict):
        return [r for k in sorted(value) for r in _leaves(value[k])]
    if isinstance(value, list):
        return [r for v in value for r in _leaves(v)]
    raise InputError(f"unreadable input_layers/output_layers entry: {value!r}")


def _shift(ref: Ref, offsets: dict[str, int]) -> Ref:
    offset = offsets.get(ref.layer, 0)
    if not offset:
        return ref
    if ref.node < offset:
        raise InputError(f"a reference to node {ref.node} of model {ref.layer!r}, which has none")
    return Ref(ref.layer, ref.node - offset, ref.tensor, ref.shape, ref.dtype)


def _renumber(value, offsets: dict[str, int]):
    if not offsets:
        return value
    if isinstance(value, Ref):
        return _shift(value, offsets)
    if isinstance(value, tuple):
        return tuple(_renumber(v, offsets) for v in value)
    if isinstance(value, list):
        return [_renumber(v, offsets) for v in value]
    if isinstance(value, dict):
        return {k: _renumber(v, offsets) for k, v in value.items()}
    return value

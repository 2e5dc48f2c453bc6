"""Keras 1.x (2016-2017) layer configs in the form Keras 2 gave them, as Keras 2's own
loader rewrote them (its ``legacy`` interfaces and ``preprocess_weights_for_loading``).

Keras 1 names what Keras 2 renamed (``Dense(output_dim)``, ``Dropout(p)``,
``GaussianNoise(sigma)``, ``UpSampling1D(length)``, ``init``, ``W_regularizer``, ``bias``)
and merges tensors with one ``Merge(mode=...)`` layer; its recurrent layers keep one weight
per gate (fused here by :func:`keras1_stored`, a Bidirectional's two halves each). Its
convolutions, pooling and spatial layers are in :mod:`codegen.read.keras1_convolutions`
(with their kernels' layouts, :func:`keras1_weights`); Theano's flipped kernels are flipped
back as for Keras 2 files. A Keras 1 class or option outside these tables raises
:class:`InputError` naming it.
"""

from __future__ import annotations

import copy

import numpy as np

from codegen.errors import InputError

from .keras1_convolutions import ORDERLESS, REWRITES, keras1_kernel
from .keras1_options import DATA_FORMATS, Keras1Layer

_MERGE_MODES = {
    "concat": "Concatenate",
    "sum": "Add",
    "mul": "Multiply",
    "ave": "Average",
    "max": "Maximum",
}
# Keras 1 classes with nothing to become here, and why.
_REFUSED = {
    "Highway": "Keras 2 kept it only as a deprecated legacy layer; Keras 3 has none",
    "MaxoutDense": "Keras 2 kept it only as a deprecated legacy layer; Keras 3 has none",
    "ParametricSoftplus": "Keras 2 removed it (keras-contrib); Keras 3 has none",
    "SReLU": "Keras 2 removed it (keras-contrib); Keras 3 has none",
    "LocallyConnected1D": "the converter has no LocallyConnected layers",
    "LocallyConnected2D": "the converter has no LocallyConnected layers",
    "ConvLSTM2D": "its Keras 1 weights are not read here",
}
_NEEDED = object()  # an option without a default
# Keras 1 options that keep their name and meaning in Keras 2, per class, with defaults.
_SAME = {
    "Reshape": {"target_shape": _NEEDED},
    "Permute": {"dims": _NEEDED},
    "RepeatVector": {"n": _NEEDED},
    "Masking": {"mask_value": 0.0},
    "ActivityRegularization": {"l1": 0.0, "l2": 0.0},
    "LeakyReLU": {"alpha": 0.3},
    "ELU": {"alpha": 1.0},
    "ThresholdedReLU": {"theta": 1.0},
    "Activation": {"activation": _NEEDED},
    "Lambda": {
        "function": _NEEDED,
        "function_type": "lambda",
        "output_shape": None,
        "output_shape_type": "raw",
        "arguments": {},
    },
}
# Keras 1 dropout and noise layers: (Keras 1 option, Keras 2 option).
_NOISE = {
    "Dropout": ("p", "rate"),
    "SpatialDropout1D": ("p", "rate"),
    "SpatialDropout2D": ("p", "rate"),
    "SpatialDropout3D": ("p", "rate"),
    "GaussianDropout": ("p", "rate"),
    "GaussianNoise": ("sigma", "stddev"),
}


def keras1_layer(class_name: str, config: dict) -> tuple[str, dict, str | None]:
    """``(Keras 2 class name, Keras 2 config, kernel_order)``; ``kernel_order`` says how a
    Keras 1 layer's weights differ from Keras 2's ("th", "conv1d:...", "recurrent:LSTM",
    ...; see :func:`keras1_stored` and :func:`keras1_weights`)."""
    if class_name in _REFUSED:
        raise InputError(
            f"Keras 1 layer class {class_name}: not supported ({_REFUSED[class_name]})"
        )
    keep = ("input_dim", "input_length") if class_name == "Embedding" else ()
    layer = Keras1Layer(class_name, config, keep)
    out = layer.out
    if class_name in REWRITES:
        return REWRITES[class_name](layer)
    if class_name in _SAME:
        for key, default in _SAME[class_name].items():
            out[key] = layer.need(key) if default is _NEEDED else layer.take(key, default)
        return (*layer.finish(class_name), None)
    if class_name in _NOISE:
        old, new = _NOISE[class_name]
        out[new] = layer.take(old, 0.0)
        if class_name in ("SpatialDropout2D", "SpatialDropout3D") and "dim_ordering" in layer.left:
            out["data_format"] = layer.data_format()
        return (*layer.finish(class_name), None)
    if class_name == "InputLayer":
        layer.take("sparse")
        return (*layer.finish("InputLayer"), None)
    if class_name == "Dense":
        out["units"] = layer.need("output_dim")
        out["activation"] = layer.take("activation", "linear")
        out["use_bias"] = layer.take("bias", True)
        return (*layer.finish("Dense"), None)
    if class_name == "TimeDistributedDense":  # Keras 1's Dense at each step
        dense_name, dense_config, _ = keras1_layer("Dense", config)
        own = _own_options(dense_config)
        dense_config.pop("batch_input_shape", None)
        inner = {"class_name": dense_name, "config": dense_config}
        return "TimeDistributed", {**own, "layer": inner}, None
    if class_name == "Flatten":
        out["data_format"] = "channels_last"  # Keras 1 flattens in memory order
        return (*layer.finish("Flatten"), None)
    if class_name == "PReLU":
        shared = layer.take("shared_axes")
        if isinstance(shared, list) and shared and shared != [None]:
            # Keras 1 counted them in the input's shape without its batch axis.
            out["shared_axes"] = [int(axis) + 1 for axis in shared]
        # Its one weight ``<name>_alphas`` is Keras 2's alpha, in the same shape.
        return (*layer.finish("PReLU"), None)
    if class_name == "Embedding":
        out["input_dim"] = layer.take("input_dim")
        out["output_dim"] = layer.take("output_dim")
        out["mask_zero"] = layer.take("mask_zero", False)
        layer.take("input_length")
        layer.take("dropout")  # Keras 1's word dropout: training only
        return (*layer.finish("Embedding"), None)
    if class_name == "BatchNormalization":
        if layer.take("mode", 0) != 0:  # modes 1 and 2 normalise with batch statistics
            raise layer.refuse(f"mode={config.get('mode')!r}")
        out["axis"] = layer.take("axis", -1)
        out["epsilon"] = layer.take("epsilon", 1e-3)
        out["momentum"] = layer.take("momentum", 0.99)
        layer.drop("beta_init", "gamma_init", "gamma_regularizer", "beta_regularizer")
        # Its running_std holds the moving variance, as Keras 2's moving_variance.
        return (*layer.finish("BatchNormalization"), None)
    if class_name in _RECURRENT:
        return _recurrent(layer, class_name)
    if class_name in ("TimeDistributed", "Bidirectional"):
        return _wrapper(layer)
    if class_name == "Merge":
        return (*_merge(layer), None)
    raise InputError(f"Keras 1 layer class {class_name}: not supported (re-save it with Keras 2)")


def _own_options(config: dict) -> dict:
    """A wrapper's own options: the wrapped layer's name, trainability and input shape."""
    keys = ("name", "trainable", "batch_input_shape", "dtype")
    return {k: config[k] for k in keys if k in config}


def _wrapper(layer: Keras1Layer) -> tuple[str, dict, str | None]:
    inner = layer.take("layer")
    if not isinstance(inner, dict) or not isinstance(inner.get("config"), dict):
        raise layer.refuse("no wrapped layer")
    kind = inner.get("class_name")
    if kind in ("Sequential", "Model", "TimeDistributed", "Bidirectional"):
        raise layer.refuse(f"a wrapped {kind}")
    if layer.class_name == "Bidirectional" and kind not in _RECURRENT:
        raise layer.refuse(f"a wrapped {kind}")
    name, config, order = keras1_layer(str(kind), inner["config"])
    config.pop("batch_input_shape", None)
    layer.out["layer"] = {"class_name": name, "config": config}
    if layer.class_name == "Bidirectional":
        layer.out["merge_mode"] = layer.take("merge_mode", "concat")
        # Keras 1 stores the forward layer's weights, then the backward layer's.
        order = f"bidirectional:{order}"
    return (*layer.finish(layer.class_name), order)


# Keras 1's recurrent layers: the per-gate weights they may hold, in their order, and where
# each goes in Keras 2's fused kernels (gate order i, f, c, o and z, r, h).
_RECURRENT = {"LSTM": (12, (0, 2, 1, 3)), "GRU": (9, (0, 1, 2)), "SimpleRNN": (3, (0,))}


def _recurrent(layer: Keras1Layer, class_name: str) -> tuple[str, dict, str | None]:
    out = layer.out
    out["units"] = layer.take("output_dim")
    out["activation"] = layer.take("activation", "tanh")
    if class_name != "SimpleRNN":
        out["recurrent_activation"] = layer.take("inner_activation", "hard_sigmoid")
    out["return_sequences"] = layer.take("return_sequences", False)
    out["go_backwards"] = layer.take("go_backwards", False)
    if layer.take("stateful", False):
        raise layer.refuse("stateful=True")
    out["dropout"] = layer.take("dropout_W", 0.0)
    out["recurrent_dropout"] = layer.take("dropout_U", 0.0)
    for key in ("unroll", "consume_less", "forget_bias_init", "U_regularizer"):
        layer.take(key)  # unroll and the weight layout change no result
    if class_name == "GRU":
        out["reset_after"] = False  # Keras 1's GRU resets before the recurrent product
    return (*layer.finish(class_name), f"recurrent:{class_name}")


def keras1_stored(order: str | None, stored: list) -> list:
    """A Keras 1 recurrent layer's per-gate weights, fused as Keras 2's loader fused them
    (a Bidirectional's forward half, then its backward half)."""
    if order and order.startswith("bidirectional:"):
        inner = order.split(":", 1)[1]
        half = len(stored) // 2
        if len(stored) % 2:
            return stored
        return keras1_stored(inner, stored[:half]) + keras1_stored(inner, stored[half:])
    if not order or not order.startswith("recurrent:"):
        return stored
    count, gates = _RECURRENT[order.split(":", 1)[1]]
    if len(stored) != count or count == 3:
        return stored  # already fused (consume_less="gpu", or a SimpleRNN)
    arrays = [array for _, array in stored]
    fused = []
    for part in range(3):  # W (kernel), U (recurrent kernel), b (bias) of each gate
        pieces = [arrays[3 * gate + part] for gate in gates]
        fused.append((("kernel", "recurrent_kernel", "bias")[part], np.concatenate(pieces, -1)))
    return fused


def _merge(layer: Keras1Layer) -> tuple[str, dict]:
    mode = layer.take("mode", "sum")
    if layer.take("mode_type", "raw") != "raw" or mode not in _MERGE_MODES:
        raise layer.refuse(f"mode={mode!r}")
    axis = layer.take("concat_axis", -1)
    for key in ("dot_axes", "output_shape", "output_shape_type", "output_mask"):
        layer.take(key)
    for key in ("output_mask_type", "arguments"):
        layer.take(key)
    if mode == "concat":
        layer.out["axis"] = axis
    return layer.finish(_MERGE_MODES[mode])


def keras1_weights(order: str | None, key: str, array: np.ndarray) -> np.ndarray:
    """A Keras 1 variable in Keras 2's layout (what Keras 2's loader did to it)."""
    if order is None or order.startswith(("recurrent:", "bidirectional:")):
        return array
    return keras1_kernel(order, key, array)


def keras1_model(entry: dict) -> dict:
    """A Keras 1 Sequential whose first layer merges other Sequentials (``Merge([left,
    right])``: a model of several inputs) as the functional config of the same graph; any
    other model config unchanged. The branches' layers keep their names, as the weights
    file lists them."""
    entry = fill_dim_ordering(entry)
    config = entry.get("config")
    if entry.get("class_name") != "Sequential" or not isinstance(config, list) or not config:
        return entry
    if not _is_branch_merge(config[0]):
        return entry
    layers, inputs, output = _inline_sequential(config)
    return {
        "class_name": "Model",
        "config": {
            "name": "sequential",
            "layers": layers,
            "input_layers": [[name, 0, 0] for name in inputs],
            "output_layers": [[output, 0, 0]],
        },
    }


def fill_dim_ordering(entry: dict) -> dict:
    """The model with a ``dim_ordering`` in each layer Keras 1 saved without one
    (:data:`~codegen.read.keras1_convolutions.ORDERLESS`): the ordering its other layers
    record, when they agree ("tf", Keras's default, when none records one). Keras 1 and 2
    loaded those layers with the machine's default ordering, which a model trained in "th"
    needed set to "th"."""
    orderings: set = set()
    missing: list = []

    def walk(value) -> None:
        if isinstance(value, list):
            for item in value:
                walk(item)
            return
        if not isinstance(value, dict):
            return
        config = value.get("config")
        if isinstance(value.get("class_name"), str) and isinstance(config, dict):
            if "dim_ordering" in config:
                orderings.add(config["dim_ordering"])
            elif value["class_name"] in ORDERLESS:
                missing.append(config.get("name"))
        for item in value.values():
            walk(item)

    walk(entry)
    if not missing:
        return entry
    known = orderings & set(DATA_FORMATS)
    if len(known) > 1:
        raise InputError(
            f"Keras 1 layer {missing[0]!r} did not save its dim_ordering and the model's other "
            "layers use both 'th' and 'tf': which one it ran with is unknown"
        )
    ordering = known.pop() if known else "tf"
    entry = copy.deepcopy(entry)

    def fill(value) -> None:
        if isinstance(value, list):
            for item in value:
                fill(item)
        elif isinstance(value, dict):
            config = value.get("config")
            if value.get("class_name") in ORDERLESS and isinstance(config, dict):
                config.setdefault("dim_ordering", ordering)
            for item in value.values():
                fill(item)

    fill(entry)
    return entry


def _is_branch_merge(entry) -> bool:
    return (
        isinstance(entry, dict)
        and entry.get("class_name") == "Merge"
        and isinstance((entry.get("config") or {}).get("layers"), list)
    )


def _inline_sequential(entries: list) -> tuple[list, list, str]:
    """``(layer entries with inbound nodes, input layer names, output layer name)``."""
    layers: list = []
    inputs: list = []
    first = entries[0]
    if _is_branch_merge(first):
        outputs = []
        for branch in first["config"]["layers"]:
            if not isinstance(branch, dict) or branch.get("class_name") != "Sequential":
                raise InputError("Keras 1 Merge of something other than Sequential models")
            branch_layers, branch_inputs, branch_output = _inline_sequential(branch["config"])
            layers += branch_layers
            inputs += branch_inputs
            outputs.append(branch_output)
        config = {k: v for k, v in first["config"].items() if k != "layers"}
        layers.append(_entry("Merge", config, [[name, 0, 0] for name in outputs]))
        rest = entries[1:]
    else:
        config = first.get("config") or {}
        shape = config.get("batch_input_shape")
        if shape is None:
            raise InputError(f"Keras 1 Sequential branch {config.get('name')!r} has no input shape")
        name = f"{config.get('name')}_input"
        dtype = config.get("input_dtype", "float32")
        input_config = {"name": name, "batch_input_shape": shape, "input_dtype": dtype}
        layers.append(_entry("InputLayer", input_config, None))
        inputs.append(name)
        rest = entries
    for entry in rest:
        previous = layers[-1]["name"]
        layers.append(_entry(entry["class_name"], entry.get("config") or {}, [[previous, 0, 0]]))
    return layers, inputs, layers[-1]["name"]


def _entry(class_name: str, config: dict, inbound: list | None) -> dict:
    name = config.get("name")
    if not isinstance(name, str):
        raise InputError(f"a Keras 1 {class_name} layer without a name")
    return {
        "class_name": class_name,
        "name": name,
        "config": config,
        "inbound_nodes": [] if inbound is None else [inbound],
    }

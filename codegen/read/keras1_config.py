"""Keras 1.x (2016-2017) layer configs in the form Keras 2 gave them, as Keras 2's own
loader rewrote them (its ``legacy`` interfaces and ``preprocess_weights_for_loading``).

Keras 1 names what Keras 2 renamed (``Convolution2D(nb_filter, nb_row, nb_col,
border_mode, subsample, dim_ordering)``, ``Dense(output_dim)``, ``Dropout(p)``, ``init``,
``W_regularizer``, ``bias``) and merges tensors with one ``Merge(mode=...)`` layer; its
recurrent layers keep one weight per gate (fused here by :func:`keras1_stored`). Its
convolution kernels follow ``dim_ordering``: ``"th"`` stores ``(filters, channels, rows,
cols)``, transposed here to Keras 2's ``(rows, cols, channels, filters)``
(:func:`keras1_weights`); Theano's flipped kernels are flipped back as for Keras 2 files.
A Keras 1 class or option outside this table raises :class:`InputError` naming it.
"""

from __future__ import annotations

import numpy as np

from codegen.errors import InputError

_DATA_FORMATS = {"th": "channels_first", "tf": "channels_last"}
_PADDINGS = ("valid", "same")
# Keys every Keras 1 layer may carry, with their Keras 2 names (None: dropped, no effect at
# inference).
_COMMON = {
    "name": "name",
    "trainable": "trainable",
    "batch_input_shape": "batch_input_shape",
    "input_dtype": "dtype",
    "init": None,  # Keras 1 initializer names; a ported model keeps its trained values
    "inner_init": None,
    "W_regularizer": None,
    "b_regularizer": None,
    "activity_regularizer": None,
    "W_constraint": None,
    "b_constraint": None,
    "input_dim": None,
    "input_length": None,
}
_MERGE_MODES = {
    "concat": "Concatenate",
    "sum": "Add",
    "mul": "Multiply",
    "ave": "Average",
    "max": "Maximum",
}


class Keras1Layer:
    """One Keras 1 layer config being rewritten: take its keys, then check none is left."""

    def __init__(self, class_name: str, config: dict, keep: tuple[str, ...] = ()) -> None:
        self.class_name = class_name
        self.left = dict(config)
        self.out: dict = {}
        for key, new in _COMMON.items():
            if key in self.left and key not in keep:
                value = self.left.pop(key)
                if new is not None:
                    self.out[new] = value

    def take(self, key: str, default=None):
        return self.left.pop(key, default)

    def refuse(self, what: str) -> InputError:
        return InputError(f"Keras 1 layer {self.class_name} with {what}: not supported")

    def data_format(self) -> str:
        ordering = self.take("dim_ordering", "tf")
        if ordering not in _DATA_FORMATS:
            raise self.refuse(f"dim_ordering={ordering!r}")
        return _DATA_FORMATS[ordering]

    def padding(self) -> str:
        mode = self.take("border_mode", "valid")
        if mode not in _PADDINGS:
            raise self.refuse(f"border_mode={mode!r}")
        return mode

    def finish(self, class_name: str) -> tuple[str, dict]:
        if self.left:
            raise self.refuse(f"option(s) {sorted(self.left)}")
        return class_name, self.out


def keras1_layer(class_name: str, config: dict) -> tuple[str, dict, str | None]:
    """``(Keras 2 class name, Keras 2 config, kernel_order)``; ``kernel_order`` says how a
    Keras 1 kernel is laid out ("th", "conv1d") where it differs from Keras 2's."""
    keep = ("input_dim", "input_length") if class_name == "Embedding" else ()
    layer = Keras1Layer(class_name, config, keep)
    out = layer.out
    order = None
    if class_name == "InputLayer":
        layer.take("sparse")
        return (*layer.finish("InputLayer"), None)
    if class_name == "Dense":
        out["units"] = layer.take("output_dim")
        out["activation"] = layer.take("activation", "linear")
        out["use_bias"] = layer.take("bias", True)
        return (*layer.finish("Dense"), None)
    if class_name in ("Convolution2D", "Conv2D"):
        out["filters"] = layer.take("nb_filter")
        out["kernel_size"] = [layer.take("nb_row"), layer.take("nb_col")]
        out["strides"] = list(layer.take("subsample", (1, 1)))
        out["padding"] = layer.padding()
        out["data_format"] = layer.data_format()
        out["activation"] = layer.take("activation", "linear")
        out["use_bias"] = layer.take("bias", True)
        order = "th" if out["data_format"] == "channels_first" else None
        return (*layer.finish("Conv2D"), order)
    if class_name in ("Convolution1D", "Conv1D"):
        out["filters"] = layer.take("nb_filter")
        out["kernel_size"] = [layer.take("filter_length")]
        out["strides"] = [layer.take("subsample_length", 1)]
        out["padding"] = layer.padding()
        out["activation"] = layer.take("activation", "linear")
        out["use_bias"] = layer.take("bias", True)
        return (*layer.finish("Conv1D"), "conv1d")
    if class_name in ("MaxPooling2D", "AveragePooling2D"):
        out["pool_size"] = list(layer.take("pool_size", (2, 2)))
        strides = layer.take("strides")
        out["strides"] = out["pool_size"] if strides is None else list(strides)
        out["padding"] = layer.padding()
        out["data_format"] = layer.data_format()
        return (*layer.finish(class_name), None)
    if class_name in ("MaxPooling1D", "AveragePooling1D"):
        out["pool_size"] = [layer.take("pool_length", 2)]
        stride = layer.take("stride")
        out["strides"] = out["pool_size"] if stride is None else [stride]
        out["padding"] = layer.padding()
        return (*layer.finish(class_name), None)
    if class_name == "ZeroPadding2D":
        padding = list(layer.take("padding", (1, 1)))
        if len(padding) == 2:
            padding = [[padding[0]] * 2, [padding[1]] * 2]
        elif len(padding) == 4:  # (top, bottom, left, right)
            padding = [padding[:2], padding[2:]]
        out["padding"] = padding
        out["data_format"] = layer.data_format()
        return (*layer.finish("ZeroPadding2D"), None)
    if class_name == "Flatten":
        out["data_format"] = "channels_last"  # Keras 1 flattens in memory order
        return (*layer.finish("Flatten"), None)
    if class_name == "Dropout":
        out["rate"] = layer.take("p", 0.0)
        return (*layer.finish("Dropout"), None)
    if class_name == "Activation":
        out["activation"] = layer.take("activation")
        return (*layer.finish("Activation"), None)
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
        for key in ("beta_init", "gamma_init", "gamma_regularizer", "beta_regularizer"):
            layer.take(key)
        # Its running_std holds the moving variance, as Keras 2's moving_variance.
        return (*layer.finish("BatchNormalization"), None)
    if class_name in _RECURRENT:
        return _recurrent(layer, class_name)
    if class_name == "Merge":
        return (*_merge(layer), None)
    raise InputError(f"Keras 1 layer class {class_name}: not supported (re-save it with Keras 2)")


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
    """A Keras 1 recurrent layer's per-gate weights, fused as Keras 2's loader fused them."""
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
    if key.rsplit("/", 1)[-1] != "kernel" or order is None:
        return array
    if order == "th":  # (filters, channels, rows, cols) -> (rows, cols, channels, filters)
        return np.ascontiguousarray(np.transpose(array, (2, 3, 1, 0)))
    if order == "conv1d" and array.ndim == 4:  # (length, 1, channels, filters)
        return np.ascontiguousarray(array[:, 0])
    return array


def keras1_model(entry: dict) -> dict:
    """A Keras 1 Sequential whose first layer merges other Sequentials (``Merge([left,
    right])``: a model of several inputs) as the functional config of the same graph; any
    other model config unchanged. The branches' layers keep their names, as the weights
    file lists them."""
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

"""Weights of a model file, keyed the way :mod:`codegen.read_keras` keys them.

Converters ask a layer for its variables by their path inside the layer (``"kernel"``,
``"moving_mean"``, ``"lstm_cell/kernel"``, ``"forward_lstm/lstm_cell/kernel"``,
``"query/kernel"``), as Keras 3 names them. :func:`variables` lists, per layer class and config,
those keys in the order Keras stores them. Files keep them differently:

- legacy ``.h5`` (Keras 2, tf.keras, Keras 3's h5 writer): ``model_weights/<layer>/`` with the
  variable names in the ``weight_names`` attribute, in the order of ``layer.weights``; names
  carry prefixes that changed over versions (``conv2d_1_1/kernel:0``,
  ``bidirectional/forward_lstm/lstm_cell/kernel:0``, ``sequential_1/gru/gru_cell/kernel``).
  A nested model's group holds all its layers' variables, trainable ones first;
- Keras 3 ``model.weights.h5``: numbered ``vars/<i>`` under paths made from the objects'
  attribute names and snake-cased class names (``layers/lstm/cell/vars/0``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from codegen.errors import InputError


class WeightsUnsupported(InputError):
    """The file reader cannot map these weights (the Keras reader may)."""


@dataclass(frozen=True)
class Var:
    key: str  # path inside the layer, as read_keras keys it
    trainable: bool = True
    zip_path: str = ""  # inside the layer's group of model.weights.h5; "" = not stored
    lora: str = ""  # "a"/"b": a LoRA factor Keras merges into the kernel when saving

    @property
    def base(self) -> str:
        return self.key.rsplit("/", 1)[-1]


_CELLS = {"LSTM": "lstm_cell", "GRU": "gru_cell", "SimpleRNN": "simple_rnn_cell"}
_CONV_LSTM = {"ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D"}
_CONVS = {
    "Conv1D",
    "Conv2D",
    "Conv3D",
    "Conv1DTranspose",
    "Conv2DTranspose",
    "Conv3DTranspose",
    "DepthwiseConv1D",
    "DepthwiseConv2D",
}
_ATTENTION_DENSES = (
    ("query", "query_dense"),
    ("key", "key_dense"),
    ("value", "value_dense"),
    ("attention_output", "output_dense"),
)


def _own(names, zip_prefix: str = "", key_prefix: str = "", trainable=True) -> list[Var]:
    return [
        Var(f"{key_prefix}{n}", trainable, f"{zip_prefix}vars/{i}") for i, n in enumerate(names)
    ]


def _lora(config: dict, kernel: str = "kernel") -> list[Var]:
    if not config.get("lora_rank"):
        return []
    return [Var(f"lora_{kernel}_a", True, "", "a"), Var(f"lora_{kernel}_b", True, "", "b")]


def _frozen_kernel(own: list[Var], config: dict, name: str = "kernel") -> list[Var]:
    """With LoRA, Keras freezes the kernel (only the factors train)."""
    if not config.get("lora_rank"):
        return own
    return [Var(v.key, False, v.zip_path) if v.key == name else v for v in own]


def _quantized(config: dict) -> bool:
    policy = config.get("dtype")
    name = (
        (policy.get("config") or {}).get("name", "")
        if isinstance(policy, dict)
        else str(policy or "")
    )
    return bool(config.get("quantization_config")) or any(
        name.startswith(p) for p in ("int8", "int4", "float8", "gptq", "awq")
    )


def variables(class_name: str, config: dict) -> list[Var] | None:
    """Variables of a layer in Keras's storage order; None for a class not in the table."""
    c = config
    bias = bool(c.get("use_bias", True))
    if class_name in ("Dense", "EinsumDense", "Embedding") or class_name in _CONVS:
        if _quantized(c):
            raise WeightsUnsupported(f"quantized {class_name} layers")
    if class_name == "Dense":
        return _frozen_kernel(_own(["kernel"] + (["bias"] if bias else [])), c) + _lora(c)
    if class_name == "EinsumDense":
        names = ["kernel"] + (["bias"] if c.get("bias_axes") else [])
        return _frozen_kernel(_own(names), c) + _lora(c)
    if class_name in _CONVS:
        return _frozen_kernel(_own(["kernel"] + (["bias"] if bias else [])), c) + _lora(c)
    if class_name in ("SeparableConv1D", "SeparableConv2D"):
        return _own(["depthwise_kernel", "pointwise_kernel"] + (["bias"] if bias else []))
    if class_name == "BatchNormalization":
        names = (["gamma"] if c.get("scale", True) else []) + (
            ["beta"] if c.get("center", True) else []
        )
        names += ["moving_mean", "moving_variance"]
        return [
            Var(n, n not in ("moving_mean", "moving_variance"), f"vars/{i}")
            for i, n in enumerate(names)
        ]
    if class_name in ("LayerNormalization", "GroupNormalization"):
        names = ["gamma"] if c.get("scale", True) else []
        if c.get("center", True) and not c.get("rms_scaling"):
            names.append("beta")
        return _own(names)
    if class_name == "RMSNormalization":
        return _own(["scale"])
    if class_name == "PReLU":
        return _own(["alpha"])
    if class_name == "Embedding":
        return _frozen_kernel(_own(["embeddings"]), c, "embeddings") + _lora(c, "embeddings")
    if class_name == "Normalization":
        if c.get("mean") is not None:
            return []
        return _own(["mean", "variance", "count"], trainable=False)
    if class_name == "Attention":
        names = (["scale"] if c.get("use_scale") else []) + (
            ["concat_score_weight"] if c.get("score_mode") == "concat" else []
        )
        return _own(names)
    if class_name == "AdditiveAttention":
        return _own(["scale"] if c.get("use_scale", True) else [])
    if class_name in ("MultiHeadAttention", "GroupedQueryAttention", "GroupQueryAttention"):
        use_bias = bool(c.get("use_bias", True))
        private = "_" if class_name != "MultiHeadAttention" else ""
        out = []
        for key, attr in _ATTENTION_DENSES:
            names = ["kernel"] + (["bias"] if use_bias else [])
            out += _own(names, f"{private}{attr}/", f"{key}/")
        return out
    if class_name in _CELLS:
        names = ["kernel", "recurrent_kernel"] + (["bias"] if bias else [])
        return _own(names, "cell/", f"{_CELLS[class_name]}/")
    if class_name == "RNN":
        cell = c.get("cell")
        if not isinstance(cell, dict) or not isinstance(cell.get("config"), dict):
            return None
        cell_config = cell["config"]
        names = ["kernel", "recurrent_kernel"] + (
            ["bias"] if cell_config.get("use_bias", True) else []
        )
        return _own(names, "cell/", f"{cell_config.get('name')}/")
    if class_name in _CONV_LSTM:
        names = ["kernel", "recurrent_kernel"] + (["bias"] if bias else [])
        return _own(names, "cell/", "conv_lstm_cell/")
    if class_name == "Bidirectional":
        out = []
        for key, attr in (("layer", "forward_layer"), ("backward_layer", "backward_layer")):
            inner = c.get(key)
            if not isinstance(inner, dict):
                return None
            inner_vars = variables(str(inner.get("class_name")), inner.get("config") or {})
            if inner_vars is None:
                return None
            name = (inner.get("config") or {}).get("name")
            out += [
                Var(
                    f"{name}/{v.key}",
                    v.trainable,
                    f"{attr}/{v.zip_path}" if v.zip_path else "",
                    v.lora,
                )
                for v in inner_vars
            ]
        return out
    if class_name == "TimeDistributed":
        inner = c.get("layer")
        if not isinstance(inner, dict):
            return None
        inner_vars = variables(str(inner.get("class_name")), inner.get("config") or {})
        if inner_vars is None:
            return None
        name = (inner.get("config") or {}).get("name")
        return [
            Var(f"{name}/{v.key}", v.trainable, f"layer/{v.zip_path}" if v.zip_path else "", v.lora)
            for v in inner_vars
        ]
    if class_name == "LayerScale":
        return _own(["variable"])
    if class_name in _NO_VARIABLES:
        return []
    return None


_NO_VARIABLES = {
    "InputLayer",
    "Activation",
    "ActivityRegularization",
    "Add",
    "AlphaDropout",
    "Average",
    "AveragePooling1D",
    "AveragePooling2D",
    "AveragePooling3D",
    "CenterCrop",
    "Concatenate",
    "Cropping1D",
    "Cropping2D",
    "Cropping3D",
    "CustomScaleLayer",
    "Dot",
    "Dropout",
    "ELU",
    "Flatten",
    "GaussianDropout",
    "GaussianNoise",
    "GlobalAveragePooling1D",
    "GlobalAveragePooling2D",
    "GlobalAveragePooling3D",
    "GlobalMaxPooling1D",
    "GlobalMaxPooling2D",
    "GlobalMaxPooling3D",
    "Identity",
    "LeakyReLU",
    "Masking",
    "MaxPooling1D",
    "MaxPooling2D",
    "MaxPooling3D",
    "Maximum",
    "Minimum",
    "Multiply",
    "Permute",
    "ReLU",
    "RepeatVector",
    "Rescaling",
    "Reshape",
    "Resizing",
    "Softmax",
    "SpatialDropout1D",
    "SpatialDropout2D",
    "SpatialDropout3D",
    "Subtract",
    "UnitNormalization",
    "UpSampling1D",
    "UpSampling2D",
    "UpSampling3D",
    "ZeroPadding1D",
    "ZeroPadding2D",
    "ZeroPadding3D",
    "Lambda",
    "TFOpLambda",
    "SlicingOpLambda",
    "TensorFlowOpLayer",
}
# Random augmentation layers (the identity at inference) hold no variables either.
_NO_VARIABLES |= set(
    "AugMix CutMix MixUp RandAugment RandomBrightness RandomColorDegeneration "
    "RandomColorJitter RandomContrast RandomCrop RandomElasticTransform RandomErasing "
    "RandomFlip RandomGaussianBlur RandomGrayscale RandomHue RandomInvert RandomPerspective "
    "RandomPosterization RandomRotation RandomSaturation RandomSharpness RandomShear "
    "RandomTranslation RandomZoom Solarization".split()
)


def lora_factor(var: Var, kernel: np.ndarray, rank: int) -> np.ndarray:
    """A zero LoRA factor: Keras saves the kernel with the LoRA update merged in."""
    if var.lora == "a":
        return np.zeros(kernel.shape[:-1] + (rank,), dtype=kernel.dtype)
    return np.zeros((rank, kernel.shape[-1]), dtype=kernel.dtype)


# -- legacy .h5 ---------------------------------------------------------------------------------
def _text(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def legacy_group_weights(group) -> list[tuple[str, np.ndarray]]:
    """``(name, array)`` of a ``model_weights/<layer>`` group, in ``weight_names`` order."""
    names = [_text(n) for n in group.attrs.get("weight_names", [])]
    out = []
    for name in names:
        try:
            out.append((name, np.asarray(group[name])))
        except KeyError:
            raise InputError(f"weights: {group.name}/{name} is listed but missing") from None
    return out


def name_parts(name: str) -> list[str]:
    """``"model/conv2d_1/kernel:0"`` -> ``["model", "conv2d_1", "kernel"]``."""
    name = re.sub(r":\d+$", "", name)
    return [p for p in name.split("/") if p]


_RENAMES = {
    ("DepthwiseConv1D", "depthwise_kernel"): "kernel",
    ("DepthwiseConv2D", "depthwise_kernel"): "kernel",
}


def _compatible(var: Var, parts: list[str], class_name: str) -> bool:
    base = _RENAMES.get((class_name, parts[-1]), parts[-1])
    if base != var.base:
        return False
    context = parts[:-1]
    for part in var.key.split("/")[:-1]:
        if part in ("lstm_cell", "gru_cell", "simple_rnn_cell", "conv_lstm_cell"):
            continue
        role = part.split("_", 1)[0] if part.startswith(("forward_", "backward_")) else part
        if not any(p == part or p.startswith(role) for p in context):
            return False
    return True


def assign_legacy(
    layer_name: str, class_name: str, expected: list[Var], stored: list[tuple[str, np.ndarray]]
) -> dict[str, np.ndarray]:
    """Match stored ``(name, array)`` pairs to the expected variables of one layer."""
    wanted = [v for v in expected if not v.lora]
    if len(stored) == len(expected):  # Keras 3's .h5 writer keeps LoRA factors apart
        wanted = list(expected)
    if len(stored) != len(wanted):
        raise InputError(
            f"layer {layer_name!r} ({class_name}): the file holds {len(stored)} weight(s) "
            f"{[n for n, _ in stored]}, a {class_name} with this config has {len(wanted)} "
            f"{[v.key for v in wanted]}"
        )
    result: dict[str, np.ndarray] = {}
    taken: set[int] = set()
    by_name = True
    for name, array in stored:
        parts = name_parts(name)
        match = next(
            (
                i
                for i, v in enumerate(wanted)
                if i not in taken and _compatible(v, parts, class_name)
            ),
            None,
        )
        if match is None:
            by_name = False
            break
        taken.add(match)
        result[wanted[match].key] = array
    if not by_name:  # names that say nothing useful: Keras's own order
        result = {v.key: array for v, (_, array) in zip(wanted, stored)}
    return result


# -- weights as old Keras versions stored them ---------------------------------------------------
_GATES = {"lstm_cell": 4, "gru_cell": 3}


def from_cudnn(key: str, array: np.ndarray) -> np.ndarray:
    """A CuDNNLSTM/CuDNNGRU variable in Keras's LSTM/GRU layout (Keras 2's own conversion,
    ``_convert_rnn_weights``): input kernels reordered gate by gate, recurrent kernels
    transposed gate by gate, the two bias halves summed (LSTM) or stacked (GRU)."""
    parts = key.split("/")
    cell, name = (parts[-2], parts[-1]) if len(parts) > 1 else ("", parts[-1])
    gates = _GATES.get(cell)
    if gates is None:
        return array
    if name == "kernel":
        return np.hstack([k.T.reshape(k.shape, order="F") for k in np.hsplit(array, gates)])
    if name == "recurrent_kernel":
        return np.hstack([k.T for k in np.hsplit(array, gates)])
    if name == "bias" and array.ndim == 1:
        halves = np.split(array, 2)
        return halves[0] + halves[1] if gates == 4 else np.stack(halves)
    return array


_FLIPPED_CONVS = {"Conv1D", "Conv2D", "Conv3D", "Conv2DTranspose", "ConvLSTM2D"}


def from_theano(class_name: str, key: str, array: np.ndarray) -> np.ndarray:
    """Theano convolves (flips the kernel) where TensorFlow correlates: Keras 2 flipped the
    spatial axes of convolution kernels saved with the Theano backend when loading them."""
    if class_name not in _FLIPPED_CONVS or key.rsplit("/", 1)[-1] not in (
        "kernel",
        "recurrent_kernel",
    ):
        return array
    if class_name != "ConvLSTM2D" and key.endswith("recurrent_kernel"):
        return array
    flip = tuple(slice(None, None, -1) for _ in range(array.ndim - 2)) + (slice(None), slice(None))
    return np.ascontiguousarray(array[flip])

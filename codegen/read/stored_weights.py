"""Weights of a model file, keyed the way :mod:`codegen.read.from_keras` keys them.

Converters ask a layer for its variables by their path inside the layer (``"kernel"``,
``"moving_mean"``, ``"lstm_cell/kernel"``, ``"forward_lstm/lstm_cell/kernel"``,
``"query/kernel"``), as Keras 3 names them. The facts of each layer family in
:mod:`codegen.read.layers` list, per layer class and config, those keys in the order Keras
stores them (registered here with :func:`variables_rule` / :func:`no_variables`; looked up with
:func:`codegen.read.layers.stored_variables`). Files keep them differently:

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
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from codegen.errors import InputError


class FileReaderUnsupported(InputError):
    """Something the file reader cannot reproduce exactly; the Keras reader may still read it."""


class WeightsUnsupported(InputError):
    """The file reader cannot map these weights (the Keras reader may)."""


@dataclass(frozen=True)
class Var:
    key: str  # path inside the layer, as read.from_keras keys it
    trainable: bool = True
    zip_path: str = ""  # inside the layer's group of model.weights.h5; "" = not stored
    lora: str = ""  # "a"/"b": a LoRA factor Keras merges into the kernel when saving

    @property
    def base(self) -> str:
        return self.key.rsplit("/", 1)[-1]


# -- the facts' registry: per class, its variables given its config ------------------------------
VariablesRule = Callable[[str, dict], "list[Var] | None"]
VARIABLE_RULES: dict[str, VariablesRule] = {}


def variables_rule(*class_names: str):
    """Register ``fn(class_name, config) -> [Var, ...]`` (None: cannot tell) for these classes."""

    def decorator(fn: VariablesRule) -> VariablesRule:
        for name in class_names:
            if name in VARIABLE_RULES:
                raise ValueError(f"stored-variable facts for {name} registered twice")
            VARIABLE_RULES[name] = fn
        return fn

    return decorator


def _none(class_name: str, config: dict) -> list[Var]:
    return []


def no_variables(*class_names: str) -> None:
    """Say these classes hold no variables (a class nobody registered is unknown instead)."""
    variables_rule(*class_names)(_none)


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

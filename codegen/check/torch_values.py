"""Running the torch module and reading its values back in Keras's layout.

In: the loaded torch module, its ``state_dict``, the random inputs (Keras layout) with the
layouts the engine recorded, and the :class:`Recorder` the instrumented forward writes to.
Out: the ``state_dict`` mismatches in one line, the final outputs and each recorded statement
value turned back into Keras's axis order, and the error of a value against Keras's.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from codegen.conversion.model import ClassModel
from codegen.ir.layout import Layout

from .instrument import Recorder, to_numpy


def to_keras_layout(array: np.ndarray, layout: Layout) -> np.ndarray:
    """Undo ``torch = keras.permute(perm)`` (and a reordered last axis)."""
    array = np.asarray(array)
    if array.ndim != layout.rank:
        raise ValueError(f"rank {array.ndim}, expected {layout.rank}")
    if layout.feature_order is not None:
        unordered = np.empty_like(array)
        unordered[..., list(layout.feature_order)] = array
        array = unordered
    return np.transpose(array, np.argsort(layout.perm))


def to_torch_inputs(inputs: list[np.ndarray], layouts: list[Layout]):
    import torch

    tensors = []
    for array, layout in zip(inputs, layouts):
        tensor = torch.from_numpy(np.ascontiguousarray(array))
        if not layout.is_keras_order:
            tensor = tensor.permute(layout.perm)
        tensors.append(tensor)
    return tensors


def run_module(module: Any, inputs, layouts, recorder: Recorder, training: bool):
    """Run the forward once (the recorder starts empty); its outputs as numpy, torch layout."""
    import torch

    recorder.values = {}
    module.train(training)
    with torch.no_grad():
        result = module(*to_torch_inputs(inputs, layouts))
    if isinstance(result, dict):  # Keras dict outputs, in the model's output order
        result = list(result.values())
    if not isinstance(result, (list, tuple)):
        result = [result]
    return [to_numpy(r) for r in result]


def value_errors(ref: np.ndarray, got: Any) -> tuple[float, float]:
    """``(max |delta|, max |delta| / max(1, max |ref|))``; infinite for a wrong shape or NaN."""
    if not isinstance(got, np.ndarray) or ref.shape != got.shape:
        return math.inf, math.inf
    if not ref.size:
        return 0.0, 0.0
    ref64 = ref.astype(np.float64)
    delta = float(np.max(np.abs(ref64 - got.astype(np.float64))))
    scale = max(1.0, float(np.max(np.abs(ref64))))
    if math.isnan(delta):
        return math.inf, math.inf
    return delta, delta / scale


def torch_value(src, classes: dict, recorded: dict, keras_vals: dict):
    """The recorded value (torch layout) a row's source points at, or None."""
    if src is None:
        return None
    if src[0] == "input":  # a value that is a forward() argument, seen in another layout
        return None
    name, index, k = src[:3]
    # A line of a block class: the value of this instance (its path in the model).
    value = recorded.get((name, index, src[3]) if len(src) > 4 else (name, index))
    if value is None:
        return None
    if isinstance(value, (tuple, list)):
        return value[k] if k < len(value) else None
    return value if k == 0 else None


def state_dict_mismatch(module: Any, state_dict) -> str:
    """Missing/unexpected keys and shape differences, in one line ("" when it fits)."""
    own = module.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    shapes = [
        f"{k} {tuple(state_dict[k].shape)} vs {tuple(own[k].shape)}"
        for k in own
        if k in state_dict and not _same_shape(getattr(state_dict[k], "shape", None), own[k].shape)
    ]
    parts = []
    for title, keys in (
        ("missing keys", missing),
        ("unexpected keys", unexpected),
        ("shapes differ", shapes),
    ):
        if keys:
            parts.append(f"{title} {', '.join(keys[:5])}{', …' if len(keys) > 5 else ''}")
    return "; ".join(parts)


def _same_shape(given, own) -> bool:
    if given is None:
        return False
    given, own = tuple(given), tuple(own)
    return given == own or (own == () and given == (1,))  # torch loads (1,) into a scalar


def final_outputs(actual: list, top: ClassModel) -> list[np.ndarray]:
    """The forward's outputs in Keras layout (as they are where the layout does not fit)."""
    outs = []
    for value, layout in zip(actual, top.output_layouts):
        try:
            outs.append(to_keras_layout(value, layout))
        except (ValueError, IndexError):
            outs.append(np.asarray(value))
    return outs + list(actual[len(top.output_layouts) :])

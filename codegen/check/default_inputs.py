"""The inputs a check draws when the user gives none, from what the model itself records.

In: the :class:`Graph` (its input shapes and dtypes, and the layer that reads each input
first). Out: one array per input (Keras layout, seed 0) and a sentence saying what was drawn
and why. Only facts stored in the model choose the distribution, never guesses about the
domain:

- a leading ``Rescaling`` that maps [0, 255] onto a unit range (``1/255``, ``1/127.5``):
  whole numbers in [0, 255], as pixels are;
- a leading ``Embedding``: token ids in [0, ``input_dim``);
- a leading adapted ``Normalization``: normal around its stored mean and variance;
- otherwise standard normal floats, small whole numbers for integer inputs (as before).

A nested model that reads the input is looked into: its first layer decides.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from codegen.ir.graph import Call, Graph, Tensor

from .compare import DEFAULT_SPATIAL

# |scale * 255| within this of 1 or 2 means "pixels in [0, 255] to [0, 1] or [-1, 1]".
_PIXEL_SLACK = 1e-3


@dataclass
class Drawn:
    array: np.ndarray
    why: str  # "uniform whole numbers in [0, 255]: Rescaling 'rescale' (scale 0.00392) ..."


def default_inputs(graph: Graph, batch: int = 2, seed: int = 0) -> list[Drawn]:
    """One array per model input, drawn as the model's first layers say its data looks."""
    rng = np.random.default_rng(seed)
    drawn = []
    for tensor in graph.inputs:
        shape = [batch] + [DEFAULT_SPATIAL if d is None else d for d in tensor.shape[1:]]
        drawn.append(_draw(rng, shape, tensor.dtype, _first_reader(graph, tensor)))
    return drawn


def _first_reader(graph: Graph, tensor: Tensor) -> Call | None:
    """The first layer call that reads ``tensor``, looking inside nested models."""
    users = graph.consumers().get(id(tensor), [])
    for call in users:
        sub = call.layer.subgraph
        if sub is None:
            return call
        position = next(i for i, t in enumerate(call.inputs) if t is tensor)
        if position < len(sub.inputs):
            inner = _first_reader(sub, sub.inputs[position])
            if inner is not None:
                return inner
    return None


def _draw(rng, shape: list[int], dtype: str, reader: Call | None) -> Drawn:
    kind = reader.layer.class_name if reader is not None else ""
    name = reader.layer.name if reader is not None else ""
    cast = np.float32 if "float" in dtype else dtype
    if kind == "Embedding":
        input_dim = int(reader.layer.config.get("input_dim", 10))
        ids = rng.integers(0, input_dim, size=shape)
        return Drawn(
            ids.astype(cast),
            f"token ids in [0, {input_dim}): Embedding {name!r} reads it (input_dim {input_dim})",
        )
    if kind == "Rescaling" and _maps_pixels(reader.layer.config):
        pixels = rng.integers(0, 256, size=shape)
        scale = reader.layer.config.get("scale")
        return Drawn(
            pixels.astype(cast),
            f"whole numbers in [0, 255] (pixels): Rescaling {name!r} (scale {float(scale):.4g}) "
            "reads it first",
        )
    if kind == "Normalization" and "float" in dtype:
        stats = _normalization_stats(reader, len(shape))
        if stats is not None:
            mean, std = stats
            values = mean + std * rng.standard_normal(shape)
            return Drawn(
                values.astype(np.float32),
                f"normal around the stored mean and variance of Normalization {name!r}, "
                "which reads it first",
            )
    if "int" in dtype or dtype == "bool":
        high = 2 if dtype == "bool" else 10
        return Drawn(
            rng.integers(0, high, size=shape).astype(dtype),
            f"{dtype} in [0, {high}): nothing in the model says more",
        )
    return Drawn(
        rng.standard_normal(shape).astype(np.float32),
        "standard normal: nothing in the model says more",
    )


def _maps_pixels(config: dict) -> bool:
    try:
        scale = float(config.get("scale", 1.0))
        offset = float(config.get("offset", 0.0))
    except (TypeError, ValueError):  # a per-channel scale: not a plain pixel rescale
        return False
    span = abs(scale) * 255.0
    return offset in (0.0, -1.0) and min(abs(span - 1.0), abs(span - 2.0)) < _PIXEL_SLACK


def _normalization_stats(call: Call, rank: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Mean and standard deviation broadcast to a ``rank`` input, or None when not adapted."""
    layer = call.layer
    cfg = layer.config
    if cfg.get("invert"):  # it reads normalized data: nothing says how the input looks
        return None
    mean, variance = layer.weights.get("mean"), layer.weights.get("variance")
    if mean is None:
        mean, variance = cfg.get("mean"), cfg.get("variance")
    if mean is None or variance is None:
        return None
    axis = cfg.get("axis", (-1,))
    axis = () if axis is None else (axis,) if isinstance(axis, int) else tuple(axis)
    keep = sorted(int(a) % rank for a in axis)
    shape = tuple(call.inputs[0].shape[d] if d in keep else 1 for d in range(rank))
    try:
        mean, variance = np.asarray(mean, np.float64), np.asarray(variance, np.float64)
        mean = mean.reshape(shape) if mean.size > 1 else mean.reshape(())
        variance = variance.reshape(shape) if variance.size > 1 else variance.reshape(())
    except (TypeError, ValueError):  # statistics that do not fit the input: say nothing
        return None
    return mean, np.sqrt(np.maximum(variance, 0.0))

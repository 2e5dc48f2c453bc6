"""The float64 noise floor: is a difference the port's fault, or float32 rounding amplified?

Some models (a trained LSTM fed inputs unlike its training data, deep stacks with large
weights) amplify float32 rounding until two correct float32 implementations disagree by far
more than any tolerance. When the float32 comparison fails, the same port runs again in
float64 (``module.double()``, float inputs cast, integer inputs unchanged): a reference far
closer to exact arithmetic than either float32 run. Measured against it, in the tolerance's
units (``max|Δ| / max(1, max|keras|)``):

- ``port_rel``: the float32 port's own distance, the rounding noise these inputs produce:
  the largest over the float32 run and ``SPREAD_RUNS`` more on inputs moved by a couple of
  float32 ulps (one run of a chaotic model is one draw of its rounding: Keras's kernels make
  another draw, and the largest of a few estimates how far such draws go);
- ``keras_rel``: Keras's distance.

An output is **within the noise** when ``keras_rel <= NOISE_FACTOR * port_rel + tolerance``:
Keras is about as close to exact arithmetic as the float32 port is, so the float32
disagreement proves nothing either way (INCONCLUSIVE). A wrong port leaves Keras far from the
float64 port while the float32 port stays close to it: FAILED stays FAILED.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .torch_values import to_keras_layout, torch_value

# Keras's and torch's float32 kernels round differently: on a chaotic model their distances
# from float64 differ by a small factor, not by orders of magnitude.
NOISE_FACTOR = 10.0
# Extra float32 runs on inputs moved by rounding-sized steps, and the size of those steps.
SPREAD_RUNS = 3
SPREAD_STEP = 2.0**-22  # two float32 ulps, relative


@dataclass
class NoiseFloor:
    name: str  # the output, as in Report.output_errors
    port_rel: float  # float32 port vs float64 port
    keras_rel: float  # Keras vs float64 port
    within: bool  # within_noise(keras_rel, port_rel, tolerance)


def within_noise(keras_rel: float, port_rel: float, tolerance: float) -> bool:
    """Keras is as close to the float64 port as rounding lets the float32 port be."""
    if not (math.isfinite(keras_rel) and math.isfinite(port_rel)):
        return False
    return keras_rel <= NOISE_FACTOR * port_rel + tolerance


def float64_inputs(inputs: list[np.ndarray]) -> list[np.ndarray]:
    """Float inputs in float64; integer and boolean inputs as they are (ids stay ids)."""
    return [a.astype(np.float64) if a.dtype.kind == "f" else a for a in inputs]


def nudged_inputs(inputs: list[np.ndarray], run: int) -> list[np.ndarray]:
    """Float inputs moved by about ``SPREAD_STEP`` of their size (integer inputs kept)."""
    rng = np.random.default_rng(1000 + run)
    nudged = []
    for a in inputs:
        if a.dtype.kind != "f" or not a.size:
            nudged.append(a)
            continue
        wide = a.astype(np.float64)
        size = np.abs(wide) + float(np.mean(np.abs(wide)))
        step = SPREAD_STEP * size * rng.standard_normal(a.shape)
        nudged.append((wide + step).astype(a.dtype))
    return nudged


def float64_module(cls, state_dict):
    """A fresh instance of the port's class with the same weights, in float64."""
    module = cls()
    module.load_state_dict(state_dict, strict=True)
    return module.double()


def relative(reference: np.ndarray, value: np.ndarray, scale: float) -> float:
    if reference.shape != value.shape:
        return math.inf
    if not reference.size:
        return 0.0
    delta = float(np.max(np.abs(reference.astype(np.float64) - value.astype(np.float64))))
    return math.inf if math.isnan(delta) else delta / scale


def scale_of(keras_value: np.ndarray) -> float:
    return max(1.0, float(np.max(np.abs(keras_value)))) if keras_value.size else 1.0


def output_noise(names, expected, port32_runs, port64, tolerance: float) -> list[NoiseFloor]:
    """One :class:`NoiseFloor` per output, in the tolerance's units; ``port32_runs``: the
    float32 outputs of each run (the plain one and the nudged ones)."""
    floors = []
    for i, (name, keras, p64) in enumerate(zip(names, expected, port64)):
        scale = scale_of(np.asarray(keras, np.float64))
        port_rel = max(relative(p64, run[i], scale) for run in port32_runs)
        keras_rel = relative(p64, keras, scale)
        floors.append(
            NoiseFloor(name, port_rel, keras_rel, within_noise(keras_rel, port_rel, tolerance))
        )
    return floors


def fill_layer_noise(rows, classes, values32: dict, values64: dict, keras_vals: dict) -> None:
    """Each compared row's noise floor: ``noise_rel`` (float32 vs float64 port) and
    ``keras64_rel`` (Keras vs float64 port), where its value was recorded in both runs."""
    for row in rows:
        if row.max_rel is None or not row.sources:
            continue
        noise, keras_gap, measured = 0.0, 0.0, False
        for tensor, src in zip(row.call.outputs, row.sources):
            keras = keras_vals.get(id(tensor))
            p32 = torch_value(src, classes, values32, keras_vals)
            p64 = torch_value(src, classes, values64, keras_vals)
            if keras is None or not isinstance(p32, np.ndarray) or not isinstance(p64, np.ndarray):
                continue
            try:
                p32, p64 = to_keras_layout(p32, src[-1]), to_keras_layout(p64, src[-1])
            except (ValueError, IndexError):
                continue
            scale = scale_of(np.asarray(keras, np.float64))
            noise = max(noise, relative(p64, p32, scale))
            keras_gap = max(keras_gap, relative(p64, keras, scale))
            measured = True
        if measured:
            row.noise_rel, row.keras64_rel = noise, keras_gap

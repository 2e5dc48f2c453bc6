"""The benchmark inputs, drawn the same way in the TensorFlow and the PyTorch process."""

from __future__ import annotations

import numpy as np


def make_input(spec: dict, batch: int, seed: int = 0) -> np.ndarray:
    """``spec``: ``{"shape": [...], "dtype": "float32"}``, or ``"vocab": n`` for token ids."""
    rng = np.random.default_rng(seed)
    shape = (batch, *spec["shape"])
    if "vocab" in spec:
        return rng.integers(1, spec["vocab"], size=shape).astype(spec.get("dtype", "int32"))
    return rng.standard_normal(shape).astype(np.float32)

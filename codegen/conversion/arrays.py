"""Weights in C order, the layout the state_dict stores."""

from __future__ import annotations

import warnings

import numpy as np

# Arrays of this many elements or more are transposed by torch: its copy of a transposed
# view runs blocked and on every thread, about 3x numpy's on a 64 MB kernel here.
_BY_TORCH = 1 << 18


def c_order(array, dtype) -> np.ndarray:
    """``array`` as a C-contiguous array of ``dtype`` (itself where it already is one)."""
    array = np.asarray(array)
    if array.dtype != dtype:
        array = array.astype(dtype, order="C")
    if array.flags.c_contiguous:
        return array
    if array.size >= _BY_TORCH and all(stride >= 0 for stride in array.strides):
        import torch

        with warnings.catch_warnings():  # a read-only array is only read here
            warnings.simplefilter("ignore", UserWarning)
            return torch.from_numpy(array).contiguous().numpy()
    return np.ascontiguousarray(array)

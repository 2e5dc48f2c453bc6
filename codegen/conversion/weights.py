"""Named weight transforms, Keras variable layout -> torch parameter layout.

Each transform is a small pure function; the weight manifest records which one ran.
"""

from __future__ import annotations

import numpy as np


def identity(w: np.ndarray) -> np.ndarray:
    return w


def dense_kernel(w: np.ndarray) -> np.ndarray:
    """Dense ``(in, out)`` -> Linear ``(out, in)``."""
    return w.T


def conv_kernel(w: np.ndarray) -> np.ndarray:
    """Conv ``(k..., in/groups, out)`` -> ``(out, in/groups, k...)``."""
    rank = w.ndim
    return w.transpose(rank - 1, rank - 2, *range(rank - 2))


def conv_transpose_kernel(w: np.ndarray) -> np.ndarray:
    """ConvTranspose ``(k..., out, in)`` -> ``(in, out, k...)``; Keras's kernel is not flipped."""
    rank = w.ndim
    return w.transpose(rank - 1, rank - 2, *range(rank - 2))


def depthwise_kernel(w: np.ndarray) -> np.ndarray:
    """Depthwise ``(k..., in, mult)`` -> ``(in*mult, 1, k...)``, output channel ``c*mult + m``."""
    *spatial, channels, mult = w.shape
    flat = w.reshape(*spatial, channels * mult)
    return np.moveaxis(flat, -1, 0)[:, None]


def dense_as_conv_kernel(w: np.ndarray, spatial_rank: int) -> np.ndarray:
    """Dense ``(in, out)`` acting on the channel axis -> 1x1 conv ``(out, in, 1...)``."""
    return w.T.reshape(w.shape[1], w.shape[0], *([1] * spatial_rank))


def reorder_rows(w: np.ndarray, order) -> np.ndarray:
    """Dense kernel rows follow the torch flatten order (C·H·W) instead of Keras's (H·W·C)."""
    return w[np.asarray(order)]

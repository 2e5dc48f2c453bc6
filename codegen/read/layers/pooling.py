"""Pooling layers: Max/Average pooling, their global and adaptive versions (1D/2D/3D)."""

from __future__ import annotations

from ..shapes import Site, rule
from ..stored_weights import no_variables
from ._shape_helpers import channels_last, conv_length, float_out, ints, out, spatial_axes

_POOLING = (
    "MaxPooling1D",
    "MaxPooling2D",
    "MaxPooling3D",
    "AveragePooling1D",
    "AveragePooling2D",
    "AveragePooling3D",
)
_GLOBAL_POOLING = (
    "GlobalMaxPooling1D",
    "GlobalMaxPooling2D",
    "GlobalMaxPooling3D",
    "GlobalAveragePooling1D",
    "GlobalAveragePooling2D",
    "GlobalAveragePooling3D",
)


@rule(*_POOLING)
def _pooling(site: Site):
    cfg = site.config
    x = site.x
    axes = spatial_axes(x, channels_last(cfg))
    n = len(axes)
    pool = ints(cfg.get("pool_size", 2), n)
    strides = cfg.get("strides")
    strides = pool if strides is None else ints(strides, n)
    padding = str(cfg.get("padding", "valid"))
    shape = list(x)
    for i, axis in enumerate(axes):
        shape[axis] = conv_length(x[axis], pool[i], padding, strides[i])
    return float_out(site, shape) if site.class_name.startswith("Max") else out(site, shape)


@rule(*_GLOBAL_POOLING)
def _global_pooling(site: Site):
    cfg = site.config
    x = site.x
    last = channels_last(cfg)
    axes = spatial_axes(x, last)
    if cfg.get("keepdims"):
        shape = [1 if i in axes else d for i, d in enumerate(x)]
    else:
        shape = [d for i, d in enumerate(x) if i not in axes]
    return float_out(site, shape) if "Max" in site.class_name else out(site, shape)


_ADAPTIVE_POOLING = (
    "AdaptiveMaxPooling1D",
    "AdaptiveMaxPooling2D",
    "AdaptiveMaxPooling3D",
    "AdaptiveAveragePooling1D",
    "AdaptiveAveragePooling2D",
    "AdaptiveAveragePooling3D",
)


@rule(*_ADAPTIVE_POOLING)
def _adaptive_pooling(site: Site):
    cfg = site.config
    x = site.x
    axes = spatial_axes(x, channels_last(cfg))
    size = ints(cfg.get("output_size"), len(axes))
    shape = list(x)
    for axis, n in zip(axes, size):
        shape[axis] = n
    return float_out(site, shape) if "Max" in site.class_name else out(site, shape)


no_variables(*_POOLING, *_GLOBAL_POOLING, *_ADAPTIVE_POOLING)

MASK_ARGUMENT = frozenset({"GlobalAveragePooling1D"})

"""Spatial layers: ZeroPadding, Cropping, UpSampling (1D/2D/3D), Resizing, CenterCrop (and
RandomCrop's shape: the size it crops to)."""

from __future__ import annotations

import re

from ..shapes import Site, rule
from ..stored_weights import no_variables
from ._shape_helpers import channels_last, float_out, ints, out, spatial_axes

_ZERO_PADDING = ("ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D")
_CROPPING = ("Cropping1D", "Cropping2D", "Cropping3D")
_UP_SAMPLING = ("UpSampling1D", "UpSampling2D", "UpSampling3D")


def _pairs(value, n: int) -> list[tuple[int, int]]:
    if isinstance(value, int):
        return [(value, value)] * n
    value = list(value)
    if n == 1 and len(value) == 2 and all(isinstance(v, int) for v in value):
        return [(value[0], value[1])]
    out = []
    for v in value:
        out.append((v, v) if isinstance(v, int) else (v[0], v[1]))
    return out


def _resize_axes(site: Site, change):
    cfg = site.config
    x = site.x
    n = int(re.search(r"(\d)D$", site.class_name).group(1))
    last = channels_last(cfg) if n > 1 else True
    axes = spatial_axes(x, last) if n > 1 else [1]
    shape = list(x)
    for i, axis in enumerate(axes):
        shape[axis] = None if x[axis] is None else change(i, x[axis], n)
    return float_out(site, shape)


@rule(*_ZERO_PADDING)
def _zero_padding(site: Site):
    pads = _pairs(site.config.get("padding", 1), int(site.class_name[-2]))
    return _resize_axes(site, lambda i, d, n: d + pads[i][0] + pads[i][1])


@rule(*_CROPPING)
def _cropping(site: Site):
    crops = _pairs(site.config.get("cropping", 1), int(site.class_name[-2]))
    return _resize_axes(site, lambda i, d, n: d - crops[i][0] - crops[i][1])


@rule(*_UP_SAMPLING)
def _up_sampling(site: Site):
    n = int(site.class_name[-2])
    size = ints(site.config.get("size", 2), n)
    return _resize_axes(site, lambda i, d, n: d * size[i])


@rule("Resizing", "CenterCrop", "RandomCrop")
def _resizing(site: Site):
    cfg = site.config
    x = site.x
    shape = list(x)
    if len(x) == 4:
        h, w = (1, 2) if channels_last(cfg) else (2, 3)
    else:
        h, w = (0, 1) if channels_last(cfg) else (1, 2)
    shape[h], shape[w] = int(cfg["height"]), int(cfg["width"])
    return out(site, shape)


no_variables(*_ZERO_PADDING, *_CROPPING, *_UP_SAMPLING, "Resizing", "CenterCrop")

# Keras 3 records ``training=True`` in each call of these.
TRAINING_DEFAULTS = {"CenterCrop": True, "Resizing": True}

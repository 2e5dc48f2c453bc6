"""Zero padding, cropping, up-sampling, Resizing and CenterCrop.

Padding, cropping and nearest up-sampling act on named axes and run in whatever layout
their input has. Interpolating resizes follow ``tf.image.resize`` (half-pixel centers):
``F.interpolate`` where it computes the same thing (nearest -> ``"nearest-exact"``,
bilinear with or without antialias, bicubic with antialias, area for whole-number
ratios), the ``tf_resize`` helper (TensorFlow's own sampling weights) otherwise.
"""

from __future__ import annotations

import numpy as np

from codegen.ir.layout import Layout, native_layout

from ..context import CallContext, Unsupported
from ..registry import AGNOSTIC, SPATIAL, register
from ._padding import compact

INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "area", "lanczos3", "lanczos5")


def _spatial_rank(class_name: str) -> int:
    return int(next(ch for ch in class_name if ch.isdigit()))


def _spatial_axes(n: int, data_format: str | None) -> list[int]:
    """Keras axes of the spatial dimensions."""
    return list(range(2, n + 2)) if data_format == "channels_first" else list(range(1, n + 1))


def _pairs(value, n: int, what: str) -> list[tuple[int, int]]:
    """Keras padding/cropping spec -> one (before, after) pair per spatial dimension."""
    if isinstance(value, (int, np.integer)):
        return [(int(value), int(value))] * n
    value = list(value)
    if n == 1 and len(value) == 2 and all(isinstance(v, (int, np.integer)) for v in value):
        return [(int(value[0]), int(value[1]))]
    if len(value) != n:
        raise Unsupported(f"{what}={value!r}")
    pairs = []
    for v in value:
        if isinstance(v, (int, np.integer)):
            pairs.append((int(v), int(v)))
        elif len(v) == 2:
            pairs.append((int(v[0]), int(v[1])))
        else:
            raise Unsupported(f"{what}={value!r}")
    return pairs


def _is_native(layout: Layout, axes: list[int]) -> bool:
    """Whether these Keras axes are the trailing torch axes, in order (as torch layers want)."""
    rank = layout.rank
    return [layout.torch_axis(a) for a in axes] == list(range(rank - len(axes), rank))


# -- ZeroPadding ---------------------------------------------------------------------------


@register("ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D", layout=AGNOSTIC)
def zero_padding(call, ctx: CallContext) -> None:
    n = _spatial_rank(call.layer.class_name)
    pairs = _pairs(ctx.config["padding"], n, "padding")
    axes = _spatial_axes(n, ctx.config.get("data_format"))
    layout = ctx.input_layout()
    if layout.feature_order is not None:
        raise Unsupported("padding a flattened tensor")
    x = ctx.input(0)
    if _is_native(layout, axes):
        pad = tuple(v for pair in reversed(pairs) for v in pair)
        attr = ctx.module(f"nn.ZeroPad{n}d({compact(pad)!r})")
        ctx.output(f"{attr}({x})", layout)
        return
    # F.pad lists (before, after) from the last torch axis backwards.
    by_torch_axis = {layout.torch_axis(a): pair for a, pair in zip(axes, pairs)}
    pad: list[int] = []
    for t in range(layout.rank - 1, min(by_torch_axis) - 1, -1):
        pad += by_torch_axis.get(t, (0, 0))
    ctx.output(f"F.pad({x}, {tuple(pad)!r})", layout)


# -- Cropping ------------------------------------------------------------------------------


def _slice_expr(x: str, layout: Layout, ranges: dict[int, str]) -> str:
    """``x[:, ..., a:b]`` with ``ranges`` keyed by Keras axis; trailing ``:`` left out."""
    parts = [":"] * layout.rank
    for axis, text in ranges.items():
        parts[layout.torch_axis(axis)] = text
    while parts and parts[-1] == ":":
        parts.pop()
    return f"{x}[{', '.join(parts)}]" if parts else x


def _crop_text(before: int, after: int) -> str:
    start = str(before) if before else ""
    return f"{start}:{-after}" if after else f"{start}:"


@register("Cropping1D", "Cropping2D", "Cropping3D", layout=AGNOSTIC)
def cropping(call, ctx: CallContext) -> None:
    n = _spatial_rank(call.layer.class_name)
    pairs = _pairs(ctx.config["cropping"], n, "cropping")
    axes = _spatial_axes(n, ctx.config.get("data_format"))
    layout = ctx.input_layout()
    if layout.feature_order is not None:
        raise Unsupported("cropping a flattened tensor")
    x = ctx.input(0)
    ranges = {a: _crop_text(*pair) for a, pair in zip(axes, pairs)}
    ctx.output(_slice_expr(x, layout, ranges), layout)


# -- Resizing (shared by UpSampling2D, Resizing, CenterCrop) ---------------------------------


def resize_expr(
    ctx: CallContext,
    x: str,
    method: str,
    antialias: bool,
    in_size: tuple,
    size: tuple | None = None,
    scale: tuple | None = None,
) -> str:
    """``tf.image.resize(x, size, method, antialias)`` of a channels-first (N, C, H, W) tensor.

    ``in_size`` is the input's (H, W) (``None`` where unknown); give either ``size`` or an
    integer ``scale`` (output = input * scale, as UpSampling2D).
    """
    if method not in INTERPOLATIONS:
        raise Unsupported(f"interpolation={method!r}")
    if size is None and all(d is not None for d in in_size):
        size = tuple(d * s for d, s in zip(in_size, scale))
    target = f"size={size!r}" if size is not None else f"scale_factor={compact(scale)!r}"
    if scale is not None and method in ("nearest", "area"):
        # Whole-number up-sampling: every output pixel copies one input pixel.
        method = "nearest"
    if method == "nearest":
        # TF: floor((i + 0.5) * in / out), torch's "nearest-exact"; antialias does not apply.
        return f'F.interpolate({x}, {target}, mode="nearest-exact")'
    if method == "bilinear" or (method == "bicubic" and antialias):
        aa = ", antialias=True" if antialias else ""
        return f'F.interpolate({x}, {target}, mode="{method}", align_corners=False{aa})'
    if (
        method == "area"
        and size is not None
        and all(d is not None and (d % o == 0 or o % d == 0) for d, o in zip(in_size, size))
    ):
        # Whole-number ratios: TF's area weights are plain box averages (or copies).
        return f'F.interpolate({x}, {target}, mode="area")'
    aa = ", antialias=True" if antialias and method.startswith("lanczos") else ""
    ctx.helper(
        "tf_resize",
        size=size is not None,
        scale_factor=size is None,
        **{"lanczos" if method.startswith("lanczos") else method: True},
        antialias=bool(aa),
    )
    return f"tf_resize({x}, {target}, method={method!r}{aa})"


@register("UpSampling1D", layout=AGNOSTIC)
def up_sampling1d(call, ctx: CallContext) -> None:
    size = int(ctx.config["size"])
    _repeat(ctx, [1], (size,))


@register("UpSampling3D", layout=SPATIAL)
def up_sampling3d(call, ctx: CallContext) -> None:
    size = _ints(ctx.config["size"], 3)
    _repeat(ctx, _spatial_axes(3, ctx.config.get("data_format")), size)


@register("UpSampling2D", layout=SPATIAL)
def up_sampling2d(call, ctx: CallContext) -> None:
    cfg = ctx.config
    size = _ints(cfg["size"], 2)
    interpolation = str(cfg.get("interpolation") or "nearest").lower()
    data_format = cfg.get("data_format")
    if interpolation == "nearest":
        _repeat(ctx, _spatial_axes(2, data_format), size)
        return
    layout = native_layout(4, data_format)
    x = ctx.input(0, layout)
    in_size = tuple(ctx.input_shape()[a] for a in _spatial_axes(2, data_format))
    ctx.output(resize_expr(ctx, x, interpolation, False, in_size, scale=size), layout)


def _ints(value, n: int) -> tuple[int, ...]:
    if isinstance(value, (int, np.integer)):
        return (int(value),) * n
    value = tuple(int(v) for v in value)
    return value * n if len(value) == 1 else value


def _repeat(ctx: CallContext, axes: list[int], size: tuple[int, ...]) -> None:
    """Repeat every element ``size[i]`` times along Keras axis ``axes[i]`` (ops.repeat)."""
    layout = ctx.input_layout()
    if layout.feature_order is not None:
        raise Unsupported("up-sampling a flattened tensor")
    x = ctx.input(0)
    if all(s == 1 for s in size):
        ctx.output(x, layout)
    elif _is_native(layout, axes):
        ctx.output(
            f'F.interpolate({x}, scale_factor={compact(size)!r}, mode="nearest-exact")', layout
        )
    else:
        for axis, s in zip(axes, size):
            if s != 1:
                x = f"{x}.repeat_interleave({s}, dim={layout.torch_axis(axis)})"
        ctx.output(x, layout)


# -- Resizing ------------------------------------------------------------------------------


def _f32_trunc_div(a: int, b: int) -> int:
    """int32(float32(a) / float32(b)), as Keras's Resizing computes aspect-ratio boxes."""
    return int(np.float32(a) / np.float32(b))


def _image_input(ctx: CallContext, data_format) -> tuple[str, Layout, tuple, list[int]]:
    shape = ctx.input_shape()
    if len(shape) != 4:
        raise Unsupported(f"a rank-{len(shape)} input (only batches of images)")
    dtype = str(ctx.call.inputs[0].dtype)
    if "float" not in dtype:
        raise Unsupported(f"a {dtype} input (Keras rounds and casts the result back)")
    layout = native_layout(4, data_format)
    axes = _spatial_axes(2, data_format)
    return ctx.input(0, layout), layout, tuple(shape[a] for a in axes), axes


@register("Resizing", layout=SPATIAL)
def resizing(call, ctx: CallContext) -> None:
    cfg = ctx.config
    height, width = int(cfg["height"]), int(cfg["width"])
    interpolation = str(cfg.get("interpolation", "bilinear")).lower()
    crop = bool(cfg.get("crop_to_aspect_ratio", False))
    pad = bool(cfg.get("pad_to_aspect_ratio", False))
    fill_mode = cfg.get("fill_mode", "constant")
    fill_value = float(cfg.get("fill_value", 0.0) or 0.0)
    antialias = bool(cfg.get("antialias", False))
    if fill_mode != "constant":
        raise Unsupported(f"fill_mode={fill_mode!r}")
    if crop and pad:
        raise Unsupported("both crop_to_aspect_ratio and pad_to_aspect_ratio")
    x, layout, (h, w), axes = _image_input(ctx, cfg.get("data_format"))
    static = h is not None and w is not None
    if crop and static:
        crop_h = max(min(h, _f32_trunc_div(w * height, width)), 1)
        crop_w = max(min(w, _f32_trunc_div(h * width, height)), 1)
        top, left = (h - crop_h) // 2, (w - crop_w) // 2
        x = _slice_expr(x, layout, _box(axes, top, left, crop_h, crop_w, h, w))
        h, w = crop_h, crop_w
    elif crop:
        x = f"{ctx.helper('crop_to_aspect_ratio')}({x}, {height}, {width})"
        h = w = None
    elif pad and static:
        pad_h = max(h, _f32_trunc_div(w * height, width))
        pad_w = max(w, _f32_trunc_div(h * width, height))
        top, left = (pad_h - h) // 2, (pad_w - w) // 2
        if top or left:
            value = f", value={fill_value!r}" if fill_value else ""
            x = f"F.pad({x}, {(left, left, top, top)!r}{value})"
        h, w = h + 2 * top, w + 2 * left
    elif pad:
        value = f", value={fill_value!r}" if fill_value else ""
        x = f"{ctx.helper('pad_to_aspect_ratio')}({x}, {height}, {width}{value})"
        h = w = None
    ctx.output(resize_expr(ctx, x, interpolation, antialias, (h, w), size=(height, width)), layout)


def _box(axes, top: int, left: int, height: int, width: int, h: int, w: int) -> dict:
    """Slice texts for a crop box, keyed by the Keras (height, width) axes; full ranges stay ``:``."""

    def text(start, size, full):
        return ":" if (start, size) == (0, full) else f"{start}:{start + size}"

    return {axes[0]: text(top, height, h), axes[1]: text(left, width, w)}


_TORCH_FLOATS = {
    "float16": "torch.float16",
    "bfloat16": "torch.bfloat16",
    "float32": "torch.float32",
    "float64": "torch.float64",
}


@register("CenterCrop", layout=AGNOSTIC)
def center_crop(call, ctx: CallContext) -> None:
    """Keras's CenterCrop: a middle crop, or (image smaller than the target) smart_resize."""
    cfg = ctx.config
    height, width = int(cfg["height"]), int(cfg["width"])
    data_format = cfg.get("data_format")
    axes = _spatial_axes(2, data_format)
    shape = ctx.input_shape()
    if len(shape) != 4:
        raise Unsupported(f"a rank-{len(shape)} input (only batches of images)")
    # Keras casts the images to the layer's float dtype first.
    src, dst = str(ctx.call.inputs[0].dtype), str(ctx.call.outputs[0].dtype)
    if src != dst and dst not in _TORCH_FLOATS:
        raise Unsupported(f"a {src} input cast to {dst}")
    cast = f".to({_TORCH_FLOATS[dst]})" if src != dst else ""
    h, w = shape[axes[0]], shape[axes[1]]
    if h is not None and w is not None and h >= height and w >= width:
        layout = ctx.input_layout()  # a crop works in any layout
        if layout.feature_order is not None:
            raise Unsupported("cropping a flattened tensor")
        top, left = (h - height) // 2, (w - width) // 2
        box = _box(axes, top, left, height, width, h, w)
        ctx.output(_slice_expr(ctx.input(0) + cast, layout, box), layout)
        return
    layout = native_layout(4, data_format)
    x = ctx.input(0, layout) + cast
    if h is None or w is None:
        ctx.output(f"{ctx.helper('center_crop')}({x}, {height}, {width})", layout)
        return
    # Smaller than the target: Keras's smart_resize crops to the aspect ratio (in float64
    # here) and resizes bilinearly.
    crop_h = max(min(h, int(float(w * height) / width)), 1)
    crop_w = max(min(w, int(float(h * width) / height)), 1)
    top, left = (h - crop_h) // 2, (w - crop_w) // 2
    x = _slice_expr(x, layout, _box(axes, top, left, crop_h, crop_w, h, w))
    ctx.output(
        resize_expr(ctx, x, "bilinear", False, (crop_h, crop_w), size=(height, width)), layout
    )

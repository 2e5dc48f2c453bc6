"""Preprocessing layers a trained model carries: Rescaling, Normalization and the random
augmentation layers (the identity at inference, as in Keras). CenterCrop and Resizing live in
``spatial.py``."""

from __future__ import annotations

import numpy as np

from codegen.ir.layout import Layout
from codegen.ir.naming import comment_text
from codegen.read.layers.preprocessing import AUGMENTATION_LAYERS

from ..context import CallContext, Unsupported
from ..dtypes import TORCH_DTYPES
from ..registry import AGNOSTIC, register
from .normalization import _note, keras_epsilon

# Constants from a layer's configuration are written into the source (as numbers); beyond
# this many values the source would be unreadable.
MAX_INLINE_VALUES = 4096


def _cast(ctx: CallContext, x: str) -> str:
    """Keras preprocessing layers compute in their float dtype: cast other inputs the same way."""
    src, dst = ctx.call.inputs[0].dtype, ctx.call.outputs[0].dtype
    if src != dst and dst in TORCH_DTYPES:
        return f"{x}.to({TORCH_DTYPES[dst]})"
    return x


def _not_bare(ctx: CallContext, expr: str) -> str:
    """An expression that is just the input would read ``x = x``: use nn.Identity then."""
    if expr == ctx.last_expr:
        return f"{ctx.module('nn.Identity()')}({expr})"
    return expr


def _constant(value, what: str) -> np.ndarray:
    """A number, a (nested) list or a serialized numpy array/tensor from a config, as float64."""
    if isinstance(value, dict) and value.get("class_name") in ("__numpy__", "__tensor__"):
        value = (value.get("config") or {}).get("value")
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise Unsupported(f"{what}={value!r}") from None
    if array.dtype == object or array.size > MAX_INLINE_VALUES:
        raise Unsupported(f"{what} with {array.size} values")
    return array


def _keras_data_format() -> str:
    """The global image data format, which Keras's Rescaling reads at call time."""
    from codegen.read.keras_import import keras_setting

    return keras_setting("image_data_format", "channels_last")


def _to_torch(array: np.ndarray, keras_shape: tuple[int, ...], layout: Layout) -> np.ndarray:
    """A constant broadcast against a Keras tensor (``keras_shape``, rank of the tensor) ->
    the same constant broadcast against the torch tensor."""
    return array.reshape(keras_shape).transpose(layout.perm)


def _numbers(array: np.ndarray) -> tuple:
    return tuple(float(v) for v in array.reshape(-1))


# -- Rescaling ---------------------------------------------------------------------------------
@register("Rescaling", layout=AGNOSTIC)
def rescaling(call, ctx: CallContext) -> None:
    layout = ctx.input_layout()
    rank = layout.rank
    scale = _constant(ctx.config.get("scale", 1.0), "scale")
    offset = _constant(ctx.config.get("offset", 0.0), "offset")
    x = _cast(ctx, ctx.input(0))
    # Keras reshapes a non-scalar scale (not the offset) to (C, 1, 1) when the global image
    # data format is channels_first.
    if scale.ndim > 0 and _keras_data_format() == "channels_first":
        scale = scale.reshape(scale.shape + (1,) * max(0, 3 - scale.ndim))
    if scale.ndim > rank or offset.ndim > rank:
        raise Unsupported(f"scale/offset of rank > {rank}")
    if scale.size == 1 and offset.size == 1:
        s, o = float(scale.reshape(())), float(offset.reshape(()))
        expr = x if s == 1.0 else f"{x} * {s!r}"
        if o != 0.0:
            expr = f"{expr} + {o!r}"
        ctx.output(_not_bare(ctx, expr), layout)
        return
    shape = np.broadcast_shapes(
        (1,) * rank,
        (1,) * (rank - scale.ndim) + scale.shape,
        (1,) * (rank - offset.ndim) + offset.shape,
    )

    def full(a: np.ndarray) -> np.ndarray:
        keras = np.broadcast_to(a.reshape((1,) * (rank - a.ndim) + a.shape), shape)
        return keras.transpose(layout.perm)

    s, o = full(scale), full(offset)
    ctx.helper("Rescale")
    attr = ctx.module(
        f"Rescale(scale={_numbers(s)!r}, offset={_numbers(o)!r}, shape={tuple(int(d) for d in s.shape)!r})"
    )
    ctx.output(f"{attr}({x})", layout)


# -- Normalization -----------------------------------------------------------------------------
@register("Normalization", layout=AGNOSTIC)
def normalization(call, ctx: CallContext) -> None:
    cfg = ctx.config
    layout = ctx.input_layout()
    rank = layout.rank
    axis = cfg.get("axis", (-1,))
    axis = () if axis is None else (axis,) if isinstance(axis, int) else tuple(axis)
    keep = sorted(int(a) % rank for a in axis)
    if 0 in keep:
        raise Unsupported(f"axis={axis!r} keeps the batch axis")
    invert = bool(cfg.get("invert", False))
    keras_shape = ctx.input_shape()
    broadcast = tuple(keras_shape[d] if d in keep else 1 for d in range(rank))
    eps = keras_epsilon()
    eps_arg = "" if eps == 1e-7 else f", eps={eps!r}"
    invert_arg = ", invert=True" if invert else ""
    x = _cast(ctx, ctx.input(0))
    given_mean, given_variance = cfg.get("mean"), cfg.get("variance")
    ctx.helper(
        "Normalize",
        adapted=given_mean is None,
        given=given_mean is not None,
        invert=invert,
        eps=eps != 1e-7,
    )
    stale = getattr(ctx.layer, "stale_statistics", None)
    if stale and ctx.first_call:
        ctx.note(
            f"{comment_text(repr(ctx.layer.name))}: Keras computes with the {' and '.join(stale)} it snapshotted "
            "when it was built, adapted or loaded, not with the values its variables were "
            "assigned since; the port uses what Keras computes."
        )
    if given_mean is None:  # adapted: the statistics are Keras variables
        mean = ctx.keras_weight("mean").reshape(broadcast).transpose(layout.perm)
        variance = ctx.keras_weight("variance").reshape(broadcast).transpose(layout.perm)
        attr = ctx.module(f"Normalize({tuple(mean.shape)!r}{invert_arg}{eps_arg})")
        ctx.weight("mean", mean, "mean", "reshape to broadcast, to torch axis order")
        ctx.weight("variance", variance, "variance", "reshape to broadcast, to torch axis order")
        ctx.weight("count", np.asarray(ctx.keras_weight("count")), "count")
    else:  # given to the constructor: constants of the configuration
        mean = _constant(given_mean, "mean")
        variance = _constant(given_variance, "variance")
        if mean.shape != variance.shape or mean.ndim > len(keep):
            raise Unsupported(f"mean of shape {mean.shape} with variance of shape {variance.shape}")
        expanded = [1] * rank
        for i in range(1, mean.ndim + 1):  # trailing dims of mean -> the last kept axes
            expanded[keep[-i]] = mean.shape[-i]
        m = _to_torch(mean, tuple(expanded), layout)
        v = _to_torch(variance, tuple(expanded), layout)
        attr = ctx.module(
            f"Normalize({tuple(int(d) for d in m.shape)!r}, mean={_numbers(m)!r}, "
            f"variance={_numbers(v)!r}{invert_arg}{eps_arg})"
        )
    ctx.output(f"{attr}({x})", layout)


# -- random augmentation -------------------------------------------------------------------------

_AUGMENTATION_NOTE = (
    "Keras random augmentation layers only act in training: they are nn.Identity here.\n"
    "    Augment in the data pipeline instead (e.g. torchvision.transforms.v2)."
)


@register(*AUGMENTATION_LAYERS, layout=AGNOSTIC, elementwise=True)
def augmentation(call, ctx: CallContext) -> None:
    # Every option (factors, fill modes, value ranges, seeds ...) shapes the training-time
    # augmentation only; at inference the layer returns its input.
    for key in list(ctx.config):
        ctx.config.get(key)
    if ctx.n_inputs != 1:
        raise Unsupported("augmentation of several inputs (images with labels or boxes)")
    attr = ctx.module("nn.Identity()")
    _note(ctx, _AUGMENTATION_NOTE)
    ctx.output(f"{attr}({_cast(ctx, ctx.input(0))})")

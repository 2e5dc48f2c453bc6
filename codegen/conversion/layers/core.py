"""Dense, Identity and the regularization layers (dropout, noise).

The regularization layers are the identity at inference, as in Keras; their training
behaviour is written with ``self.training`` so that ``model.train()`` switches it on.
"""

from __future__ import annotations

import math

from codegen.ir.layout import Layout, keras_order

from .. import weights as W
from ..context import CallContext, Unsupported, activity_penalty_module
from ..registry import AGNOSTIC, register
from ._lora import lora_merged
from .activations import with_activation


@register("Dense", layout=AGNOSTIC)
def dense(call, ctx: CallContext) -> None:
    cfg = ctx.config
    units = int(cfg["units"])
    use_bias = bool(cfg.get("use_bias", True))
    quantized = cfg.get("quantization_config") or any("scale" in k for k in ctx.layer.weights)
    if quantized or ctx.keras_weight("kernel").dtype.kind != "f":
        raise Unsupported("quantized Dense layers")
    kernel, merged = lora_merged(ctx)
    layout = ctx.input_layout()
    rank = layout.rank
    channel_axis = layout.torch_axis(-1)
    bias_kw = "" if use_bias else ", bias=False"
    in_features = kernel.shape[0]
    if channel_axis == 1 and rank >= 3 and layout.feature_order is None and rank <= 5:
        # Dense on the channel axis of a channels-first tensor is a 1x1 convolution.
        spatial = rank - 2
        x = ctx.input(0)
        attr = ctx.module(f"nn.Conv{spatial}d({in_features}, {units}, kernel_size=1{bias_kw})")
        transform = f"{merged}dense_as_conv_kernel"
        ctx.weight("weight", W.dense_as_conv_kernel(kernel, spatial), "kernel", transform)
        expr, out_layout = f"{attr}({x})", layout
    else:
        attr = ctx.module(f"nn.Linear({in_features}, {units}{bias_kw})")
        x = ctx.input(0)
        if layout.feature_order is not None:
            kernel = W.reorder_rows(kernel, layout.feature_order)
            transform = f"{merged}reorder_rows(C·H·W ← H·W·C) + dense_kernel"
            ctx.weight("weight", W.dense_kernel(kernel), "kernel", transform)
            expr, out_layout = f"{attr}({x})", keras_order(2)
        else:
            ctx.weight("weight", W.dense_kernel(kernel), "kernel", f"{merged}dense_kernel")
            expr, out_layout = _on_last_axis(attr, x, layout, channel_axis)
    if use_bias:
        ctx.weight("bias", ctx.keras_weight("bias"), "bias")
    ctx.output(with_activation(ctx, expr, out_layout), out_layout)


def _on_last_axis(attr: str, x: str, layout: Layout, channel_axis: int) -> tuple[str, Layout]:
    """A Linear acting on torch dim ``channel_axis`` (the last Keras axis)."""
    rank = layout.rank
    if channel_axis == rank - 1:
        return f"{attr}({x})", layout
    return f"{attr}({x}.movedim({channel_axis}, -1)).movedim(-1, {channel_axis})", layout


@register("Identity", elementwise=True)
def identity(call, ctx: CallContext) -> None:
    attr = ctx.module("nn.Identity()")
    ctx.output(f"{attr}({ctx.input(0)})")


@register("ActivityRegularization", elementwise=True)
def activity_regularization(call, ctx: CallContext) -> None:
    # The identity in forward; in training Keras adds the L1L2 penalty of its output to the
    # losses (regularization_loss() reads it from the module).
    option = {"class_name": "L1L2", "config": {"l1": ctx.config.get("l1", 0.0)}}
    option["config"]["l2"] = ctx.config.get("l2", 0.0)
    attr = ctx.module(activity_penalty_module(option))
    ctx.helper("ActivityPenalty")
    ctx.output(f"{attr}({ctx.input(0)})")


def _rate(ctx: CallContext) -> float:
    rate = float(ctx.config["rate"])
    if not 0.0 <= rate <= 1.0:
        raise Unsupported(f"rate={rate!r}")
    return rate


def _shared_axes(ctx: CallContext, noise_shape) -> list[int]:
    """Keras axes along which a ``noise_shape`` shares one mask value (the axes set to 1)."""
    rank = len(ctx.input_shape())
    if len(noise_shape) != rank:
        raise Unsupported(f"noise_shape={tuple(noise_shape)!r} for a rank-{rank} input")
    shape = ctx.input_shape()
    return [i for i, d in enumerate(noise_shape) if d == 1 and shape[i] != 1]


def _mask_index(layout: Layout, keras_axes: list[int]) -> str:
    torch_axes = {layout.torch_axis(a) for a in keras_axes}
    return ", ".join(":1" if i in torch_axes else ":" for i in range(layout.rank))


@register("Dropout", elementwise=True)
def dropout(call, ctx: CallContext) -> None:
    rate = _rate(ctx)
    noise_shape = ctx.config.get("noise_shape")
    x = ctx.input(0)
    shared = _shared_axes(ctx, noise_shape) if noise_shape is not None else []
    if not shared:
        attr = ctx.module(f"nn.Dropout({rate!r})")
        ctx.output(f"{attr}({x})")
        return
    # On a flattened channels-first tensor (reordered features) the masks are as random.
    layout = ctx.input_layout()
    rank = layout.rank
    channel_dropout = {layout.torch_axis(a) for a in shared} == set(range(2, rank))
    if channel_dropout and rank in (3, 4, 5):
        # One mask value per (sample, dim 1): exactly nn.Dropout1d/2d/3d.
        attr = ctx.module(f"nn.Dropout{rank - 2}d({rate!r})")
        ctx.output(f"{attr}({x})")
        return
    _shared_mask_dropout(ctx, x, rate, shared)


def _shared_mask_dropout(ctx: CallContext, x: str, rate: float, keras_axes: list[int]) -> None:
    """Dropout with one mask value shared along ``keras_axes`` (scaled by 1/(1-rate), as Keras)."""
    index = _mask_index(ctx.input_layout(), keras_axes)
    ctx.output(f"{x} * F.dropout(torch.ones_like({x}[{index}]), {rate!r}, self.training)")


@register("SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", elementwise=True)
def spatial_dropout(call, ctx: CallContext) -> None:
    rate = _rate(ctx)
    layout = ctx.input_layout()
    rank = layout.rank
    data_format = ctx.config.get("data_format") or "channels_last"
    channel = 1 if data_format == "channels_first" else rank - 1
    spatial = [a for a in range(1, rank) if a != channel]
    x = ctx.input(0)
    if layout.torch_axis(channel) == 1 and rank in (3, 4, 5):
        attr = ctx.module(f"nn.Dropout{rank - 2}d({rate!r})")
        ctx.output(f"{attr}({x})")
        return
    _shared_mask_dropout(ctx, x, rate, spatial)


@register("GaussianNoise", elementwise=True)
def gaussian_noise(call, ctx: CallContext) -> None:
    stddev = float(ctx.config["stddev"])
    x = ctx.input(0)
    if stddev == 0:
        ctx.output(f"{ctx.module('nn.Identity()')}({x})")
        return
    ctx.output(f"({x} + torch.randn_like({x}) * {stddev!r}) if self.training else {x}")


@register("GaussianDropout", elementwise=True)
def gaussian_dropout(call, ctx: CallContext) -> None:
    rate = _rate(ctx)
    x = ctx.input(0)
    if rate == 0:
        ctx.output(f"{ctx.module('nn.Identity()')}({x})")
        return
    if rate == 1:
        raise Unsupported("rate=1.0 (Keras divides by zero)")
    stddev = math.sqrt(rate / (1.0 - rate))
    ctx.output(f"({x} * (1.0 + torch.randn_like({x}) * {stddev!r})) if self.training else {x}")


@register("AlphaDropout", elementwise=True)
def alpha_dropout(call, ctx: CallContext) -> None:
    rate = _rate(ctx)
    noise_shape = ctx.config.get("noise_shape")
    x = ctx.input(0)
    shared = _shared_axes(ctx, noise_shape) if noise_shape is not None else []
    if not shared:
        attr = ctx.module(f"nn.AlphaDropout({rate!r})")
        ctx.output(f"{attr}({x})")
        return
    layout = ctx.input_layout()
    dims = tuple(sorted(layout.torch_axis(a) for a in shared))
    ctx.helper("alpha_dropout")
    ctx.output(f"alpha_dropout({x}, {rate!r}, {dims!r}, self.training)")


@register("InputLayer")
def input_layer(call, ctx: CallContext) -> None:
    # Model inputs are bound (and permuted to channels-first) by the class builder itself.
    raise AssertionError("InputLayer is handled by the class builder")

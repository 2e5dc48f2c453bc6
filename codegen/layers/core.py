"""Dense, Identity and the regularization layers (dropout, noise)."""

from __future__ import annotations

import numpy as np

from .. import weights as W
from ..convert import CallContext, Unsupported
from ..layout import keras_order
from ..registry import AGNOSTIC, register
from .activations import with_activation


def _lora_merged_kernel(ctx: CallContext) -> np.ndarray:
    """Keras LoRA keeps ``kernel + a @ b * alpha / rank`` as the effective kernel."""
    kernel = ctx.keras_weight("kernel")
    rank = ctx.config.get("lora_rank")
    alpha = ctx.config.get("lora_alpha")
    if rank:
        a, b = ctx.keras_weight("lora_kernel_a"), ctx.keras_weight("lora_kernel_b")
        kernel = kernel + (a @ b) * ((alpha or rank) / rank)
    return kernel


@register("Dense", layout=AGNOSTIC)
def dense(call, ctx: CallContext) -> None:
    cfg = ctx.config
    units = int(cfg["units"])
    use_bias = bool(cfg.get("use_bias", True))
    if cfg.get("quantization_config"):
        raise Unsupported("quantized Dense layers")
    kernel = _lora_merged_kernel(ctx)
    layout = ctx.input_layout()
    rank = layout.rank
    channel_axis = layout.torch_axis(-1)
    bias_kw = "" if use_bias else ", bias=False"
    if channel_axis == 1 and rank >= 3 and layout.feature_order is None and rank <= 5:
        # Dense on the channel axis of a channels-first tensor is a 1x1 convolution.
        spatial = rank - 2
        x = ctx.input(0)
        attr = ctx.module(f"nn.Conv{spatial}d({kernel.shape[0]}, {units}, kernel_size=1{bias_kw})")
        ctx.weight("weight", W.dense_as_conv_kernel(kernel, spatial), "kernel", "dense_as_conv_kernel")
        out_layout = layout
    else:
        if channel_axis != rank - 1:
            layout = keras_order(rank)
        x = ctx.input(0, layout if layout.feature_order is None else None)
        attr = ctx.module(f"nn.Linear({kernel.shape[0]}, {units}{bias_kw})")
        if layout.feature_order is not None:
            kernel = W.reorder_rows(kernel, layout.feature_order)
            ctx.weight("weight", W.dense_kernel(kernel), "kernel", "reorder_rows(C·H·W ← H·W·C) + dense_kernel")
        else:
            ctx.weight("weight", W.dense_kernel(kernel), "kernel", "dense_kernel")
        out_layout = type(layout)(layout.perm)
    if use_bias:
        ctx.weight("bias", ctx.keras_weight("bias"), "bias")
    ctx.output(with_activation(ctx, f"{attr}({x})", out_layout), out_layout)


@register("Identity", elementwise=True)
def identity(call, ctx: CallContext) -> None:
    attr = ctx.module("nn.Identity()")
    ctx.output(f"{attr}({ctx.input(0)})")


@register("ActivityRegularization", elementwise=True)
def activity_regularization(call, ctx: CallContext) -> None:
    # Only adds a loss term during training in Keras; the forward pass is the identity.
    ctx.config.get("l1"), ctx.config.get("l2")
    attr = ctx.module("nn.Identity()")
    ctx.output(f"{attr}({ctx.input(0)})")


@register("Dropout", elementwise=True)
def dropout(call, ctx: CallContext) -> None:
    rate = float(ctx.config["rate"])
    noise_shape = ctx.config.get("noise_shape")
    x = ctx.input(0)
    if noise_shape is None:
        attr = ctx.module(f"nn.Dropout({rate!r})")
        ctx.output(f"{attr}({x})")
        return
    # A shared mask over the axes where noise_shape is 1 (None means "as the input").
    layout = ctx.input_layout()
    if layout.feature_order is not None:
        raise Unsupported("Dropout noise_shape on a flattened channels-first tensor")
    _spatial_mask(ctx, x, rate, [i for i, d in enumerate(noise_shape) if d == 1])


def _spatial_mask(ctx: CallContext, x: str, rate: float, keras_axes: list[int]) -> None:
    """Dropout with one mask value shared along ``keras_axes`` (scaled like Keras)."""
    layout = ctx.input_layout()
    torch_axes = {layout.torch_axis(a) for a in keras_axes}
    index = ", ".join(":1" if i in torch_axes else ":" for i in range(layout.rank))
    ctx.output(f"{x} * F.dropout(torch.ones_like({x}[{index}]), {rate!r}, self.training)")


@register("SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", elementwise=True)
def spatial_dropout(call, ctx: CallContext) -> None:
    rate = float(ctx.config["rate"])
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
    _spatial_mask(ctx, x, rate, spatial)


@register("GaussianNoise", elementwise=True)
def gaussian_noise(call, ctx: CallContext) -> None:
    stddev = float(ctx.config["stddev"])
    x = ctx.input(0)
    ctx.output(f"{x} + torch.randn_like({x}) * {stddev!r} if self.training else {x}")


@register("GaussianDropout", elementwise=True)
def gaussian_dropout(call, ctx: CallContext) -> None:
    rate = float(ctx.config["rate"])
    x = ctx.input(0)
    stddev = float(np.sqrt(rate / (1.0 - rate))) if 0 < rate < 1 else 0.0
    ctx.output(f"{x} * (1.0 + torch.randn_like({x}) * {stddev!r}) if self.training else {x}")


@register("AlphaDropout", elementwise=True)
def alpha_dropout(call, ctx: CallContext) -> None:
    rate = float(ctx.config["rate"])
    if ctx.config.get("noise_shape") is not None:
        raise Unsupported("AlphaDropout noise_shape")
    attr = ctx.module(f"nn.AlphaDropout({rate!r})")
    ctx.output(f"{attr}({ctx.input(0)})")


@register("InputLayer")
def input_layer(call, ctx: CallContext) -> None:
    # Model inputs are bound (and permuted to channels-first) by the class builder itself.
    raise AssertionError("InputLayer is handled by the class builder")

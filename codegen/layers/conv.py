"""Convolutions: Conv1D/2D/3D, their transposes, depthwise and separable convolutions."""

from __future__ import annotations

from .. import weights as W
from ..convert import CallContext, Unsupported
from ..layout import native_layout
from ..registry import SPATIAL, register
from ._padding import as_tuple, compact, same_pad, torch_pad_arg
from .activations import with_activation


def _spatial_rank(class_name: str) -> int:
    return int(next(ch for ch in class_name if ch.isdigit()))


def _kwargs(**pairs) -> str:
    """Keyword arguments in order, dropping those equal to torch's defaults."""
    defaults = {"stride": 1, "padding": 0, "dilation": 1, "groups": 1, "bias": True, "output_padding": 0}
    parts = []
    for key, value in pairs.items():
        if key in defaults and (value == defaults[key] or (isinstance(value, tuple) and set(value) == {defaults[key]})):
            continue
        parts.append(f"{key}={value!r}")
    return ", ".join(parts)


def padded_input(ctx: CallContext, x: str, padding: str, kernel, strides, dilation, spatial_sizes):
    """Apply Keras padding: returns (expression, torch padding argument for the module)."""
    n = len(kernel)
    if padding == "valid":
        return x, 0
    if padding == "causal":
        if n != 1:
            raise Unsupported("causal padding is only defined for 1D convolutions")
        return f"F.pad({x}, ({(kernel[0] - 1) * dilation[0]}, 0))", 0
    if padding != "same":
        raise Unsupported(f"padding={padding!r}")
    pads = [same_pad(size, k, s, d) for size, k, s, d in zip(spatial_sizes, kernel, strides, dilation)]
    if any(p is None for p in pads):
        # The input size is unknown here: compute TensorFlow's padding at run time.
        ctx.helper("same_padding")
        return f"F.pad({x}, same_padding({x}, {kernel}, {strides}, {dilation}))", 0
    if all(before == after for before, after in pads):
        return x, compact(tuple(before for before, _ in pads))
    return f"F.pad({x}, {torch_pad_arg(pads)})", 0


def _common(ctx: CallContext, n: int):
    cfg = ctx.config
    data_format = cfg.get("data_format") or "channels_last"
    rank = n + 2
    layout = native_layout(rank, data_format)
    kernel = as_tuple(cfg["kernel_size"], n)
    strides = as_tuple(cfg.get("strides", 1), n)
    dilation = as_tuple(cfg.get("dilation_rate", 1), n)
    if max(strides) > 1 and max(dilation) > 1:
        raise Unsupported("strides > 1 together with dilation_rate > 1 (Keras rejects it too)")
    channel_axis = 1 if data_format == "channels_first" else -1
    in_shape = ctx.input_shape()
    in_channels = in_shape[channel_axis]
    spatial_sizes = [in_shape[layout.perm[2 + i]] for i in range(n)]
    return cfg, layout, kernel, strides, dilation, in_channels, spatial_sizes


@register("Conv1D", "Conv2D", "Conv3D", layout=SPATIAL)
def conv(call, ctx: CallContext) -> None:
    n = _spatial_rank(call.layer.class_name)
    cfg, layout, kernel, strides, dilation, in_channels, sizes = _common(ctx, n)
    if cfg.get("lora_rank"):
        raise Unsupported("LoRA-enabled convolutions")
    groups = int(cfg.get("groups", 1))
    filters = int(cfg["filters"])
    use_bias = bool(cfg.get("use_bias", True))
    x = ctx.input(0, layout)
    x, padding = padded_input(ctx, x, cfg.get("padding", "valid"), kernel, strides, dilation, sizes)
    args = _kwargs(
        kernel_size=compact(kernel), stride=compact(strides), padding=padding,
        dilation=compact(dilation), groups=groups, bias=use_bias,
    )
    attr = ctx.module(f"nn.Conv{n}d({in_channels}, {filters}, {args})")
    ctx.weight("weight", W.conv_kernel(ctx.keras_weight("kernel")), "kernel", "conv_kernel")
    if use_bias:
        ctx.weight("bias", ctx.keras_weight("bias"), "bias")
    ctx.output(with_activation(ctx, f"{attr}({x})", layout), layout)


@register("DepthwiseConv1D", "DepthwiseConv2D", layout=SPATIAL)
def depthwise_conv(call, ctx: CallContext) -> None:
    n = _spatial_rank(call.layer.class_name)
    cfg, layout, kernel, strides, dilation, in_channels, sizes = _common(ctx, n)
    mult = int(cfg.get("depth_multiplier", 1))
    use_bias = bool(cfg.get("use_bias", True))
    x = ctx.input(0, layout)
    x, padding = padded_input(ctx, x, cfg.get("padding", "valid"), kernel, strides, dilation, sizes)
    args = _kwargs(
        kernel_size=compact(kernel), stride=compact(strides), padding=padding,
        dilation=compact(dilation), groups=in_channels, bias=use_bias,
    )
    attr = ctx.module(f"nn.Conv{n}d({in_channels}, {in_channels * mult}, {args})")
    ctx.weight("weight", W.depthwise_kernel(ctx.keras_weight("kernel")), "kernel", "depthwise_kernel")
    if use_bias:
        ctx.weight("bias", ctx.keras_weight("bias"), "bias")
    ctx.output(with_activation(ctx, f"{attr}({x})", layout), layout)


@register("SeparableConv1D", "SeparableConv2D", layout=SPATIAL)
def separable_conv(call, ctx: CallContext) -> None:
    n = _spatial_rank(call.layer.class_name)
    cfg, layout, kernel, strides, dilation, in_channels, sizes = _common(ctx, n)
    mult = int(cfg.get("depth_multiplier", 1))
    filters = int(cfg["filters"])
    use_bias = bool(cfg.get("use_bias", True))
    x = ctx.input(0, layout)
    x, padding = padded_input(ctx, x, cfg.get("padding", "valid"), kernel, strides, dilation, sizes)
    helper = ctx.helper(f"SeparableConv{n}d")
    args = _kwargs(
        kernel_size=compact(kernel), stride=compact(strides), padding=padding,
        dilation=compact(dilation), depth_multiplier=mult, bias=use_bias,
    )
    args = args.replace(", depth_multiplier=1", "").replace("depth_multiplier=1, ", "")
    attr = ctx.module(f"{helper}({in_channels}, {filters}, {args})")
    ctx.weight("depthwise.weight", W.depthwise_kernel(ctx.keras_weight("depthwise_kernel")), "depthwise_kernel", "depthwise_kernel")
    ctx.weight("pointwise.weight", W.conv_kernel(ctx.keras_weight("pointwise_kernel")), "pointwise_kernel", "conv_kernel")
    if use_bias:
        ctx.weight("pointwise.bias", ctx.keras_weight("bias"), "bias")
    ctx.output(with_activation(ctx, f"{attr}({x})", layout), layout)


@register("Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose", layout=SPATIAL)
def conv_transpose(call, ctx: CallContext) -> None:
    n = _spatial_rank(call.layer.class_name)
    cfg, layout, kernel, strides, dilation, in_channels, sizes = _common(ctx, n)
    filters = int(cfg["filters"])
    use_bias = bool(cfg.get("use_bias", True))
    padding = cfg.get("padding", "valid")
    if padding not in ("valid", "same"):
        raise Unsupported(f"padding={padding!r}")
    output_padding = cfg.get("output_padding")
    out_pads = None if output_padding is None else as_tuple(output_padding, n)
    torch_pad, torch_out_pad, trims = [], [], []
    for i in range(n):
        k_eff = (kernel[i] - 1) * dilation[i] + 1
        s = strides[i]
        # Keras's output length o (see keras deconv_output_length) and TF's crop of the full
        # transposed convolution, whose length is L = (n - 1) * s + k_eff.
        if out_pads is None:
            grow = s * 0  # o - (n - 1) * s, independent of the input length n
            extra = max(k_eff - s, 0) + s if padding == "valid" else s
            grow = extra
        else:
            pad = k_eff // 2 if padding == "same" else 0
            grow = k_eff - 2 * pad + out_pads[i]
        # o = (n - 1) * s + grow; total crop = max(L - o, 0) = max(k_eff - grow, 0)
        total = max(k_eff - grow, 0) if padding == "same" else 0
        before = total // 2
        out_pad = grow - k_eff + 2 * before
        if out_pad < 0:
            trims.append(-out_pad)
            out_pad = 0
        else:
            trims.append(0)
        if out_pad >= max(s, dilation[i]):
            raise Unsupported(f"output_padding {out_pads} too large for strides {strides}")
        torch_pad.append(before)
        torch_out_pad.append(out_pad)
    x = ctx.input(0, layout)
    args = _kwargs(
        kernel_size=compact(kernel), stride=compact(strides), padding=compact(tuple(torch_pad)),
        output_padding=compact(tuple(torch_out_pad)), dilation=compact(dilation), bias=use_bias,
    )
    attr = ctx.module(f"nn.ConvTranspose{n}d({in_channels}, {filters}, {args})")
    ctx.weight("weight", W.conv_transpose_kernel(ctx.keras_weight("kernel")), "kernel", "conv_transpose_kernel")
    if use_bias:
        ctx.weight("bias", ctx.keras_weight("bias"), "bias")
    expr = f"{attr}({x})"
    if any(trims):
        index = ", ".join([":", ":"] + [f":-{t}" if t else ":" for t in trims])
        expr = f"{expr}[{index}]"
    ctx.output(with_activation(ctx, expr, layout), layout)

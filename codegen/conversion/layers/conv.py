"""Convolutions: Conv1D/2D/3D, their transposes, depthwise and separable convolutions."""

from __future__ import annotations

from codegen.ir.layout import native_layout

from .. import weights as W
from ..context import CallContext, Unsupported
from ..registry import SPATIAL, register
from ._lora import lora_merged
from ._padding import as_tuple, compact, same_pad, torch_pad_arg
from .activations import with_activation

# torch's defaults for convolution arguments: left out of the generated constructor call.
_DEFAULTS = {
    "stride": 1,
    "padding": 0,
    "output_padding": 0,
    "dilation": 1,
    "groups": 1,
    "bias": True,
    "depth_multiplier": 1,
}


def _spatial_rank(class_name: str) -> int:
    return int(next(ch for ch in class_name if ch.isdigit()))


def _kwargs(**pairs) -> str:
    """Keyword arguments in order, dropping those equal to torch's defaults."""
    parts = []
    for key, value in pairs.items():
        if key in _DEFAULTS and value == _DEFAULTS[key]:
            continue
        parts.append(f"{key}={value!r}")
    return ", ".join(parts)


def padded_input(ctx: CallContext, x: str, padding: str, kernel, strides, dilation, layout):
    """Apply Keras padding to ``x``: returns (expression, torch ``padding=`` for the module).

    Symmetric padding becomes the module's own ``padding=``; TensorFlow's asymmetric 'same'
    padding (extra cell after) an ``F.pad`` when the input size is known, else a run-time
    ``pad_same`` call.
    """
    n = len(kernel)
    if padding == "valid":
        return x, 0
    if padding == "causal":
        if n != 1:
            raise Unsupported("padding='causal' is only defined for 1D convolutions")
        return f"F.pad({x}, ({(kernel[0] - 1) * dilation[0]}, 0))", 0
    if padding != "same":
        raise Unsupported(f"padding={padding!r}")

    def same_pads(shape):
        sizes = [shape[layout.perm[2 + i]] for i in range(n)]
        return [same_pad(size, k, s, d) for size, k, s, d in zip(sizes, kernel, strides, dilation)]

    pads = same_pads(ctx.input_shape())
    # A shared layer is one module: its padding= must suit every call of it.
    every_call = [same_pads(c.inputs[0].shape) for c in ctx.calls_of_layer()]
    native = all(p == pads for p in every_call) and all(
        p is not None and p[0] == p[1] for p in pads
    )
    if native:
        return x, compact(tuple(before for before, _ in pads))
    if any(p is None for p in pads):
        # The padding depends on an input size unknown here: TensorFlow's rule at run time.
        ctx.helper("pad_same")
        return f"pad_same({x}, {tuple(kernel)!r}, {tuple(strides)!r}, {tuple(dilation)!r})", 0
    if not any(before or after for before, after in pads):
        return x, 0
    return f"F.pad({x}, {torch_pad_arg(pads)!r})", 0


def _common(ctx: CallContext, n: int, allow_strided_dilation: bool = False):
    cfg = ctx.config
    data_format = cfg.get("data_format") or "channels_last"
    if data_format not in ("channels_last", "channels_first"):
        raise Unsupported(f"data_format={data_format!r}")
    layout = native_layout(n + 2, data_format)
    kernel = as_tuple(cfg["kernel_size"], n)
    strides = as_tuple(cfg.get("strides", 1), n)
    dilation = as_tuple(cfg.get("dilation_rate", 1), n)
    if not (len(kernel) == len(strides) == len(dilation) == n):
        raise Unsupported(
            f"kernel_size={kernel}, strides={strides}, dilation_rate={dilation} for {n}D"
        )
    if not allow_strided_dilation and max(strides) > 1 and max(dilation) > 1:
        raise Unsupported(
            f"strides={strides} together with dilation_rate={dilation} (Keras rejects it too)"
        )
    channel_axis = 1 if data_format == "channels_first" else -1
    in_shape = ctx.input_shape()
    if len(in_shape) != n + 2:
        raise Unsupported(f"input of rank {len(in_shape)} (expected {n + 2})")
    in_channels = in_shape[channel_axis]
    if in_channels is None:
        raise Unsupported("input with an unknown number of channels")
    return cfg, layout, kernel, strides, dilation, int(in_channels)


@register("Conv1D", "Conv2D", "Conv3D", layout=SPATIAL)
def conv(call, ctx: CallContext) -> None:
    n = _spatial_rank(call.layer.class_name)
    cfg, layout, kernel, strides, dilation, in_channels = _common(ctx, n)
    groups = int(cfg.get("groups", 1) or 1)
    filters = int(cfg["filters"])
    use_bias = bool(cfg.get("use_bias", True))
    x = ctx.input(0, layout)
    x, padding = padded_input(
        ctx, x, cfg.get("padding", "valid"), kernel, strides, dilation, layout
    )
    args = _kwargs(
        kernel_size=compact(kernel),
        stride=compact(strides),
        padding=padding,
        dilation=compact(dilation),
        groups=groups,
        bias=use_bias,
    )
    attr = ctx.module(f"nn.Conv{n}d({in_channels}, {filters}, {args})")
    weight, merged = lora_merged(ctx)
    ctx.weight("weight", W.conv_kernel(weight), "kernel", merged + "conv_kernel")
    if use_bias:
        ctx.weight("bias", ctx.keras_weight("bias"), "bias")
    ctx.output(with_activation(ctx, f"{attr}({x})", layout), layout)


@register("DepthwiseConv1D", "DepthwiseConv2D", layout=SPATIAL)
def depthwise_conv(call, ctx: CallContext) -> None:
    n = _spatial_rank(call.layer.class_name)
    # Keras runs strides > 1 with dilation > 1 as a dilated convolution subsampled: the same
    # as torch's strided dilated convolution.
    cfg, layout, kernel, strides, dilation, in_channels = _common(
        ctx, n, allow_strided_dilation=True
    )
    mult = int(cfg.get("depth_multiplier", 1))
    use_bias = bool(cfg.get("use_bias", True))
    x = ctx.input(0, layout)
    x, padding = padded_input(
        ctx, x, cfg.get("padding", "valid"), kernel, strides, dilation, layout
    )
    args = _kwargs(
        kernel_size=compact(kernel),
        stride=compact(strides),
        padding=padding,
        dilation=compact(dilation),
        groups=in_channels,
        bias=use_bias,
    )
    attr = ctx.module(f"nn.Conv{n}d({in_channels}, {in_channels * mult}, {args})")
    ctx.weight(
        "weight", W.depthwise_kernel(ctx.keras_weight("kernel")), "kernel", "depthwise_kernel"
    )
    if use_bias:
        ctx.weight("bias", ctx.keras_weight("bias"), "bias")
    ctx.output(with_activation(ctx, f"{attr}({x})", layout), layout)


@register("SeparableConv1D", "SeparableConv2D", layout=SPATIAL)
def separable_conv(call, ctx: CallContext) -> None:
    n = _spatial_rank(call.layer.class_name)
    cfg, layout, kernel, strides, dilation, in_channels = _common(
        ctx, n, allow_strided_dilation=True
    )
    mult = int(cfg.get("depth_multiplier", 1))
    filters = int(cfg["filters"])
    use_bias = bool(cfg.get("use_bias", True))
    x = ctx.input(0, layout)
    x, padding = padded_input(
        ctx, x, cfg.get("padding", "valid"), kernel, strides, dilation, layout
    )
    helper = ctx.helper(f"SeparableConv{n}d")
    args = _kwargs(
        kernel_size=compact(kernel),
        stride=compact(strides),
        padding=padding,
        dilation=compact(dilation),
        depth_multiplier=mult,
        bias=use_bias,
    )
    attr = ctx.module(f"{helper}({in_channels}, {filters}, {args})")
    ctx.weight(
        "depthwise.weight",
        W.depthwise_kernel(ctx.keras_weight("depthwise_kernel")),
        "depthwise_kernel",
        "depthwise_kernel",
    )
    ctx.weight(
        "pointwise.weight",
        W.conv_kernel(ctx.keras_weight("pointwise_kernel")),
        "pointwise_kernel",
        "conv_kernel",
    )
    if use_bias:
        ctx.weight("pointwise.bias", ctx.keras_weight("bias"), "bias")
    ctx.output(with_activation(ctx, f"{attr}({x})", layout), layout)


def transpose_geometry(
    kernel: int, stride: int, dilation: int, padding: str, output_padding: int | None
):
    """torch (padding, output_padding, trim at the end) reproducing one axis of Keras's transpose.

    TensorFlow computes the full transposed convolution, of length ``L = (n-1)*s + k_eff``,
    and keeps ``o`` cells of it (Keras's output length, below) starting at the 'same' padding
    ``before`` of the forward convolution that maps ``o`` cells to ``n``; cells past ``L`` hold
    only the bias. torch keeps ``L - 2p + output_padding`` cells starting at ``p``. Everything
    here is independent of ``n``.
    """
    k_eff = (kernel - 1) * dilation + 1
    # grow = o - (n - 1) * s  (keras.src.backend.common.backend_utils)
    if padding == "valid":
        grow = k_eff + (max(k_eff, stride) - k_eff if output_padding is None else output_padding)
    elif padding == "same":
        grow = stride if output_padding is None else k_eff % 2 + output_padding
    else:
        raise Unsupported(f"padding={padding!r}")
    if padding == "same" and grow <= 0:
        # TensorFlow's forward 'same' convolution of o cells does not give n cells back.
        raise Unsupported(
            f"padding='same' with kernel {kernel} and output_padding={output_padding}"
        )
    total = max(k_eff - grow, 0) if padding == "same" else 0  # = max(L - o, 0)
    before = total // 2
    out_pad = grow - k_eff + 2 * before  # torch's length minus o
    trim = 0
    if out_pad < 0:
        trim, out_pad = -out_pad, 0
    if out_pad >= max(stride, dilation):
        raise Unsupported(
            f"output_padding={output_padding} with strides={stride}, dilation_rate={dilation}"
        )
    return before, out_pad, trim


@register("Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose", layout=SPATIAL)
def conv_transpose(call, ctx: CallContext) -> None:
    n = _spatial_rank(call.layer.class_name)
    cfg, layout, kernel, strides, dilation, in_channels = _common(ctx, n)
    if int(cfg.get("groups", 1) or 1) != 1:
        raise Unsupported(f"groups={cfg['groups']!r}")
    filters = int(cfg["filters"])
    use_bias = bool(cfg.get("use_bias", True))
    padding = cfg.get("padding", "valid")
    output_padding = cfg.get("output_padding")
    out_pads = [None] * n if output_padding is None else list(as_tuple(output_padding, n))
    geometry = [
        transpose_geometry(k, s, d, padding, op)
        for k, s, d, op in zip(kernel, strides, dilation, out_pads)
    ]
    torch_pad = tuple(g[0] for g in geometry)
    torch_out_pad = tuple(g[1] for g in geometry)
    trims = [g[2] for g in geometry]
    x = ctx.input(0, layout)
    args = _kwargs(
        kernel_size=compact(kernel),
        stride=compact(strides),
        padding=compact(torch_pad),
        output_padding=compact(torch_out_pad),
        dilation=compact(dilation),
        bias=use_bias,
    )
    attr = ctx.module(f"nn.ConvTranspose{n}d({in_channels}, {filters}, {args})")
    weight = ctx.keras_weight("kernel")
    ctx.weight("weight", W.conv_transpose_kernel(weight), "kernel", "conv_transpose_kernel")
    if use_bias:
        ctx.weight("bias", ctx.keras_weight("bias"), "bias")
    expr = f"{attr}({x})"
    if any(trims):
        # TensorFlow drops the odd cell of 'same' cropping at the end; torch crops evenly.
        last = max(i for i, t in enumerate(trims) if t)
        index = ", ".join([":", ":"] + [f":-{t}" if t else ":" for t in trims[: last + 1]])
        expr = f"{expr}[{index}]"
    ctx.output(with_activation(ctx, expr, layout), layout)

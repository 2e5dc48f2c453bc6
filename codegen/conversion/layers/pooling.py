"""Max/average pooling (1D/2D/3D), their global and adaptive forms.

Keras's adaptive pooling (TensorFlow backend) computes bin ``i`` of ``o`` over ``n`` cells
from ``floor(i * n / o)`` to ``ceil((i + 1) * n / o)``, in float32: torch's adaptive pooling
bins, exactly, while ``n * o < 2**24`` (the float32 quotient then never rounds across an
integer).
"""

from __future__ import annotations

from codegen.ir.layout import Layout, keras_order, native_layout

from ..context import CallContext, Unsupported
from ..registry import AGNOSTIC, SPATIAL, register
from ._padding import as_tuple, compact, same_pad, torch_pad_arg


def _spatial_rank(class_name: str) -> int:
    return int(next(ch for ch in class_name if ch.isdigit()))


def _args(kernel, strides, padding=0, extra="") -> str:
    text = f"kernel_size={compact(kernel)!r}"
    if tuple(strides) != tuple(kernel):
        text += f", stride={compact(strides)!r}"
    if padding != 0:
        text += f", padding={padding!r}"
    return text + extra


@register(
    "MaxPooling1D",
    "MaxPooling2D",
    "MaxPooling3D",
    "AveragePooling1D",
    "AveragePooling2D",
    "AveragePooling3D",
    layout=SPATIAL,
)
def pooling(call, ctx: CallContext) -> None:
    name = call.layer.class_name
    n = _spatial_rank(name)
    is_max = name.startswith("Max")
    cfg = ctx.config
    data_format = cfg.get("data_format") or "channels_last"
    layout = native_layout(n + 2, data_format)
    kernel = as_tuple(cfg["pool_size"], n)
    strides = as_tuple(cfg.get("strides") or kernel, n)
    padding = str(cfg.get("padding", "valid")).lower()
    x = ctx.input(0, layout)
    kind = "Max" if is_max else "Avg"
    if padding == "valid":
        attr = ctx.module(f"nn.{kind}Pool{n}d({_args(kernel, strides)})")
        ctx.output(f"{attr}({x})", layout)
        return
    if padding != "same":
        raise Unsupported(f"padding={padding!r}")

    def same_pads(shape):
        sizes = [shape[layout.perm[2 + i]] for i in range(n)]
        return [same_pad(size, k, s) for size, k, s in zip(sizes, kernel, strides)]

    pads = same_pads(ctx.input_shape())
    symmetric = all(p is not None and p[0] == p[1] for p in pads)
    # A layer called on inputs that pad differently shares one module without padding.
    shared = all(same_pads(c.inputs[0].shape) == pads for c in call.layer.calls)
    if symmetric and shared:
        # torch pads max pooling with -inf and, with count_include_pad=False, leaves the
        # padding out of averages: TensorFlow's 'same' semantics when padding is symmetric.
        padding_arg = compact(tuple(p[0] for p in pads))
        extra = "" if is_max or padding_arg == 0 else ", count_include_pad=False"
        attr = ctx.module(f"nn.{kind}Pool{n}d({_args(kernel, strides, padding_arg, extra)})")
        ctx.output(f"{attr}({x})", layout)
        return
    if any(p is None for p in pads):
        ctx.helper("same_padding")
        pad_arg = f"same_padding({x}, {kernel}, {strides}, {(1,) * n})"
    else:
        pad_arg = repr(torch_pad_arg(pads))
    if is_max:
        attr = ctx.module(f"nn.MaxPool{n}d({_args(kernel, strides)})")
        ctx.output(f"{attr}(F.pad({x}, {pad_arg}, value=-math.inf))", layout)
    else:
        # Asymmetric padding: average over the real cells only, as TensorFlow does.
        ctx.helper("avg_pool_same")
        ctx.output(f"avg_pool_same({x}, {kernel}, {strides}, {pad_arg})", layout)


@register(
    "AdaptiveMaxPooling1D",
    "AdaptiveMaxPooling2D",
    "AdaptiveMaxPooling3D",
    "AdaptiveAveragePooling1D",
    "AdaptiveAveragePooling2D",
    "AdaptiveAveragePooling3D",
    layout=SPATIAL,
)
def adaptive_pooling(call, ctx: CallContext) -> None:
    name = call.layer.class_name
    n = _spatial_rank(name)
    cfg = ctx.config
    data_format = cfg.get("data_format") or "channels_last"
    layout = native_layout(n + 2, data_format)
    size = as_tuple(cfg["output_size"], n)
    for c in call.layer.calls:
        keras_shape = c.inputs[0].shape
        for i, o in enumerate(size):
            cells = keras_shape[layout.perm[2 + i]]
            if cells is None:
                raise Unsupported("an unknown spatial size (Keras needs it known)")
            if cells * o >= 2**24:
                raise Unsupported(f"output_size={o} of {cells} cells (float32 bins)")
    x = ctx.input(0, layout)
    kind = "Max" if name.startswith("AdaptiveMax") else "Avg"
    attr = ctx.module(f"nn.Adaptive{kind}Pool{n}d({compact(size)!r})")
    ctx.output(f"{attr}({x})", layout)


# Global pooling reduces over axes wherever they are: it follows its input's layout.
@register(
    "GlobalMaxPooling1D",
    "GlobalMaxPooling2D",
    "GlobalMaxPooling3D",
    "GlobalAveragePooling1D",
    "GlobalAveragePooling2D",
    "GlobalAveragePooling3D",
    layout=AGNOSTIC,
)
def global_pooling(call, ctx: CallContext) -> None:
    name = call.layer.class_name
    n = _spatial_rank(name)
    cfg = ctx.config
    masked = ctx.n_inputs > 1
    if masked and (
        name != "GlobalAveragePooling1D" or ctx.n_inputs != 2 or len(ctx.input_shape(1)) != 2
    ):
        raise Unsupported("a mask argument")
    data_format = cfg.get("data_format") or "channels_last"
    keepdims = bool(cfg.get("keepdims", False))
    layout = ctx.input_layout()
    rank = n + 2
    channel = 1 if data_format == "channels_first" else rank - 1
    if layout.feature_order is not None:
        raise Unsupported("global pooling of a flattened tensor")
    spatial_keras = [a for a in range(1, rank) if a != channel]
    x = ctx.input(0)
    dims = tuple(sorted(layout.torch_axis(a) for a in spatial_keras))
    dim = dims[0] if len(dims) == 1 else dims
    keep = ", keepdim=True" if keepdims else ""
    if name.startswith("GlobalMax"):
        expr = f"{x}.amax(dim={dim!r}{keep})"
    elif masked:
        # Keras averages the unmasked steps only.
        mask = f"{ctx.input(1, keras_order(2))}.unsqueeze({layout.torch_axis(channel)})"
        expr = f"{ctx.helper('masked_mean')}({x}, {mask}, dim={dim!r}{keep})"
    else:
        expr = f"{x}.mean(dim={dim!r}{keep})"
    if keepdims:
        out_layout = layout
    else:
        # Remaining torch axes keep their relative order: batch and channel.
        kept = [p for p in layout.perm if p not in spatial_keras]
        out_layout = Layout(tuple(0 if p == 0 else 1 for p in kept))
        if out_layout.perm != keras_order(2).perm:
            raise Unsupported("global pooling with the channel axis before the batch axis")
    ctx.output(expr, out_layout)

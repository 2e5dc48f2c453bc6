"""Operations that only old tf.keras files need (``TFOpLambda`` nodes read by
:mod:`codegen.tf_functions`), registered as keras.ops operations so that Keras 3 models that
use them convert too: ``ops.logsumexp`` (``tf.math.reduce_logsumexp``), ``ops.argmax`` and
``ops.argmin`` (``tf.math.argmax``/``argmin``)."""

from __future__ import annotations

from codegen.ir.layout import keras_order

from ..context import CallContext, Unsupported
from ..registry import AGNOSTIC, register
from .ops import _single_input, reduced_layout


@register("Logsumexp", layout=AGNOSTIC, op=True)
def logsumexp(call, ctx: CallContext) -> None:
    cfg = ctx.config
    axis, keepdims = cfg.get("axis"), bool(cfg.get("keepdims", False))
    for tensor in ctx.call.inputs:
        if "float" not in tensor.dtype:
            raise Unsupported(f"logsumexp of a {tensor.dtype} tensor")
    layout = ctx.input_layout()
    if layout.feature_order is not None:
        raise Unsupported("logsumexp of a flattened channels-first tensor")
    x = _single_input(ctx)
    rank = layout.rank
    axes = list(range(rank)) if axis is None else [axis] if isinstance(axis, int) else list(axis)
    dims = sorted({layout.torch_axis(int(a) % rank) for a in axes})
    dim = dims[0] if len(dims) == 1 else tuple(dims)
    keep = ", keepdim=True" if keepdims else ""
    ctx.output(
        f"torch.logsumexp({x}, dim={dim!r}{keep})",
        layout if keepdims else reduced_layout(layout, set(dims)),
    )


@register("Argmax", "Argmin", layout=AGNOSTIC, op=True)
def arg_reduction(call, ctx: CallContext) -> None:
    """The first index of the extreme value among ties (TensorFlow's and torch's), in int32.

    Over one axis, or over the flattened tensor, batch included (``axis=None``)."""
    cfg = ctx.config
    axis, keepdims = cfg.get("axis"), bool(cfg.get("keepdims", False))
    fn = "torch.argmax" if call.layer.class_name == "Argmax" else "torch.argmin"
    layout = ctx.input_layout()
    if layout.feature_order is not None:
        raise Unsupported(f"{fn[6:]} of a flattened channels-first tensor")
    if ctx.call.inputs[0].dtype == "bool":
        raise Unsupported(f"{fn[6:]} of a bool tensor")
    keep = ", keepdim=True" if keepdims else ""
    if axis is None:
        x = ctx.input(0, keras_order(layout.rank))
        shape = "1" if not keepdims else ", ".join(["1"] * layout.rank)
        expr = f"{fn}({x}).to(torch.int32)"
        if keepdims:
            expr = f"{expr}.reshape({shape})"
        ctx.output(expr, keras_order(layout.rank if keepdims else 0))
        return
    if not isinstance(axis, int):
        raise Unsupported(f"axis={axis!r}")
    dim = layout.torch_axis(int(axis) % layout.rank)
    ctx.output(
        f"{fn}({_single_input(ctx)}, dim={dim}{keep}).to(torch.int32)",
        layout if keepdims else reduced_layout(layout, {dim}),
    )

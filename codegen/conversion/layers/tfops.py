"""Operations that only old tf.keras files need (``TFOpLambda`` nodes read by
:mod:`codegen.tf_functions`), registered as keras.ops operations so that Keras 3 models that
use them convert too: ``ops.logsumexp`` (``tf.math.reduce_logsumexp``)."""

from __future__ import annotations

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

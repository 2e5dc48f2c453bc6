"""Operations that only old tf.keras files need (``TFOpLambda`` nodes read by
:mod:`codegen.tf_functions`), registered as keras.ops operations so that Keras 3 models that
use them convert too: ``ops.logsumexp`` (``tf.math.reduce_logsumexp``), ``ops.argmax`` and
``ops.argmin`` (``tf.math.argmax``/``argmin``), ``ops.top_k``, ``ops.one_hot`` and ``ops.pad``
(``tf.math.top_k``, ``tf.one_hot``, ``tf.pad``)."""

from __future__ import annotations

import numpy as np

from codegen.ir.graph import TensorRef
from codegen.ir.layout import keras_order

from ..context import CallContext, Unsupported
from ..dtypes import TORCH_DTYPES
from ..registry import AGNOSTIC, register
from .merging import torch_dim
from .ops import _output_dtype, _single_input, arguments, array_constant, constant, reduced_layout


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


@register("TopK", layout=AGNOSTIC, op=True)
def top_k(call, ctx: CallContext) -> None:
    """``ops.top_k``/``tf.math.top_k`` over the last Keras axis, wherever it is in torch."""
    k = int(ctx.config["k"])
    if ctx.config.get("sorted", True) is not True:
        raise Unsupported("sorted=False (TensorFlow leaves that order to its kernel)")
    layout = ctx.input_layout()
    if layout.feature_order is not None:
        raise Unsupported("top_k of a flattened channels-first tensor")
    if ctx.call.inputs[0].dtype == "bool":
        raise Unsupported("top_k of a bool tensor")
    x = _single_input(ctx)
    helper = ctx.helper("tf_top_k")
    ctx.outputs(f"{helper}({x}, {k}, dim={torch_dim(layout, -1)})", [layout, layout])


@register("OneHot", layout=AGNOSTIC, op=True)
def one_hot(call, ctx: CallContext) -> None:
    """``ops.one_hot``/``tf.one_hot``; an index outside ``[0, depth)`` gives ``off_value``.

    (As TensorFlow computes it; ``F.one_hot`` would fail on such an index.)"""
    cfg = ctx.config
    if cfg.get("sparse"):
        raise Unsupported("sparse=True")
    depth, axis = int(cfg["num_classes"]), int(cfg.get("axis", -1))
    on, off = cfg.get("on_value", 1), cfg.get("off_value", 0)
    source = ctx.call.inputs[0].dtype
    if not source.startswith(("int", "uint")):
        raise Unsupported(f"one_hot of a {source} tensor")
    dtype = _output_dtype(ctx)
    rank = ctx.input_layout().rank
    x = ctx.input(0, keras_order(rank))
    hit = f"({x}.unsqueeze(-1) == torch.arange({depth}, device={x}.device))"
    if on == 1 and off == 0:
        expr = hit if dtype == "bool" else f"{hit}.to({TORCH_DTYPES[dtype]})"
    else:
        values = array_constant(ctx, np.array([off, on], dtype=dtype))
        expr = f"torch.where({hit}, {values}[1], {values}[0])"
    if axis not in (-1, rank):
        expr = f"{expr}.movedim(-1, {axis})"
    ctx.output(expr, keras_order(rank + 1))


@register("Pad", layout=AGNOSTIC, op=True)
def pad(call, ctx: CallContext) -> None:
    """``ops.pad``/``tf.pad`` in constant, reflect or symmetric mode (any axis, any layout)."""
    values = arguments(ctx, ("x", "constant_values"))
    if not isinstance(values[0], TensorRef):
        raise Unsupported("padding a constant")
    layout = ctx.input_layout(values[0].position)
    if layout.feature_order is not None:
        raise Unsupported("pad of a flattened channels-first tensor")
    widths = [[int(v) for v in pair] for pair in ctx.config["pad_width"]]
    widths = [pair * 2 if len(pair) == 1 else pair for pair in widths]
    if len(widths) == 1:
        widths = widths * layout.rank
    if len(widths) != layout.rank or any(len(p) != 2 or min(p) < 0 for p in widths):
        raise Unsupported(f"pad_width={ctx.config['pad_width']!r}")
    torch_widths = layout.torch_shape(widths)
    mode = ctx.config.get("mode", "constant")
    x = ctx.input(values[0].position)
    if mode == "constant":
        value = values[1] if len(values) > 1 and values[1] is not None else 0
        if isinstance(value, TensorRef):
            raise Unsupported("constant_values given as a tensor")
        padded = [d for d, pair in enumerate(torch_widths) if any(pair)]
        pads = [
            v
            for d in range(layout.rank - 1, min(padded, default=layout.rank) - 1, -1)
            for v in torch_widths[d]
        ]
        fill = constant(value)
        ctx.output(f"F.pad({x}, {pads!r}{'' if fill == '0' else f', value={fill}'})", layout)
        return
    if mode not in ("reflect", "symmetric"):
        raise Unsupported(f"mode={mode!r}")
    if len(values) > 1 and values[1] not in (None, 0):
        raise Unsupported(f"constant_values with mode={mode!r}")
    pads = [(d, a, b) for d, (a, b) in enumerate(torch_widths) if a or b]
    helper = ctx.helper("mirror_pad")
    ctx.output(f"{helper}({x}, {pads!r}, symmetric={mode == 'symmetric'})", layout)

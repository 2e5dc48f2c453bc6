"""Merge layers: Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate, Dot.

Element-wise merges never ask for a layout: every input is brought into one common layout
(the one most of the highest-rank inputs already have), so a branch that is channels-first
inside the module stays channels-first. Lower-rank inputs are broadcast the way Keras does
it (``Merge`` inserts the missing axes right after the batch axis, numpy-style ops insert
them in front) with ``None`` indexing, never with a copy.
"""

from __future__ import annotations

from collections import Counter

from codegen.ir.layout import Layout, channels_first, keras_order

from ..context import CallContext, Unsupported
from ..registry import AGNOSTIC, register


def torch_dim(layout: Layout, keras_axis: int) -> int:
    """The torch ``dim`` of a Keras axis, written ``-1`` when it is the last one."""
    axis = layout.torch_axis(keras_axis)
    return -1 if axis == layout.rank - 1 else axis


def common_layout(ctx: CallContext, positions=None) -> Layout:
    """The layout most of the highest-rank inputs already have."""
    positions = list(range(ctx.n_inputs)) if positions is None else list(positions)
    rank = max(len(ctx.input_shape(i)) for i in positions)
    layouts = [ctx.input_layout(i) for i in positions if len(ctx.input_shape(i)) == rank]
    counts = Counter(layouts)
    best = max(counts.values())
    tied = [layout for layout in layouts if counts[layout] == best]
    # On a tie, channels-first: the layout the module's spatial layers want.
    chosen = channels_first(rank) if channels_first(rank) in tied else tied[0]
    others = {
        layout
        for layout in (ctx.input_layout(i) for i in positions)
        if layout.feature_order is not None
    }
    if others and any(ctx.input_layout(i) != chosen for i in positions):
        raise Unsupported(
            "merging a flattened channels-first tensor with a tensor of another layout"
        )
    return chosen


def broadcast_input(ctx: CallContext, i: int, target: Layout, insert_at: int) -> str:
    """Input ``i`` laid out to broadcast against a tensor in ``target``.

    A Keras tensor of lower rank gets ``target.rank - rank`` size-1 axes inserted at Keras
    position ``insert_at`` (1 for merge layers, 0 for numpy broadcasting); the result is that
    expanded tensor in ``target``'s axis order, as a view.
    """
    rank = len(ctx.input_shape(i))
    if rank == target.rank:
        if target.feature_order is not None and ctx.input_layout(i) != target:
            raise Unsupported("broadcasting against a flattened channels-first tensor")
        return ctx.input(i, target if ctx.input_layout(i) != target else None)
    if rank == 0:
        return ctx.input(i)
    if target.feature_order is not None:
        raise Unsupported("broadcasting against a flattened channels-first tensor")
    k = target.rank - rank

    def original(axis: int) -> int | None:
        if axis < insert_at:
            return axis
        if axis < insert_at + k:
            return None
        return axis - k

    sequence = [original(axis) for axis in target.perm]
    kept = tuple(a for a in sequence if a is not None)
    x = ctx.input(i, Layout(kept))
    index = [":" if a is not None else "None" for a in sequence]
    while index and index[-1] == ":":
        index.pop()
    return f"{x}[{', '.join(index)}]"


def _elementwise_inputs(ctx: CallContext) -> tuple[list[str], Layout]:
    target = common_layout(ctx)
    return [broadcast_input(ctx, i, target, insert_at=1) for i in range(ctx.n_inputs)], target


@register("Add", layout=AGNOSTIC)
def add(call, ctx: CallContext) -> None:
    xs, layout = _elementwise_inputs(ctx)
    ctx.output(" + ".join(xs), layout)


@register("Subtract", layout=AGNOSTIC)
def subtract(call, ctx: CallContext) -> None:
    if ctx.n_inputs != 2:
        raise Unsupported(f"Subtract of {ctx.n_inputs} inputs (Keras needs exactly 2)")
    xs, layout = _elementwise_inputs(ctx)
    ctx.output(f"{xs[0]} - {xs[1]}", layout)


def _no_masks(ctx: CallContext) -> None:
    # Keras Multiply/Maximum/Minimum treat masked steps specially (Add etc. ignore masks).
    if any(t.masked for t in ctx.call.inputs):
        raise Unsupported("inputs carry a Keras mask (masked steps merge differently)")


@register("Multiply", layout=AGNOSTIC)
def multiply(call, ctx: CallContext) -> None:
    _no_masks(ctx)
    xs, layout = _elementwise_inputs(ctx)
    ctx.output(" * ".join(xs), layout)


@register("Average", layout=AGNOSTIC)
def average(call, ctx: CallContext) -> None:
    xs, layout = _elementwise_inputs(ctx)
    if len(xs) == 1:
        ctx.output(xs[0], layout)
        return
    ctx.output(f"({' + '.join(xs)}) / {len(xs)}", layout)


def _fold(function: str, xs: list[str]) -> str:
    expr = xs[0]
    for x in xs[1:]:
        expr = f"{function}({expr}, {x})"
    return expr


@register("Maximum", layout=AGNOSTIC)
def maximum(call, ctx: CallContext) -> None:
    _no_masks(ctx)
    xs, layout = _elementwise_inputs(ctx)
    ctx.output(_fold("torch.maximum", xs), layout)


@register("Minimum", layout=AGNOSTIC)
def minimum(call, ctx: CallContext) -> None:
    _no_masks(ctx)
    xs, layout = _elementwise_inputs(ctx)
    ctx.output(_fold("torch.minimum", xs), layout)


def concatenate_expr(ctx: CallContext, axis: int, positions=None) -> tuple[str, Layout]:
    """``torch.cat`` of inputs along Keras ``axis``, in the layout most inputs have."""
    positions = list(range(ctx.n_inputs)) if positions is None else list(positions)
    ranks = {len(ctx.input_shape(i)) for i in positions}
    if len(ranks) != 1:
        raise Unsupported("concatenating tensors of different ranks")
    rank = ranks.pop()
    if not -rank <= axis < rank:
        raise Unsupported(f"axis={axis} for rank-{rank} inputs")
    layout = common_layout(ctx, positions)
    if layout.feature_order is not None:
        raise Unsupported("concatenating flattened channels-first tensors")
    xs = [ctx.input(i, layout if ctx.input_layout(i) != layout else None) for i in positions]
    if len(xs) == 1:
        return xs[0], layout
    return f"torch.cat([{', '.join(xs)}], dim={torch_dim(layout, axis)})", layout


@register("Concatenate", layout=AGNOSTIC)
def concatenate(call, ctx: CallContext) -> None:
    expr, layout = concatenate_expr(ctx, int(ctx.config.get("axis", -1)))
    ctx.output(expr, layout)


_LETTERS = "ijklmopqrstuvwxyzabdefgh"  # "n" is the batch axis, "c" the summed one


def _einsum_subscripts(layout: Layout, keras_letters: list[str]) -> str:
    return "".join(keras_letters[axis] for axis in layout.perm)


@register("Dot", layout=AGNOSTIC)
def dot(call, ctx: CallContext) -> None:
    if ctx.n_inputs != 2:
        raise Unsupported(f"Dot of {ctx.n_inputs} inputs (Keras needs exactly 2)")
    cfg = ctx.config
    axes = cfg["axes"]
    normalize = bool(cfg.get("normalize", False))
    ranks = [len(ctx.input_shape(0)), len(ctx.input_shape(1))]
    if isinstance(axes, int):
        axes = [axes % r if axes < 0 else axes for r in ranks]
    else:
        axes = [int(a) % r if int(a) < 0 else int(a) for a, r in zip(axes, ranks)]
    if 0 in axes or any(a >= r for a, r in zip(axes, ranks)) or min(ranks) < 2:
        raise Unsupported(f"axes={cfg['axes']!r} for inputs of rank {ranks[0]} and {ranks[1]}")
    layouts = [ctx.input_layout(0), ctx.input_layout(1)]
    if any(layout.feature_order is not None for layout in layouts):
        raise Unsupported("Dot of a flattened channels-first tensor")
    xs = [ctx.input(0), ctx.input(1)]
    if normalize:
        # Keras: x * min(rsqrt(sum(x**2)), 1/epsilon) with epsilon 1e-7.
        xs = [
            f"F.normalize({x}, dim={torch_dim(layout, axis)}, eps=1e-07)"
            for x, layout, axis in zip(xs, layouts, axes)
        ]
    if ranks == [2, 2] and layouts[0] == layouts[1]:
        ctx.output(f"torch.sum({xs[0]} * {xs[1]}, dim=1, keepdim=True)", keras_order(2))
        return
    letters = iter(_LETTERS)
    shared = "c"
    first = ["n"] + [shared if a == axes[0] else next(letters) for a in range(1, ranks[0])]
    second = ["n"] + [shared if a == axes[1] else next(letters) for a in range(1, ranks[1])]
    out = first[:1] + [s for a, s in enumerate(first) if a not in (0, axes[0])]
    out += [s for a, s in enumerate(second) if a not in (0, axes[1])]
    spec = f"{_einsum_subscripts(layouts[0], first)},{_einsum_subscripts(layouts[1], second)}->{''.join(out)}"
    expr = f'torch.einsum("{spec}", {xs[0]}, {xs[1]})'
    if len(out) == 1:
        expr = f"{expr}[:, None]"
    ctx.output(expr, keras_order(max(len(out), 2)))

"""Flatten, Reshape, Permute, RepeatVector.

These layers have Keras-order semantics, but a permute is only needed when the element
order actually differs: axes of size 1 can sit anywhere, and a reshape that keeps whole
groups of axes together can run on a channels-first tensor directly.
"""

from __future__ import annotations

import math

from codegen.ir.layout import Layout, channels_first, flatten_feature_order, keras_order

from ..context import CallContext, Unsupported
from ..registry import KERAS, register


def _flatten_order_ok(ctx: CallContext) -> bool:
    """True when every consumer of this Flatten reaches a Dense through element-wise layers."""
    stack = [ctx.call.outputs[0]]
    while stack:
        tensor = stack.pop()
        if ctx.is_model_output(tensor):
            return False
        for user in ctx.consumers(tensor):
            layer = user.layer
            if layer.subgraph is not None or layer.is_op:
                return False
            if layer.class_name == "Dense" and len(layer.calls) == 1:
                continue
            conv = ctx.converter_of(layer)
            if conv is None or not conv.elementwise or len(user.inputs) != 1:
                return False
            stack.extend(user.outputs)
    return True


def _non_unit(order, shape) -> list[int]:
    """The axes of ``order`` whose size is not known to be 1 (``None`` counts as not 1)."""
    return [a for a in order if shape[a] != 1]


def _same_element_order(layout: Layout, wanted: Layout, shape) -> bool:
    """Whether a tensor in ``layout`` holds its elements in the row-major order of ``wanted``."""
    return _non_unit(layout.perm, shape) == _non_unit(wanted.perm, shape)


@register("Flatten", layout=KERAS)
def flatten(call, ctx: CallContext) -> None:
    data_format = ctx.config.get("data_format") or "channels_last"
    layout = ctx.input_layout()
    rank = layout.rank
    if rank == 1:  # Keras gives a (batch,) tensor a feature axis of size 1
        ctx.output(f"{ctx.input(0)}.unsqueeze(1)", keras_order(2))
        return
    if rank == 2:
        ctx.output(ctx.input(0), layout)
        return
    # Keras flattens channels_first data after moving channels last.
    source = (
        Layout((0, *range(2, rank), 1)) if data_format == "channels_first" else keras_order(rank)
    )
    shape = ctx.input_shape()
    static = all(d is not None for d in shape[1:])
    if _same_element_order(layout, source, shape):
        ctx.output(f"torch.flatten({ctx.input(0)}, 1)", keras_order(2))
    elif static and layout.feature_order is None and _flatten_order_ok(ctx):
        # Flatten in torch's order and let the Dense reorder its kernel rows once.
        torch_shape = layout.torch_shape(shape)[1:]
        keras_axes = [source.perm.index(p) - 1 for p in layout.perm[1:]]
        order = flatten_feature_order(torch_shape, keras_axes)
        ctx.output(f"torch.flatten({ctx.input(0)}, 1)", Layout((0, 1), feature_order=order))
    else:
        ctx.output(f"torch.flatten({ctx.input(0, source)}, 1)", keras_order(2))


# -- Reshape ------------------------------------------------------------------------------


def _groups(in_shape, out_shape) -> list[tuple[list[int], list[int]]] | None:
    """Pair up runs of input and output axes that a row-major reshape maps onto each other.

    Shapes are Keras shapes including the batch axis (which forms its own group); axes of
    size 1 are left out. ``None`` when the pairing cannot be proved (unknown sizes).
    """
    ins = _non_unit(range(1, len(in_shape)), in_shape)
    outs = _non_unit(range(1, len(out_shape)), out_shape)
    groups: list[tuple[list[int], list[int]]] = [([0], [0])]
    if all(in_shape[a] is not None for a in ins) and all(out_shape[a] is not None for a in outs):
        i = j = 0
        while i < len(ins) and j < len(outs):
            gi, go = [ins[i]], [outs[j]]
            pi, po = in_shape[ins[i]], out_shape[outs[j]]
            i, j = i + 1, j + 1
            while pi != po:
                if pi < po and i < len(ins):
                    gi.append(ins[i])
                    pi *= in_shape[ins[i]]
                    i += 1
                elif po < pi and j < len(outs):
                    go.append(outs[j])
                    po *= out_shape[outs[j]]
                    j += 1
                else:
                    return None
            groups.append((gi, go))
        return groups if i == len(ins) and j == len(outs) else None
    # Unknown sizes: equal known leading and trailing axes map one to one; the rest is one group.
    head, tail = [], []
    while ins and outs and in_shape[ins[0]] is not None and in_shape[ins[0]] == out_shape[outs[0]]:
        head.append(([ins.pop(0)], [outs.pop(0)]))
    while (
        ins and outs and in_shape[ins[-1]] is not None and in_shape[ins[-1]] == out_shape[outs[-1]]
    ):
        tail.insert(0, ([ins.pop()], [outs.pop()]))
    if bool(ins) != bool(outs):
        return None
    middle = [(ins, outs)] if ins else []
    return groups + head + middle + tail


def _group_order(layout: Layout, shape, groups, side: int) -> list[int] | None:
    """Groups in the order a tensor in ``layout`` holds them, or None if one is split up."""
    owner = {axis: k for k, group in enumerate(groups) for axis in group[side]}
    seen: list[int] = []
    last_axis: dict[int, int] = {}
    for axis in _non_unit(layout.perm, shape):
        k = owner[axis]
        if seen and seen[-1] == k:
            if axis < last_axis[k]:
                return None
        elif k in seen:
            return None
        else:
            seen.append(k)
        last_axis[k] = axis
    return seen


@register("Reshape", layout=KERAS)
def reshape(call, ctx: CallContext) -> None:
    _ = ctx.config["target_shape"]  # the output shape Keras computed from it says it all
    in_shape, out_shape = ctx.input_shape(), ctx.output_shape()
    layout = ctx.input_layout()
    out_rank = len(out_shape)
    groups = _groups(in_shape, out_shape) if layout.feature_order is None else None
    wants_cf = out_rank >= 3 and ctx.wants_channels_first(ctx.call.outputs[0])

    def fits(src: Layout, dst: Layout) -> bool:
        order = _group_order(src, in_shape, groups, 0)
        return order is not None and order == _group_order(dst, out_shape, groups, 1)

    cf, ko = channels_first(out_rank), keras_order(out_rank)
    if groups is not None and fits(layout, cf) and (wants_cf or not fits(layout, ko)):
        x, out_layout = ctx.input(0), cf
    elif groups is not None and fits(layout, ko):
        x, out_layout = ctx.input(0), ko
    else:
        source = keras_order(layout.rank)
        x = ctx.input(0, source)
        out_layout = cf if wants_cf and groups is not None and fits(source, cf) else ko
    dims = list(out_layout.torch_shape(out_shape)[1:])
    if len(dims) == 1:
        expr = f"torch.flatten({x}, 1)"
    elif None in dims:
        batch = ctx.value(ctx.call.inputs[0])
        expr = f"{x}.reshape({batch}.size(0), {', '.join('-1' if d is None else str(d) for d in dims)})"
    elif dims and math.prod(dims) == 0:
        expr = f"{x}.reshape({ctx.value(ctx.call.inputs[0])}.size(0), {', '.join(map(str, dims))})"
    else:
        expr = f"{x}.reshape({', '.join(map(str, [-1, *dims]))})"
    ctx.output(expr, out_layout)


@register("Permute", layout=KERAS)
def permute(call, ctx: CallContext) -> None:
    dims = tuple(int(d) for d in ctx.config["dims"])
    if sorted(dims) != list(range(1, len(dims) + 1)):
        raise Unsupported(f"dims={dims}")
    order = (0, *dims)  # keras_out = keras_in.permute(order)
    layout = ctx.input_layout()
    if layout.rank == 2:
        ctx.output(ctx.input(0), layout)
        return
    # The input tensor as it is, relabelled: torch axis t holds Keras output axis
    # order.index(layout.perm[t]). Use that when it is a layout the next layers like, or
    # when a single reader permutes it anyway (one permute instead of two).
    relabelled = Layout(tuple(order.index(p) for p in layout.perm))
    out = ctx.call.outputs[0]
    readers = len(ctx.consumers(out)) + sum(t is out for t in ctx.graph.outputs)
    if relabelled in (keras_order(layout.rank), channels_first(layout.rank)) or readers <= 1:
        ctx.output(ctx.input(0), relabelled)
    else:
        ctx.output(ctx.input(0, Layout(order)), keras_order(layout.rank))


@register("RepeatVector", layout=KERAS)
def repeat_vector(call, ctx: CallContext) -> None:
    n = int(ctx.config["n"])
    x = ctx.input(0, keras_order(2))
    ctx.output(f"{x}.unsqueeze(1).repeat(1, {n}, 1)", keras_order(3))

"""Flatten, Reshape, Permute, RepeatVector."""

from __future__ import annotations

from ..convert import CallContext, Unsupported
from ..layout import Layout, keras_order
from ..registry import KERAS, register


def _flatten_order_ok(ctx: CallContext) -> bool:
    """True when every consumer of this Flatten reaches a Dense through element-wise layers."""
    from .. import registry

    builder = ctx.builder
    users = builder.graph.consumers()
    outputs = {id(t) for t in builder.graph.outputs}
    stack = [ctx.call.outputs[0]]
    while stack:
        tensor = stack.pop()
        if id(tensor) in outputs:
            return False
        for user in users.get(id(tensor), []):
            layer = user.layer
            if layer.subgraph is not None or layer.is_op:
                return False
            if layer.class_name == "Dense" and len(layer.calls) == 1:
                continue
            conv = registry.lookup(layer.class_name)
            if conv is None or not conv.elementwise or len(user.inputs) != 1:
                return False
            stack.extend(user.outputs)
    return True


@register("Flatten", layout=KERAS)
def flatten(call, ctx: CallContext) -> None:
    from ..layout import flatten_feature_order

    data_format = ctx.config.get("data_format") or "channels_last"
    layout = ctx.input_layout()
    rank = layout.rank
    if rank <= 2:
        ctx.output(ctx.input(0), keras_order(2) if rank == 2 else layout)
        return
    # Keras flattens channels_first data after moving channels last.
    source = Layout((0, *range(2, rank), 1)) if data_format == "channels_first" else keras_order(rank)
    shape = ctx.input_shape()
    static = all(d is not None for d in shape[1:])
    if layout == source:
        ctx.output(f"torch.flatten({ctx.input(0)}, 1)", keras_order(2))
    elif static and layout.feature_order is None and _flatten_order_ok(ctx):
        # Flatten in torch's order and let the Dense reorder its kernel rows once.
        torch_shape = layout.torch_shape(shape)[1:]
        keras_axes = [source.perm.index(p) - 1 for p in layout.perm[1:]]
        order = flatten_feature_order(torch_shape, keras_axes)
        ctx.output(f"torch.flatten({ctx.input(0)}, 1)", Layout((0, 1), feature_order=order))
    else:
        ctx.output(f"torch.flatten({ctx.input(0, source)}, 1)", keras_order(2))


@register("Reshape", layout=KERAS)
def reshape(call, ctx: CallContext) -> None:
    target = tuple(int(d) for d in ctx.config["target_shape"])
    rank = ctx.input_layout().rank
    x = ctx.input(0, keras_order(rank))
    if -1 in target:
        ctx.output(f"{x}.reshape({x}.size(0), {', '.join(map(str, target))})", keras_order(len(target) + 1))
    else:
        ctx.output(f"{x}.reshape(-1, {', '.join(map(str, target))})", keras_order(len(target) + 1))


@register("Permute", layout=KERAS)
def permute(call, ctx: CallContext) -> None:
    dims = tuple(int(d) for d in ctx.config["dims"])
    if sorted(dims) != list(range(1, len(dims) + 1)):
        raise Unsupported(f"dims={dims}")
    # keras_out = keras_in.permute(0, *dims): read the input in that order, output in Keras order.
    x = ctx.input(0, Layout((0, *dims)))
    ctx.output(x, keras_order(len(dims) + 1))


@register("RepeatVector", layout=KERAS)
def repeat_vector(call, ctx: CallContext) -> None:
    n = int(ctx.config["n"])
    x = ctx.input(0, keras_order(2))
    ctx.output(f"{x}.unsqueeze(1).repeat(1, {n}, 1)", keras_order(3))

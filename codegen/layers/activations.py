"""Activation functions (the ``activation=`` argument of every layer) and activation layers."""

from __future__ import annotations

from ..convert import CallContext, Unsupported
from ..layout import Layout
from ..registry import register


def _dim(layout: Layout, keras_axis: int = -1) -> int:
    axis = layout.torch_axis(keras_axis)
    return -1 if axis == layout.rank - 1 else axis


# Keras 3 activation name -> torch expression; ``{x}`` is the input, ``{dim}`` the torch axis
# of the last Keras axis. Default arguments follow Keras (leaky_relu's slope is 0.2 there).
ACTIVATIONS: dict[str, str] = {
    "linear": "{x}",
    "relu": "torch.relu({x})",
    "relu6": "F.relu6({x})",
    "sigmoid": "torch.sigmoid({x})",
    "hard_sigmoid": "F.hardsigmoid({x})",  # Keras 3: relu6(x + 3) / 6, as torch
    "tanh": "torch.tanh({x})",
    "softmax": "torch.softmax({x}, dim={dim})",
    "log_softmax": "torch.log_softmax({x}, dim={dim})",
    "softplus": "F.softplus({x})",
    "softsign": "F.softsign({x})",
    "elu": "F.elu({x})",
    "selu": "F.selu({x})",
    "celu": "F.celu({x})",
    "gelu": "F.gelu({x})",  # Keras's string "gelu" is the exact (erf) form
    "silu": "F.silu({x})",
    "swish": "F.silu({x})",
    "hard_silu": "F.hardswish({x})",
    "hard_swish": "F.hardswish({x})",
    "leaky_relu": "F.leaky_relu({x}, 0.2)",
    "mish": "F.mish({x})",
    "exponential": "torch.exp({x})",
    "log_sigmoid": "F.logsigmoid({x})",
    "hard_tanh": "F.hardtanh({x})",
    "tanh_shrink": "F.tanhshrink({x})",
    "soft_shrink": "F.softshrink({x}, 0.5)",
    "hard_shrink": "F.hardshrink({x}, 0.5)",
    "squareplus": "({x} + torch.sqrt({x} * {x} + 4.0)) / 2",
    "glu": "F.glu({x}, dim={dim})",
}

# Activations whose result at a position depends on other positions of the last axis.
_AXIS_DEPENDENT = {"softmax", "log_softmax", "glu"}


def activation_name(value) -> str:
    """The Keras activation name from a config value (a string or a serialized function)."""
    if value is None:
        return "linear"
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        inner = value.get("config")
        if isinstance(inner, str):
            return inner
        if isinstance(inner, dict) and isinstance(inner.get("name"), str):
            return inner["name"]
        name = value.get("registered_name") or value.get("class_name")
        if isinstance(name, str):
            return name
    raise Unsupported(f"activation {value!r} is not a built-in Keras activation")


def apply_activation(name, x: str, layout: Layout) -> str:
    """Wrap expression ``x`` in the torch form of Keras activation ``name``."""
    name = activation_name(name)
    template = ACTIVATIONS.get(name)
    if template is None:
        raise Unsupported(f"activation {name!r} is not supported")
    if name in _AXIS_DEPENDENT and layout.feature_order is not None and name == "glu":
        raise Unsupported("glu on a flattened channels-first tensor")
    return template.format(x=x, dim=_dim(layout) if "{dim}" in template else "")


def with_activation(ctx: CallContext, expr: str, layout: Layout) -> str:
    """Apply the layer's ``activation=`` config option to ``expr``."""
    return apply_activation(ctx.config.get("activation"), expr, layout)


@register("Activation", elementwise=True)
def activation(call, ctx: CallContext) -> None:
    x = ctx.input(0)
    ctx.output(apply_activation(ctx.config["activation"], x, ctx.input_layout()))


def keras_relu_expr(ctx: CallContext, x: str, slope: float, max_value, threshold: float) -> str:
    if max_value is not None and max_value < 0:
        raise Unsupported(f"max_value={max_value} (must be >= 0)")
    if threshold == 0 and slope == 0:
        if max_value is None:
            return f"torch.relu({x})"
        if max_value == 6:
            return f"F.relu6({x})"
        return f"torch.clamp({x}, 0.0, {float(max_value)!r})"
    if threshold == 0 and max_value is None:
        return f"F.leaky_relu({x}, {float(slope)!r})"
    ctx.helper("keras_relu")
    return f"keras_relu({x}, {float(slope)!r}, {None if max_value is None else float(max_value)!r}, {float(threshold)!r})"


@register("ReLU", elementwise=True)
def relu(call, ctx: CallContext) -> None:
    cfg = ctx.config
    slope = cfg.get("negative_slope") or 0.0
    ctx.output(keras_relu_expr(ctx, ctx.input(0), slope, cfg.get("max_value"), cfg.get("threshold") or 0.0))


@register("LeakyReLU", elementwise=True)
def leaky_relu(call, ctx: CallContext) -> None:
    cfg = ctx.config
    slope = cfg.get("negative_slope", cfg.get("alpha", 0.3))
    cfg.get("alpha")
    ctx.output(f"F.leaky_relu({ctx.input(0)}, {float(slope)!r})")


@register("ELU", elementwise=True)
def elu(call, ctx: CallContext) -> None:
    alpha = float(ctx.config.get("alpha", 1.0))
    x = ctx.input(0)
    ctx.output(f"F.elu({x})" if alpha == 1.0 else f"F.elu({x}, {alpha!r})")


@register("Softmax", elementwise=True)
def softmax(call, ctx: CallContext) -> None:
    axis = ctx.config.get("axis", -1)
    layout = ctx.input_layout()
    x = ctx.input(0)
    if isinstance(axis, (list, tuple)):
        if len(axis) == 1:
            axis = axis[0]
        else:
            dims = tuple(sorted(layout.torch_axis(a) for a in axis))
            if layout.feature_order is not None:
                raise Unsupported("softmax over several axes of a flattened tensor")
            ctx.output(f"torch.exp({x} - torch.logsumexp({x}, dim={dims}, keepdim=True))")
            return
    if layout.feature_order is not None and axis % layout.rank != layout.rank - 1:
        raise Unsupported("softmax over the batch axis")
    ctx.output(f"torch.softmax({x}, dim={_dim(layout, axis)})")


@register("PReLU")
def prelu(call, ctx: CallContext) -> None:
    layout = ctx.input_layout()
    if layout.feature_order is not None:
        x = ctx.input(0)
    else:
        x = ctx.input(0)
    ctx.config.get("shared_axes")
    alpha = ctx.keras_weight("alpha")  # Keras shape: input shape without batch, 1 on shared axes
    rank = layout.rank
    if layout.feature_order is not None:
        alpha = alpha.reshape(-1)[list(layout.feature_order)] if alpha.size > 1 else alpha
        torch_alpha = alpha.reshape(1, -1)
    else:
        full = alpha.reshape(1, *alpha.shape)
        torch_alpha = full.transpose(layout.perm)
    channel_only = all(d == 1 for i, d in enumerate(torch_alpha.shape) if i != 1)
    if rank >= 2 and channel_only:
        n = torch_alpha.shape[1]
        attr = ctx.module(f"nn.PReLU({n})" if n > 1 else "nn.PReLU()")
        ctx.weight("weight", torch_alpha.reshape(-1), "alpha", "flatten")
        ctx.output(f"{attr}({x})", layout)
        return
    ctx.helper("PReLU")
    attr = ctx.module(f"PReLU({tuple(torch_alpha.shape[1:])})")
    ctx.weight("alpha", torch_alpha[0], "alpha", "permute to torch layout")
    ctx.output(f"{attr}({x})", layout)

"""Activation functions (the ``activation=`` argument of every layer) and activation layers."""

from __future__ import annotations

from codegen.ir.layout import Layout, keras_order

from ..context import CallContext, Unsupported
from ..registry import register


def _dim(layout: Layout, keras_axis: int = -1) -> int:
    axis = layout.torch_axis(keras_axis)
    return -1 if axis == layout.rank - 1 else axis


# Keras 3 activation name -> torch expression; ``{x}`` is the input (used once, since it may
# be a module call), ``{dim}`` the torch axis of the last Keras axis. Default arguments follow
# Keras (leaky_relu's slope is 0.2 there). Checked against Keras 3.15's TensorFlow backend.
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
    "sparse_sigmoid": "torch.clamp(({x} + 1.0) * 0.5, 0.0, 1.0)",
    "glu": "F.glu({x}, dim={dim})",
    # Helpers (templates/helpers/<name>.py.j2): their formula needs the input more than once.
    "squareplus": "squareplus({x})",
    "sparse_plus": "sparse_plus({x})",
    "sparsemax": "sparsemax({x}, dim={dim})",
}
_HELPERS = {"squareplus", "sparse_plus", "sparsemax"}
# Activations of older Keras versions that Keras 3 computes differently: the file reader
# renames them when reading a file Keras 2 wrote (codegen/legacy_config.py).
KERAS2_ACTIVATIONS = {"hard_sigmoid_keras2": "torch.clamp({x} * 0.2 + 0.5, 0.0, 1.0)"}
# KerasHub functions used as activations, named so by the reader that rewrites KerasHub
# blocks as core layers (codegen/read/keras_hub.py): BERT's and GPT-2's gelu_approximate is
# keras.activations.gelu(approximate=True).
KERAS_HUB_ACTIVATIONS = {"gelu_approximate": 'F.gelu({x}, approximate="tanh")'}

# Activations whose result at a position depends on the order of the other positions of the
# last axis (softmax-like ones are permutation-equivariant, so a reordered feature axis is fine).
_ORDER_DEPENDENT = {"glu"}

# Activation layers that Keras accepts as ``activation=`` (serialized as layer configs).
_LAYER_ACTIVATIONS = {"ReLU", "LeakyReLU", "ELU", "Softmax", "Activation"}
_LAYER_KEYS = {"name", "trainable", "dtype", "autocast"}


def activation_name(value) -> str:
    """The Keras activation name from a config value (a string or a serialized function)."""
    if value is None:
        return "linear"
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        module = value.get("module") or ""
        inner = value.get("config")
        registered = value.get("registered_name")
        builtin = module.startswith("keras") and (not registered or ">" not in str(registered))
        if builtin and value.get("class_name") == "function" and isinstance(inner, str):
            return inner
    raise Unsupported(f"activation {value!r} is not a built-in Keras activation")


def activation_name_or_none(value) -> str | None:
    """Like :func:`activation_name`, but ``None`` for values it cannot name."""
    try:
        return activation_name(value)
    except Unsupported:
        return None


def apply_activation(name, x: str, layout: Layout, ctx: CallContext | None = None) -> str:
    """Wrap expression ``x`` in the torch form of Keras activation ``name``.

    ``name`` is a config value: an activation name, a serialized function or a serialized
    activation layer (ReLU, LeakyReLU, ELU, Softmax). ``ctx`` is needed for activations
    implemented by helpers.
    """
    if isinstance(name, dict) and name.get("module") == "keras.layers":
        return _layer_activation(name, x, layout, ctx)
    name = activation_name(name)
    template = (
        ACTIVATIONS.get(name) or KERAS2_ACTIVATIONS.get(name) or KERAS_HUB_ACTIVATIONS.get(name)
    )
    if template is None:
        raise Unsupported(f"activation {name!r} is not supported")
    if name in _ORDER_DEPENDENT and layout.feature_order is not None:
        raise Unsupported(f"activation {name!r} on a flattened channels-first tensor")
    if name in _HELPERS:
        if ctx is None:
            raise Unsupported(f"activation {name!r} here")
        ctx.helper(name)
    return template.format(x=x, dim=_dim(layout) if "{dim}" in template else "")


def with_activation(ctx: CallContext, expr: str, layout: Layout) -> str:
    """Apply the layer's ``activation=`` config option to ``expr``."""
    return apply_activation(ctx.config.get("activation"), expr, layout, ctx)


def _layer_activation(value: dict, x: str, layout: Layout, ctx: CallContext | None) -> str:
    """An activation layer given as ``activation=`` (e.g. ``Dense(activation=LeakyReLU(0.1))``)."""
    kind = value.get("class_name")
    cfg = value.get("config")
    if kind not in _LAYER_ACTIVATIONS or not isinstance(cfg, dict) or value.get("registered_name"):
        raise Unsupported(f"activation layer {kind!r} as activation=")
    known = {
        "ReLU": {"max_value", "negative_slope", "threshold"},
        "LeakyReLU": {"negative_slope", "alpha"},
        "ELU": {"alpha"},
        "Softmax": {"axis"},
        "Activation": {"activation"},
    }[kind]
    extra = sorted(k for k in cfg if k not in known and k not in _LAYER_KEYS)
    if extra:
        raise Unsupported(f"activation layer {kind} with option(s) {extra}")
    if kind == "ReLU":
        if ctx is None:
            raise Unsupported("ReLU layer as activation here")
        return keras_relu_expr(
            ctx,
            x,
            cfg.get("negative_slope") or 0.0,
            cfg.get("max_value"),
            cfg.get("threshold") or 0.0,
        )
    if kind == "LeakyReLU":
        return f"F.leaky_relu({x}, {float(cfg.get('negative_slope', cfg.get('alpha', 0.3)))!r})"
    if kind == "ELU":
        return _elu_expr(x, cfg.get("alpha", 1.0))
    if kind == "Softmax":
        axis = cfg.get("axis", -1)
        axes = list(axis) if isinstance(axis, (list, tuple)) else [axis]
        if len(axes) != 1:
            raise Unsupported("Softmax layer over several axes as activation")
        if axes[0] % layout.rank != layout.rank - 1 and layout.feature_order is not None:
            raise Unsupported("Softmax on a flattened channels-first tensor")
        return f"torch.softmax({x}, dim={_dim(layout, axes[0])})"
    return apply_activation(cfg.get("activation"), x, layout, ctx)


def _elu_expr(x: str, alpha) -> str:
    alpha = float(alpha)
    return f"F.elu({x})" if alpha == 1.0 else f"F.elu({x}, {alpha!r})"


@register("Activation", elementwise=True)
def activation(call, ctx: CallContext) -> None:
    if "activation" not in ctx.config:
        raise Unsupported("activation that Keras cannot serialize (a lambda or custom function)")
    x = ctx.input(0)
    if activation_name_or_none(ctx.config["activation"]) == "linear":
        ctx.output(f"{ctx.module('nn.Identity()')}({x})")
        return
    ctx.output(apply_activation(ctx.config["activation"], x, ctx.input_layout(), ctx))


def keras_relu_expr(ctx: CallContext, x: str, slope: float, max_value, threshold: float) -> str:
    """Keras ``relu(x, negative_slope, max_value, threshold)`` (any combination)."""
    slope, threshold = float(slope), float(threshold)
    if max_value is not None:
        max_value = float(max_value)
        if max_value < 0:
            raise Unsupported(f"max_value={max_value} (must be >= 0)")
    if threshold == 0 and slope == 0:
        if max_value is None:
            return f"torch.relu({x})"
        if max_value == 6:
            return f"F.relu6({x})"
        return f"torch.clamp({x}, 0.0, {max_value!r})"
    if threshold == 0 and max_value is None:
        return f"F.leaky_relu({x}, {slope!r})"
    ctx.helper("keras_relu")
    return f"keras_relu({x}, {slope!r}, {max_value!r}, {threshold!r})"


@register("ReLU", elementwise=True)
def relu(call, ctx: CallContext) -> None:
    cfg = ctx.config
    slope = cfg.get("negative_slope") or 0.0
    ctx.output(
        keras_relu_expr(ctx, ctx.input(0), slope, cfg.get("max_value"), cfg.get("threshold") or 0.0)
    )


@register("LeakyReLU", elementwise=True)
def leaky_relu(call, ctx: CallContext) -> None:
    cfg = ctx.config
    slope = cfg.get("negative_slope", cfg.get("alpha", 0.3))
    ctx.output(f"F.leaky_relu({ctx.input(0)}, {float(slope)!r})")


@register("ELU", elementwise=True)
def elu(call, ctx: CallContext) -> None:
    ctx.output(_elu_expr(ctx.input(0), ctx.config.get("alpha", 1.0)))


@register("Softmax", elementwise=True)
def softmax(call, ctx: CallContext) -> None:
    axis = ctx.config.get("axis", -1)
    layout = ctx.input_layout()
    rank = layout.rank
    axes = sorted({a % rank for a in (axis if isinstance(axis, (list, tuple)) else [axis])})
    if ctx.n_inputs > 1:
        _masked_softmax(ctx, axes)
        return
    x = ctx.input(0)
    # Softmax is permutation-equivariant along its axes, so a reordered feature axis is fine.
    if len(axes) == 1:
        ctx.output(f"torch.softmax({x}, dim={_dim(layout, axes[0])})")
        return
    dims = tuple(sorted(layout.torch_axis(a) for a in axes))
    ctx.output(f"torch.exp({x} - torch.logsumexp({x}, dim={dims}, keepdim=True))")


def _masked_softmax(ctx: CallContext, axes: list[int]) -> None:
    """``Softmax()(x, mask)``: masked positions get -1e9 before and 0 after (as Keras)."""
    layout = ctx.input_layout(0)
    rank = layout.rank
    mask_rank = len(ctx.input_shape(1))
    if layout.feature_order is not None or ctx.input_layout(1).feature_order is not None:
        raise Unsupported("masked Softmax on a flattened channels-first tensor")
    if mask_rank != rank:
        layout = keras_order(rank)  # the mask broadcasts from the right in Keras order
    x = ctx.input(0, layout)
    m = ctx.input(1, layout if mask_rank == rank else keras_order(mask_rank))
    if ctx.call.inputs[1].dtype != "bool":
        m = f"({m} > 0.5)"
    dims = [layout.torch_axis(a) for a in axes]
    if len(dims) == 1:
        soft = f"torch.softmax(torch.where({m}, {x}, -1e9), dim={_dim(layout, axes[0])})"
    else:
        logits = f"torch.where({m}, {x}, -1e9)"
        soft = f"torch.exp({logits} - torch.logsumexp({logits}, dim={tuple(sorted(dims))}, keepdim=True))"
    ctx.output(f"torch.where({m}, {soft}, 0.0)", layout)


@register("PReLU", elementwise=True)
def prelu(call, ctx: CallContext) -> None:
    layout = ctx.input_layout()
    x = ctx.input(0)
    ctx.config.get("shared_axes")  # visible in the shape of alpha (1 on shared axes)
    alpha = ctx.keras_weight("alpha")  # Keras shape: input shape without batch
    rank = layout.rank
    if layout.feature_order is not None:
        alpha = alpha.reshape(-1)[list(layout.feature_order)] if alpha.size > 1 else alpha
        torch_alpha = alpha.reshape(1, -1)
    else:
        torch_alpha = alpha.reshape(1, *alpha.shape).transpose(layout.perm)
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

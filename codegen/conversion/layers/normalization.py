"""BatchNormalization, LayerNormalization, RMSNormalization, GroupNormalization, UnitNormalization.

None of them asks for a layout: each remaps its Keras ``axis`` into the torch tensor as it
is and, when torch wants the axis elsewhere, moves it there and back with ``movedim``.
"""

from __future__ import annotations

import numpy as np

from codegen.errors import ConversionError
from codegen.ir.layout import Layout

from ..context import CallContext, Unsupported
from ..registry import AGNOSTIC, register

_BATCH_NORM_NOTE = (
    "BatchNorm in training mode: torch updates running_var with the unbiased batch\n"
    "    variance (n/(n-1) times Keras's biased one); outputs are the same."
)

_FROZEN_NOTE = (
    "BatchNorm(frozen=True): a layer frozen in Keras (trainable=False), which uses its\n"
    "    moving statistics in training mode too."
)


def _axes(value, rank: int) -> list[int]:
    axes = value if isinstance(value, (list, tuple)) else [value]
    return sorted({int(a) % rank for a in axes})


def _note(ctx: CallContext, text: str) -> None:
    ctx.note(text)


def _move(x: str, dims: list[int], rank: int, target: str = "last") -> tuple[str, str]:
    """(prefix expression, suffix) moving torch ``dims`` to the end (or to dim 1) and back."""
    k = len(dims)
    goal = list(range(rank - k, rank)) if target == "last" else [1]
    if dims == goal:
        return x, ""
    if target == "last":
        dst = tuple(range(-k, 0))
        src, dst_text = (dims[0], -1) if k == 1 else (tuple(dims), dst)
        back = f".movedim({dst_text}, {src})"
        return f"{x}.movedim({src}, {dst_text})", back
    return f"{x}.movedim({dims[0]}, 1)", f".movedim(1, {dims[0]})"


def _torch_param(
    array: np.ndarray, keras_shape: list[int], layout: Layout, dims: list[int]
) -> np.ndarray:
    """A Keras parameter broadcast to ``keras_shape`` (batch axis 1) -> its torch ``dims``."""
    full = np.asarray(array).reshape(keras_shape).transpose(layout.perm)
    return full.reshape([full.shape[d] for d in dims])


def _shape_arg(shape) -> str:
    shape = tuple(int(d) for d in shape)
    return str(shape[0]) if len(shape) == 1 else repr(shape)


# -- BatchNormalization ---------------------------------------------------------------------
@register("BatchNormalization", layout=AGNOSTIC, elementwise=True)
def batch_norm(call, ctx: CallContext) -> None:
    cfg = ctx.config
    layout = ctx.input_layout()
    rank = layout.rank
    axes = _axes(cfg.get("axis", -1), rank)
    if len(axes) != 1:
        raise Unsupported(f"axis={cfg['axis']!r} (normalizing over several axes)")
    if cfg.get("renorm"):
        raise Unsupported("renorm=True (batch renormalization)")
    cfg.get("renorm_clipping"), cfg.get("renorm_momentum")  # only used with renorm
    if cfg.get("virtual_batch_size"):
        raise Unsupported(f"virtual_batch_size={cfg['virtual_batch_size']!r}")
    if cfg.get("adjustment") is not None:
        raise Unsupported("adjustment")
    cfg.get("synchronized")  # multi-device statistics only; one device computes the same
    cfg.get("fused")  # an implementation choice of old Keras
    if ctx.n_inputs > 1:
        raise Unsupported("BatchNormalization called with a mask")
    center, scale = bool(cfg.get("center", True)), bool(cfg.get("scale", True))
    epsilon = float(cfg.get("epsilon", 1e-3))
    momentum = float(cfg.get("momentum", 0.99))
    frozen = cfg.get("trainable", True) is False  # Keras then always uses the moving statistics
    if rank < 2 or rank > 5:
        raise Unsupported(f"rank-{rank} input")
    torch_axis = layout.torch_axis(axes[0])
    if torch_axis == 0:
        raise Unsupported("normalizing over the batch axis")

    def param(name: str) -> np.ndarray:
        value = ctx.keras_weight(name)
        if layout.feature_order is not None:
            value = value[list(layout.feature_order)]
        return value

    moving_mean = param("moving_mean")
    channels = moving_mean.shape[0]
    n = {2: 1, 3: 1, 4: 2, 5: 3}[rank]
    args = f"{channels}, eps={epsilon!r}, momentum={round(1.0 - momentum, 10)!r}"
    plain = center == scale and not frozen
    if plain:
        attr = ctx.module(f"nn.BatchNorm{n}d({args}{'' if scale else ', affine=False'})")
        _note(ctx, _BATCH_NORM_NOTE)
    else:  # torch's affine flag covers both or neither; nn.BatchNorm*d cannot be frozen
        ctx.helper("BatchNorm", scale=not scale, center=not center, frozen=frozen)
        flags = "".join(
            f", {name}={value}"
            for name, value, default in (
                ("scale", scale, True),
                ("center", center, True),
                ("frozen", frozen, False),
            )
            if value != default
        )
        attr = ctx.module(f"BatchNorm({args}{flags})")
        _note(ctx, _FROZEN_NOTE if frozen else _BATCH_NORM_NOTE)
    how = (
        "reordered like the flattened features" if layout.feature_order is not None else "identity"
    )
    if scale:
        ctx.weight("weight", param("gamma"), "gamma", how)
    if center:
        ctx.weight("bias", param("beta"), "beta", how)
    ctx.weight("running_mean", moving_mean, "moving_mean", how)
    ctx.weight("running_var", param("moving_variance"), "moving_variance", how)
    if plain:
        ctx.weight("num_batches_tracked", np.array(0, dtype=np.int64), "", "torch counter")
    x, back = _move(ctx.input(0), [torch_axis], rank, target="channel")
    expr = f"{attr}({x})"
    ctx.output(f"{expr}{back}", layout)


# -- LayerNormalization / RMSNormalization ----------------------------------------------------
def _norm_axes(ctx: CallContext, default=-1) -> tuple[list[int], list[int], list[int]]:
    """(Keras axes as the layer keeps them, positive Keras axes, torch dims), sorted."""
    layout = ctx.input_layout()
    rank = layout.rank
    value = ctx.config.get("axis", default)
    raw = sorted(int(a) for a in (value if isinstance(value, (list, tuple)) else [value]))
    positive = sorted({a % rank for a in raw})
    if 0 in positive:
        raise Unsupported(f"axis={value!r} (normalizing over the batch axis)")
    dims = sorted(layout.torch_axis(a) for a in positive)
    if layout.feature_order is not None and positive != [rank - 1]:
        raise Unsupported(f"axis={value!r} on a flattened channels-first tensor")
    return raw, positive, dims


def _keras_broadcast(raw: list[int], shape) -> list[int]:
    """The shape Keras reshapes gamma/beta to (``broadcast_shape`` in ops.layer_normalization)."""
    out = [1] * len(shape)
    for axis in raw:
        out[axis] = shape[axis]
    return out


def keras_epsilon() -> float:
    """keras.config.epsilon() of the Keras that computes the reference (1e-7 by default)."""
    from codegen.read.keras_import import keras_setting

    return float(keras_setting("epsilon", 1e-7))


def _epsilon(ctx: CallContext, default: float) -> float:
    """The layer's epsilon; Keras uses its global epsilon when it is None."""
    value = ctx.config.get("epsilon", default)
    return keras_epsilon() if value is None else float(value)


@register("LayerNormalization", layout=AGNOSTIC, elementwise=True)
def layer_norm(call, ctx: CallContext) -> None:
    cfg = ctx.config
    layout = ctx.input_layout()
    rank = layout.rank
    raw, _, dims = _norm_axes(ctx)
    epsilon = _epsilon(ctx, 1e-3)
    center, scale = bool(cfg.get("center", True)), bool(cfg.get("scale", True))
    rms_scaling = bool(cfg.get("rms_scaling", False))
    if rms_scaling:  # Keras then has gamma only: x * rsqrt(var(x) + eps) * gamma, no centering
        center, scale = False, True
    keras_shape = ctx.input_shape()
    torch_shape = layout.torch_shape(keras_shape)
    norm_shape = [torch_shape[d] for d in dims]

    def param(name: str) -> np.ndarray:
        value = ctx.keras_weight(name)
        if layout.feature_order is not None:
            return value.reshape(-1)[list(layout.feature_order)]
        return _torch_param(value, _keras_broadcast(raw, keras_shape), layout, dims)

    x, back = _move(ctx.input(0), dims, rank)
    k = len(dims)
    if any(d is None for d in norm_shape):
        if center or scale:
            raise ConversionError("internal: LayerNormalization weights on an unknown dimension")
        ctx.output(f"F.layer_norm({x}, {x}.shape[-{k}:], eps={epsilon!r}){back}", layout)
        return
    shape = _shape_arg(norm_shape)
    if rms_scaling:
        ctx.helper("LayerNormRMSScaling")
        attr = ctx.module(f"LayerNormRMSScaling({shape}, eps={epsilon!r})")
    elif center and not scale:
        ctx.helper("LayerNormOffset")
        attr = ctx.module(f"LayerNormOffset({shape}, eps={epsilon!r})")
    elif scale and not center:
        attr = ctx.module(f"nn.LayerNorm({shape}, eps={epsilon!r}, bias=False)")
    elif scale:
        attr = ctx.module(f"nn.LayerNorm({shape}, eps={epsilon!r})")
    else:
        attr = ctx.module(f"nn.LayerNorm({shape}, eps={epsilon!r}, elementwise_affine=False)")
    how = "reshape like Keras, to torch axis order"
    if scale:
        ctx.weight("weight", param("gamma"), "gamma", how)
    if center:
        ctx.weight("bias", param("beta"), "beta", how)
    ctx.output(f"{attr}({x}){back}", layout)


@register("RMSNormalization", layout=AGNOSTIC, elementwise=True)
def rms_norm(call, ctx: CallContext) -> None:
    layout = ctx.input_layout()
    rank = layout.rank
    _, positive, dims = _norm_axes(ctx)
    epsilon = _epsilon(ctx, 1e-6)
    scale = ctx.keras_weight("scale")
    keras_shape = ctx.input_shape()
    # Keras multiplies by ``scale`` with plain broadcasting (from the right, in Keras order).
    broadcast = [1] * (rank - scale.ndim) + list(scale.shape)
    if any(n != 1 and axis not in positive for axis, n in enumerate(broadcast)):
        raise Unsupported(
            f"axis={ctx.config['axis']!r}: Keras broadcasts the scale onto other axes"
        )
    if layout.feature_order is not None:
        weight = scale.reshape(-1)[list(layout.feature_order)]
    else:
        weight = np.broadcast_to(
            scale.reshape(broadcast),
            [1] + [keras_shape[a] if a in positive else 1 for a in range(1, rank)],
        )
        weight = _torch_param(weight, weight.shape, layout, dims)
    torch_shape = layout.torch_shape(keras_shape)
    shape = _shape_arg([torch_shape[d] for d in dims])
    x, back = _move(ctx.input(0), dims, rank)
    attr = ctx.module(f"nn.RMSNorm({shape}, eps={epsilon!r})")
    ctx.weight(
        "weight", np.ascontiguousarray(weight), "scale", "broadcast like Keras, to torch axis order"
    )
    ctx.output(f"{attr}({x}){back}", layout)


# -- GroupNormalization / UnitNormalization -----------------------------------------------------
@register("GroupNormalization", layout=AGNOSTIC)
def group_norm(call, ctx: CallContext) -> None:
    cfg = ctx.config
    layout = ctx.input_layout()
    rank = layout.rank
    axis = cfg.get("axis", -1)
    if isinstance(axis, (list, tuple)):
        if len(axis) != 1:
            raise Unsupported(f"axis={axis!r}")
        axis = axis[0]
    axis = int(axis) % rank
    if axis == 0:
        raise Unsupported("groups along the batch axis")
    if layout.feature_order is not None:
        raise Unsupported("GroupNormalization of a flattened channels-first tensor")
    channels = ctx.input_shape()[axis]
    groups = int(cfg.get("groups", 32))
    if groups == -1:
        groups = channels
    epsilon = _epsilon(ctx, 1e-3)
    center, scale = bool(cfg.get("center", True)), bool(cfg.get("scale", True))
    x, back = _move(ctx.input(0), [layout.torch_axis(axis)], rank, target="channel")
    if center == scale:
        affine = "" if scale else ", affine=False"
        attr = ctx.module(f"nn.GroupNorm({groups}, {channels}, eps={epsilon!r}{affine})")
    else:
        ctx.helper("GroupNorm")
        attr = ctx.module(
            f"GroupNorm({groups}, {channels}, eps={epsilon!r}, scale={scale}, center={center})"
        )
    if scale:
        ctx.weight("weight", ctx.keras_weight("gamma"), "gamma")
    if center:
        ctx.weight("bias", ctx.keras_weight("beta"), "beta")
    ctx.output(f"{attr}({x}){back}", layout)


@register("UnitNormalization", layout=AGNOSTIC, elementwise=True)
def unit_norm(call, ctx: CallContext) -> None:
    layout = ctx.input_layout()
    value = ctx.config.get("axis", -1)
    axes = _axes(value, layout.rank)
    # Every axis keeps the features' order meaningless (a sum over them, or per feature).
    dims = sorted(layout.torch_axis(a) for a in axes)
    dim = dims[0] if len(dims) == 1 else tuple(dims)
    if dim == layout.rank - 1:
        dim = -1
    # Keras: x * min(rsqrt(sum(x**2)), 1e12) == x / max(norm(x), 1e-12)
    ctx.output(f"F.normalize({ctx.input(0)}, dim={dim}, eps=1e-12)", layout)

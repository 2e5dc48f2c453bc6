"""BatchNormalization, LayerNormalization, GroupNormalization, UnitNormalization."""

from __future__ import annotations

import numpy as np

from ..convert import CallContext, Unsupported
from ..registry import AGNOSTIC, register


def _axes(value, rank: int) -> list[int]:
    axes = value if isinstance(value, (list, tuple)) else [value]
    return sorted(int(a) % rank for a in axes)


@register("BatchNormalization", layout=AGNOSTIC)
def batch_norm(call, ctx: CallContext) -> None:
    cfg = ctx.config
    layout = ctx.input_layout()
    rank = layout.rank
    axes = _axes(cfg.get("axis", -1), rank)
    if len(axes) != 1:
        raise Unsupported(f"axis={cfg['axis']!r} (normalizing over several axes)")
    if cfg.get("renorm"):
        raise Unsupported("renorm=True")
    cfg.get("renorm_clipping"), cfg.get("renorm_momentum")  # only used with renorm
    if cfg.get("virtual_batch_size"):
        raise Unsupported("virtual_batch_size")
    cfg.get("synchronized")  # multi-device statistics only; one device computes the same
    center, scale = bool(cfg.get("center", True)), bool(cfg.get("scale", True))
    epsilon = float(cfg.get("epsilon", 1e-3))
    momentum = float(cfg.get("momentum", 0.99))
    if layout.feature_order is not None:
        raise Unsupported("BatchNormalization of a flattened channels-first tensor")
    torch_axis = layout.torch_axis(axes[0])
    if rank > 5:
        raise Unsupported(f"rank-{rank} input")
    moving_mean = ctx.keras_weight("moving_mean")
    channels = moving_mean.shape[0]
    n = {2: 1, 3: 1, 4: 2, 5: 3}[rank]
    affine = center or scale
    args = f"{channels}, eps={epsilon!r}, momentum={round(1.0 - momentum, 10)!r}"
    if not affine:
        args += ", affine=False"
    attr = ctx.module(f"nn.BatchNorm{n}d({args})")
    if affine:
        gamma = ctx.keras_weight("gamma") if scale else np.ones(channels, np.float32)
        beta = ctx.keras_weight("beta") if center else np.zeros(channels, np.float32)
        ctx.weight("weight", gamma, "gamma" if scale else "", "identity" if scale else "ones (scale=False)")
        ctx.weight("bias", beta, "beta" if center else "", "identity" if center else "zeros (center=False)")
    ctx.weight("running_mean", moving_mean, "moving_mean")
    ctx.weight("running_var", ctx.keras_weight("moving_variance"), "moving_variance")
    ctx.weight("num_batches_tracked", np.array(0, dtype=np.int64), "", "torch counter")
    x = ctx.input(0)
    if torch_axis == 1 or rank == 2 and torch_axis == 1:
        ctx.output(f"{attr}({x})", layout)
    elif rank <= 5:
        # torch normalizes axis 1; this tensor keeps its features elsewhere.
        ctx.output(f"{attr}({x}.movedim({torch_axis}, 1)).movedim(1, {torch_axis})", layout)

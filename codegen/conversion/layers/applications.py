"""The custom layers that keras.applications define for their own models.

- ConvNeXt's ``LayerScale``: ``x * gamma``, ``gamma`` one value per channel (last Keras axis).
- InceptionResNetV2's ``CustomScaleLayer``: ``inputs[0] + inputs[1] * scale``.
"""

from __future__ import annotations

import numpy as np

from ..context import CallContext, Unsupported
from ..registry import AGNOSTIC, register
from .merging import broadcast_input, common_layout
from .ops import constant


@register("LayerScale", layout=AGNOSTIC, elementwise=True)
def layer_scale(call, ctx: CallContext) -> None:
    cfg = ctx.config
    cfg.get("init_values")  # only the initial value of gamma
    dim = int(cfg["projection_dim"])
    weights = call.layer.weights
    name = "gamma" if "gamma" in weights else next(iter(weights), "gamma")
    if len(weights) != 1:
        raise Unsupported(f"LayerScale with variables {sorted(weights)} (expected one gamma)")
    gamma = np.asarray(ctx.keras_weight(name), dtype=np.float32)
    if gamma.shape != (dim,):
        raise Unsupported(f"gamma of shape {gamma.shape} (expected ({dim},))")
    layout = ctx.input_layout()
    if layout.feature_order is not None:
        # Features of a flattened channels-first tensor are in torch order: reorder once.
        order = np.asarray(layout.feature_order)
        if len(order) != dim:
            raise Unsupported("LayerScale on a flattened tensor of another size")
        param = gamma[order]
        transform = "reorder(C·H·W ← H·W·C)"
    else:
        # gamma scales the last Keras axis; store it shaped to broadcast in this layout.
        axis = layout.torch_axis(-1)
        param = gamma.reshape((dim,) + (1,) * (layout.rank - 1 - axis))
        transform = "identity" if param.ndim == 1 else f"reshape to {param.shape}"
    shape = ", ".join(str(d) for d in param.shape)
    attr = ctx.module(f"nn.Parameter(torch.ones({shape}))")
    ctx.weight("", param, name, transform)
    ctx.output(f"{ctx.input(0)} * {attr}", layout)


@register("CustomScaleLayer", layout=AGNOSTIC)
def custom_scale(call, ctx: CallContext) -> None:
    scale = ctx.config["scale"]
    if ctx.n_inputs != 2:
        raise Unsupported(f"{ctx.n_inputs} inputs (expected [x, residual])")
    target = common_layout(ctx)
    # ``inputs[0] + inputs[1] * scale`` with numpy broadcasting, as Keras computes it.
    x, up = (broadcast_input(ctx, i, target, insert_at=0) for i in range(2))
    ctx.output(f"{x} + {up} * {constant(scale)}", target)

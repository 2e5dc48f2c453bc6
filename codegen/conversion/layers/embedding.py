"""Embedding: a lookup table, ``nn.Embedding`` with the Keras table as its weight.

``mask_zero=True`` does not change the lookup itself: Keras attaches the mask ``ids != 0`` to
the output. Layers that take a ``mask=`` argument receive it as a recorded ``ops.not_equal``
node in the graph; attention layers read it implicitly (see ``attention.keras_mask``).
torch's ``padding_idx`` is not a mask (it only freezes a row's gradient), so it is not used.
"""

from __future__ import annotations

from codegen.ir.layout import keras_order

from ..context import CallContext, Unsupported
from ..registry import KERAS, register
from ._lora import lora_merged


@register("Embedding", layout=KERAS)
def embedding(call, ctx: CallContext) -> None:
    cfg = ctx.config
    num, dim = int(cfg["input_dim"]), int(cfg["output_dim"])
    cfg.get("mask_zero")  # the mask is a separate value (see the module docstring)
    cfg.get("input_length")  # Keras 2 configs: only fixed the input shape
    quantized = cfg.get("quantization_config") or any("scale" in k for k in ctx.layer.weights)
    if quantized or ctx.keras_weight("embeddings").dtype.kind != "f":
        raise Unsupported("quantized Embedding layers")
    table, merged = lora_merged(ctx, "embeddings")
    if table.shape != (num, dim):
        raise Unsupported(
            f"embeddings of shape {table.shape} for input_dim={num}, output_dim={dim}"
        )
    rank = len(ctx.input_shape())
    x = ctx.input(0, keras_order(rank))
    if ctx.call.inputs[0].dtype not in ("int32", "int64"):
        # Keras casts other index types to int32 (floats truncated); torch takes int32/int64.
        x = f"{x}.long()"
    attr = ctx.module(f"nn.Embedding({num}, {dim})")
    ctx.weight("weight", table, "embeddings", merged.rstrip("+") or "identity")
    ctx.output(f"{attr}({x})", keras_order(rank + 1))

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


# reverse_dtype values whose matmul torch computes as Keras does (float16/bfloat16 products
# accumulate differently).
_REVERSE_DTYPES = {None: "", "float32": ".float()", "float64": ".double()"}


@register("ReversibleEmbedding", layout=KERAS)
def reversible_embedding(call, ctx: CallContext) -> None:
    """Called on ids: the lookup; called with ``reverse=True``: logits over the vocabulary."""
    cfg = ctx.config
    num, dim = int(cfg["input_dim"]), int(cfg["output_dim"])
    tied = bool(cfg.get("tie_weights", True))
    cap = cfg.get("logit_soft_cap")
    reverse_dtype = cfg.get("reverse_dtype")
    if cfg.get("mask_zero"):
        raise Unsupported("mask_zero=True")
    if reverse_dtype not in _REVERSE_DTYPES:
        raise Unsupported(f"reverse_dtype={reverse_dtype!r}")
    if set(call.kwargs) - {"reverse"} or len(call.args) > 2:
        raise Unsupported(f"call arguments {sorted(call.kwargs)}")
    reverse = call.args[1] if len(call.args) == 2 else call.kwargs.get("reverse", False)
    if not isinstance(reverse, bool):
        raise Unsupported(f"reverse={reverse!r}")
    if cfg.get("quantization_config") or any("scale" in k for k in ctx.layer.weights):
        raise Unsupported("quantized ReversibleEmbedding layers")
    table, merged = lora_merged(ctx, "embeddings")
    if table.shape != (num, dim) or table.dtype.kind != "f":
        raise Unsupported(f"embeddings of shape {table.shape} and dtype {table.dtype}")
    options = "" if tied else ", tie_weights=False"
    if cap is not None:
        options += f", logit_soft_cap={float(cap)!r}"
    ctx.helper("ReversibleEmbedding")
    attr = ctx.module(f"ReversibleEmbedding({num}, {dim}{options})")
    ctx.weight("weight", table, "embeddings", merged.rstrip("+") or "identity")
    if not tied:
        ctx.weight("reverse_weight", ctx.keras_weight("reverse_embeddings"), "reverse_embeddings")
    rank = len(ctx.input_shape())
    x = ctx.input(0, keras_order(rank))
    if reverse:
        ctx.output(f"{attr}.reverse({x}{_REVERSE_DTYPES[reverse_dtype]})", keras_order(rank))
        return
    if ctx.call.inputs[0].dtype not in ("int32", "int64"):
        x = f"{x}.long()"  # Keras casts other index types to int32 (floats truncated)
    ctx.output(f"{attr}({x})", keras_order(rank + 1))

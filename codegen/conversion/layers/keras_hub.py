"""KerasHub's embedding layers (``keras_hub.layers``), as KerasHub 0.32 computes them.

``ReversibleEmbedding`` is core Keras's class (KerasHub subclasses it without changes): the
core converter ports it. The transformer blocks (``TransformerEncoder``,
``TransformerDecoder``) are not converted here: the readers rewrite each as the nested
graph of core layers it runs (:mod:`codegen.read.keras_hub`), which becomes a block class.
"""

from __future__ import annotations

from codegen.ir.layout import keras_order

from ..context import CallContext, Unsupported
from ..registry import KERAS, register


def _start_index(call, ctx: CallContext) -> str:
    """The ``start_index`` argument (cached decoding) as source; ``positions`` is refused."""
    values = dict(zip(("inputs", "start_index", "positions"), call.args))
    values.update(call.kwargs)
    if values.get("positions") is not None:
        raise Unsupported("called with positions (only a contiguous range of positions)")
    start = values.get("start_index", 0)
    if isinstance(start, bool) or not isinstance(start, int):
        raise Unsupported(f"start_index={start!r} (only a constant integer)")
    return "" if start == 0 else f", start_index={start}"


def _table(ctx: CallContext, name: str, rows: int, features: int):
    table = ctx.keras_weight(name)
    if table.shape != (rows, features) or table.dtype.kind != "f":
        raise Unsupported(f"{name} of shape {table.shape} and dtype {table.dtype}")
    return table


@register("PositionEmbedding", layout=KERAS)
def position_embedding(call, ctx: CallContext) -> None:
    """KerasHub: the table's first rows broadcast to the input; constant start_index."""
    cfg = ctx.config
    length = int(cfg["sequence_length"])
    cfg.get("initializer")  # how the table started (for training from scratch only)
    shape = ctx.input_shape()
    if len(shape) < 2 or shape[-1] is None:
        raise Unsupported(f"an input of shape {shape} (expected (..., steps, features))")
    features = int(shape[-1])
    table = _table(ctx, "embeddings", length, features)
    start = _start_index(call, ctx)
    ctx.helper("PositionEmbedding")
    attr = ctx.module(f"PositionEmbedding({length}, {features})")
    ctx.weight("weight", table, "embeddings")
    rank = len(shape)
    ctx.output(f"{attr}({ctx.input(0, keras_order(rank))}{start})", keras_order(rank))


@register("TokenAndPositionEmbedding", layout=KERAS)
def token_and_position_embedding(call, ctx: CallContext) -> None:
    """KerasHub: token plus position embeddings; tied or untied, no mask_zero."""
    cfg = ctx.config
    vocabulary, length = int(cfg["vocabulary_size"]), int(cfg["sequence_length"])
    dim = int(cfg["embedding_dim"])
    tied = bool(cfg.get("tie_weights", True))
    if cfg.get("mask_zero"):
        raise Unsupported("mask_zero=True")
    start = _start_index(call, ctx)
    tokens = _table(ctx, "token_embedding/embeddings", vocabulary, dim)
    positions = _table(ctx, "position_embedding/embeddings", length, dim)
    ctx.helper("TokenAndPositionEmbedding")
    options = "" if tied else ", tie_weights=False"
    attr = ctx.module(f"TokenAndPositionEmbedding({vocabulary}, {length}, {dim}{options})")
    ctx.weight("token_embedding.weight", tokens, "token_embedding/embeddings")
    if not tied:
        ctx.weight(
            "token_embedding.reverse_weight",
            ctx.keras_weight("token_embedding/reverse_embeddings"),
            "token_embedding/reverse_embeddings",
        )
    ctx.weight("position_embedding.weight", positions, "position_embedding/embeddings")
    rank = len(ctx.input_shape())
    ids = ctx.input(0, keras_order(rank))
    if call.inputs[0].dtype not in ("int32", "int64"):
        ids = f"{ids}.long()"  # Keras casts other index types to int32 (floats truncated)
    ctx.output(f"{attr}({ids}{start})", keras_order(rank + 1))

"""KerasHub's embedding layers (``keras_hub.layers``), as KerasHub 0.32 computes them.

``ReversibleEmbedding`` is core Keras's class (KerasHub subclasses it without changes): the
core converter ports it. The transformer blocks (``TransformerEncoder``,
``TransformerDecoder``) are not converted here: the readers rewrite each as the nested
graph of core layers it runs (:mod:`codegen.read.keras_hub`), which becomes a block class.
"""

from __future__ import annotations

from codegen.ir.layout import channels_first, keras_order

from ..context import CallContext, Unsupported
from ..registry import KERAS, SPATIAL, register
from ..weights import conv_kernel


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


@register("ViTPatchingAndEmbedding", layout=SPATIAL)
def vit_patching_and_embedding(call, ctx: CallContext) -> None:
    """KerasHub: Conv2D patches, row-major, class token, position embeddings (channels_last)."""
    cfg = ctx.config
    hidden = int(cfg["hidden_dim"])
    channels = int(cfg.get("num_channels", 3))
    patch = tuple(int(p) for p in cfg["patch_size"])
    image = tuple(int(s) for s in cfg["image_size"])
    positions = int(cfg["num_positions"])
    class_token = bool(cfg.get("use_class_token", True))
    patches = int(cfg["num_patches"])
    shape = ctx.input_shape()
    # KerasHub 0.32 saves neither data_format nor use_patch_bias: the input's channel axis
    # and the variables say which.
    if len(shape) != 4 or shape[-1] != channels or tuple(shape[1:3]) != image:
        raise Unsupported(f"an input of shape {shape} (expected (batch, *{image}, {channels}))")
    if patches != (image[0] // patch[0]) * (image[1] // patch[1]) or positions != patches + int(
        class_token
    ):
        raise Unsupported(f"num_patches={patches}, num_positions={positions} for these sizes")
    kernel = ctx.keras_weight("patch_embedding/kernel")
    if kernel.shape != (*patch, channels, hidden):
        raise Unsupported(f"a patch kernel of shape {kernel.shape}")
    bias = "patch_embedding/bias" in ctx.layer.weights
    options = ("" if class_token else ", class_token=False") + ("" if bias else ", bias=False")
    ctx.helper("ViTPatchingAndEmbedding")
    attr = ctx.module(
        f"ViTPatchingAndEmbedding({channels}, {hidden}, {patch!r}, {positions}{options})"
    )
    ctx.weight(
        "patch_embedding.weight", conv_kernel(kernel), "patch_embedding/kernel", "conv_kernel"
    )
    if bias:
        ctx.weight(
            "patch_embedding.bias", ctx.keras_weight("patch_embedding/bias"), "patch_embedding/bias"
        )
    if class_token:
        ctx.weight("class_token", ctx.keras_weight("class_token"), "class_token")
    table = _table(ctx, "position_embedding/embeddings", positions, hidden)
    ctx.weight("position_embedding", table, "position_embedding/embeddings")
    ctx.output(f"{attr}({ctx.input(0, channels_first(4))})", keras_order(3))

"""KerasHub's embedding layers (``keras_hub.layers``), as KerasHub 0.32 computes them.

``ReversibleEmbedding`` is core Keras's class (KerasHub subclasses it without changes): the
core converter ports it. The transformer blocks (``TransformerEncoder``,
``TransformerDecoder``) are not converted here: the readers rewrite each as the nested
graph of core layers it runs (:mod:`codegen.read.keras_hub`), which becomes a block class.
"""

from __future__ import annotations

from codegen.ir.graph import TensorRef
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
    # KerasHub 0.32's get_config() leaves out data_format and use_patch_bias (the Keras
    # reader reads them back from the layer); the input's channel axis and the variables
    # must agree with them.
    if cfg.get("data_format") not in (None, "channels_last"):
        raise Unsupported(f"data_format={cfg.get('data_format')!r}")
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
    if bool(cfg.get("use_patch_bias", bias)) != bias:
        raise Unsupported("use_patch_bias does not match the layer's variables")
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


# LlamaTransformerDecoder options that need no code: how the variables started.
_LLAMA_OPTIONS = ("kernel_initializer",)
# Llama 3.1's frequency smoothing and its context length: not written yet.
_LLAMA_ROPE_SCALING = (
    "rope_frequency_adjustment_factor",
    "rope_low_freq_factor",
    "rope_high_freq_factor",
    "rope_pretraining_sequence_length",
)


def _is_silu(value) -> bool:
    if value in ("silu", "swish"):
        return True
    return isinstance(value, dict) and value.get("config") in ("silu", "swish")


@register("LlamaTransformerDecoder", "QwenTransformerDecoder", layout=KERAS)
def llama_transformer_decoder(call, ctx: CallContext) -> None:
    """KerasHub Llama/Qwen block: RMS norms, rotary GQA causal attention, SiLU-gated MLP."""
    cfg = ctx.config
    qwen = call.layer.class_name == "QwenTransformerDecoder"
    intermediate = int(cfg["intermediate_dim"])
    heads, kv_heads = int(cfg["num_query_heads"]), int(cfg["num_key_value_heads"])
    wavelength = float(cfg.get("rope_max_wavelength", 10000))
    epsilon = float(cfg.get("layer_norm_epsilon", 1e-5))
    dropout = float(cfg.get("dropout") or 0.0)
    for option in _LLAMA_OPTIONS:
        cfg.get(option)
    scale = 1.0
    if qwen:  # Qwen: RotaryEmbedding's "linear" scaling, biased query/key/value projections
        scale = float(cfg.get("rope_scaling_factor", 1.0))
        cfg.get("sliding_window_size")
        if cfg.get("use_sliding_window_attention"):
            raise Unsupported("use_sliding_window_attention=True")
    else:
        # KerasHub 0.32's LlamaRotaryEmbedding never reads its position scaling factor.
        cfg.get("rope_position_scaling_factor")
        scaling = [name for name in _LLAMA_ROPE_SCALING if cfg.get(name) is not None]
        if scaling:
            raise Unsupported(f"Llama 3.1 rotary frequency scaling ({', '.join(scaling)})")
    bias = qwen
    names = {"query/kernel", "key/kernel", "value/kernel", "attention_output/kernel"}
    names |= {"query/bias", "key/bias", "value/bias"} if bias else set()
    found = {k.split("/", 1)[1] for k in ctx.layer.weights if k.startswith("self_attention/")}
    if found != names:
        raise Unsupported(f"attention variables {sorted(found ^ names)}")
    if not _is_silu(cfg.get("activation", "silu")):
        raise Unsupported(f"activation={cfg.get('activation')!r} (the gate is SiLU only)")
    values = dict(
        zip(
            (
                "decoder_sequence",
                "decoder_padding_mask",
                "decoder_attention_mask",
                "self_attention_cache",
                "self_attention_cache_update_index",
                "training",
            ),
            call.args,
        )
    )
    values.update(call.kwargs)
    for option in (
        "decoder_attention_mask",
        "self_attention_cache",
        "self_attention_cache_update_index",
    ):
        if values.get(option) is not None:
            raise Unsupported(f"called with {option} (a padding mask only, no cache)")
    sequence = values.get("decoder_sequence")
    mask = values.get("decoder_padding_mask")
    if not isinstance(sequence, TensorRef) or not (mask is None or isinstance(mask, TensorRef)):
        raise Unsupported("decoder_sequence and decoder_padding_mask must be tensors")
    shape = ctx.input_shape(sequence.position)
    if len(shape) != 3 or shape[-1] is None:
        raise Unsupported(f"an input of shape {shape} (expected (batch, steps, features))")
    hidden = int(shape[-1])
    head_dim = hidden // heads
    if heads % kv_heads or head_dim * heads != hidden or head_dim % 2:
        raise Unsupported(f"{hidden} features for {heads} query and {kv_heads} key/value heads")
    if mask is not None:
        dtype = call.inputs[mask.position].dtype
        if not (dtype.startswith(("int", "uint")) or dtype == "bool"):
            raise Unsupported(f"a {dtype} decoder_padding_mask (integer or bool masks only)")
    args = [str(hidden), str(intermediate), str(heads), str(kv_heads)]
    if wavelength != 10000.0:
        args.append(f"max_wavelength={wavelength!r}")
    if epsilon != 1e-5:
        args.append(f"epsilon={epsilon!r}")
    if dropout:
        args.append(f"dropout={dropout!r}")
    if bias:
        args.append("bias=True")
    if scale != 1.0:
        args.append(f"scaling_factor={scale!r}")
    ctx.helper("LlamaTransformerDecoder")
    attr = ctx.module(f"LlamaTransformerDecoder({', '.join(args)})")
    for name in ("query", "key", "value"):
        kernel = ctx.keras_weight(f"self_attention/{name}/kernel")  # (hidden, heads, dim)
        ctx.weight(
            f"self_attention.{name}.weight",
            kernel.reshape(hidden, -1).T,
            f"self_attention/{name}/kernel",
            "reshape(features, heads*dim) + dense_kernel",
        )
        if bias:
            ctx.weight(
                f"self_attention.{name}.bias",
                ctx.keras_weight(f"self_attention/{name}/bias").reshape(-1),
                f"self_attention/{name}/bias",
                "flatten",
            )
    out = ctx.keras_weight("self_attention/attention_output/kernel")  # (heads, dim, hidden)
    ctx.weight(
        "self_attention.attention_output.weight",
        out.reshape(-1, hidden).T,
        "self_attention/attention_output/kernel",
        "reshape(heads*dim, out) + dense_kernel",
    )
    for name in ("self_attention_layernorm", "feedforward_layernorm"):
        ctx.weight(f"{name}.weight", ctx.keras_weight(f"{name}/scale"), f"{name}/scale")
    for name in (
        "feedforward_gate_dense",
        "feedforward_intermediate_dense",
        "feedforward_output_dense",
    ):
        kernel = ctx.keras_weight(f"{name}/kernel")
        ctx.weight(f"{name}.weight", kernel.T, f"{name}/kernel", "dense_kernel")
    x = ctx.input(sequence.position, keras_order(3))
    masked = "" if mask is None else f", {ctx.input(mask.position, keras_order(2))}"
    ctx.output(f"{attr}({x}{masked})", keras_order(3))


@register("LlamaLayerNorm", "QwenLayerNorm", layout=KERAS)
def llama_layer_norm(call, ctx: CallContext) -> None:
    """KerasHub Llama/Qwen RMS norm over the last axis (nn.RMSNorm, the same formula)."""
    epsilon = float(ctx.config.get("epsilon", 1e-6))
    shape = ctx.input_shape()
    scale = ctx.keras_weight("scale")
    if shape[-1] is None or scale.shape != (shape[-1],):
        raise Unsupported(f"a scale of shape {scale.shape} for inputs of shape {shape}")
    attr = ctx.module(f"nn.RMSNorm({int(shape[-1])}, eps={epsilon!r})")
    ctx.weight("weight", scale, "scale")
    rank = len(shape)
    ctx.output(f"{attr}({ctx.input(0, keras_order(rank))})", keras_order(rank))

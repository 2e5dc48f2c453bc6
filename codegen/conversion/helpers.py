"""Small functions and modules emitted into ``model.py`` only when a converter needs them.

Each lives in ``templates/helpers/<name>.py.j2`` so the generated file stays standalone.
A helper with code paths that only some models use declares them here as *features*: a
converter names the ones its call needs (``ctx.helper("KerasAttention", causal=True)``), the
session unions them over every call of the model, and the template is rendered with each
feature True or False, so that ``model.py`` carries only the branches the model runs.
"""

from pathlib import Path

from codegen.resources import template_dirs

# Helpers that call other helpers.
DEPENDENCIES: dict[str, tuple[str, ...]] = {
    "pad_same": ("same_padding",),
    "LSTMLoop": ("RNNLoop",),
    "GRULoop": ("RNNLoop",),
    "SimpleRNNLoop": ("RNNLoop",),
    "ConvLSTMLoop": ("RNNLoop",),
    "TokenAndPositionEmbedding": ("ReversibleEmbedding", "PositionEmbedding"),
    "LlamaTransformerDecoder": ("LlamaAttention",),
}

# The features of each specialised template. Most are named after the argument they add
# to the helper's signature; a call passes that argument only when it has the feature.
FEATURES: dict[str, tuple[str, ...]] = {
    "KerasMultiHeadAttention": (
        "value_dim",
        "kdim",
        "vdim",
        "out_dim",
        "dropout",
        "num_kv_heads",
        "gate",
        "sliding_window",
        "key",
        "attention_mask",
        "query_mask",
        "value_mask",
        "key_mask",
        "causal",
        "return_scores",
    ),
    "KerasAttention": (
        "dot",
        "concat",
        "additive",
        "use_scale",
        "dropout",
        "key",
        "query_mask",
        "value_mask",
        "causal",
        "return_scores",
    ),
    # Shared by the step-by-step loops: RNNLoop runs what their ``step`` computes.
    "RNNLoop": (
        "activation",
        "recurrent_activation",
        "reset_before",  # a GRU with reset_after=False
        "dropout",
        "recurrent_dropout",
        "initial_state",
        "mask",
        "zero_output_for_mask",
        "stride",  # ConvLSTM
        "padding",
        "pad",  # ConvLSTM: TensorFlow's uneven "same" padding with strides
        "dilation",
    ),
    "BidirectionalRNN": (
        "torch_layers",
        "loop_layers",
        "dropout",
        "initial_state",
        "mask",
        "zero_output_for_mask",
    ),
    "rnn_masked": ("bidirectional", "initial_state", "zero_output_for_mask"),
    "rnn_bidirectional_outputs": (
        "concat",
        "sum",
        "ave",
        "mul",
        "separate",  # merge_mode=None
        "return_sequences",
        "return_state",
    ),
    "rnn_states": ("return_sequences",),
    "BatchNorm": ("scale", "center", "frozen"),  # each: a call sets it to its non-default
    "Normalize": ("adapted", "given", "invert", "eps"),
    "tf_resize": ("size", "scale_factor", "area", "bicubic", "lanczos", "antialias"),
}

# Helpers rendered with another helper's features: the loops implement what RNNLoop calls.
FEATURE_OWNERS: dict[str, str] = {
    "LSTMLoop": "RNNLoop",
    "GRULoop": "RNNLoop",
    "SimpleRNNLoop": "RNNLoop",
    "ConvLSTMLoop": "RNNLoop",
}


# Helpers that call another helper with arguments of their own: the callee must take every
# argument the caller may pass on, whatever its own calls need.
PASSED_ON: dict[str, dict[str, tuple[str, ...]]] = {
    "BidirectionalRNN": {
        "RNNLoop": ("initial_state", "mask", "zero_output_for_mask"),
        "rnn_masked": ("initial_state", "zero_output_for_mask"),
    },
}


def feature_owner(name: str) -> str:
    """The helper whose features ``name`` is rendered with (itself, for most)."""
    return FEATURE_OWNERS.get(name, name)


def is_builtin_helper(name: str) -> bool:
    """Whether ``name`` is one of the helper templates shipped with keras2torch."""
    return any((Path(d) / "helpers" / f"{name}.py.j2").exists() for d in template_dirs())

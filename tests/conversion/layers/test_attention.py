"""EinsumDense and the attention layers against Keras 3, masks included."""

import keras
import numpy as np
import pytest
import torch
from keras import layers
from parity import check_parity, random_inputs, to_torch
from test_core import check_without_param_count

import codegen
from codegen.api import generate

# Right-padded token ids of different real lengths; the last sequence is all padding, so its
# rows are fully masked (Keras then averages uniformly or zeroes, depending on its path).
IDS = np.array(
    [[3, 4, 5, 6, 7, 0, 0], [1, 9, 0, 0, 0, 0, 0], [2, 2, 8, 1, 5, 4, 3], [0, 0, 0, 0, 0, 0, 0]],
    dtype="int32",
)


def parity_with_ids(model, tmp_path, ids=IDS):
    """check_parity on the padded batch above and on random ids (zeros anywhere)."""
    check_parity(model, tmp_path, inputs=[ids])
    return check_parity(model, tmp_path)


def source_of(result) -> str:
    return result.module_path.read_text()


def embedded(mask_zero=True, steps=7, dim=8, name="tokens"):
    inp = keras.Input((steps,), dtype="int32", name=name)
    return inp, layers.Embedding(10, dim, mask_zero=mask_zero, name=f"{name}_embedding")(inp)


# -- EinsumDense --------------------------------------------------------------------------
EQUATIONS = [
    # (equation, input shape, output_shape, bias_axes, expect nn.Linear)
    ("ab,bc->ac", (6,), 4, "c", True),
    ("abc,cd->abd", (5, 8), (None, 7), "d", True),
    ("abc,cde->abde", (5, 8), (None, 2, 3), "de", True),
    ("abcd,cde->abe", (5, 2, 3), (None, 4), "e", True),
    ("abc,bcd->ad", (5, 3), 4, "d", True),
    ("abc,c->ab", (5, 3), (None,), None, True),
    ("...b,bc->...c", (4, 5, 6), 3, "c", True),
    ("abc,cd->abd", (5, 8), (5, 7), "bd", False),  # a bias along the steps axis
    ("abc,cde->abde", (5, 8), (None, 2, 3), "e", False),  # a bias on one new axis only
    ("abc,cd->adb", (5, 8), (7, None), "d", False),  # output axes reordered
    ("abc,dc->abd", (5, 8), (None, 7), None, False),  # kernel stored (out, in)
    ("abc,cd->abd", (5, 8), (None, 7), None, True),
]


@pytest.mark.parametrize("equation, shape, output_shape, bias_axes, linear", EQUATIONS)
def test_einsum_dense(tmp_path, equation, shape, output_shape, bias_axes, linear):
    inp = keras.Input(shape)
    out = layers.EinsumDense(
        equation, output_shape=output_shape, bias_axes=bias_axes, activation="tanh"
    )(inp)
    _, _, result = check_parity(keras.Model(inp, out, name="m"), tmp_path)
    assert ("nn.Linear(" in source_of(result)) == linear
    assert ("torch.einsum" in source_of(result)) == (not linear)


def test_einsum_dense_on_channels_first_images(tmp_path):
    inp = keras.Input((6, 5, 3))
    x = layers.Conv2D(4, 3, padding="same")(inp)
    a = layers.EinsumDense("abcd,de->abce", output_shape=(6, 5, 2), bias_axes="e")(x)
    b = layers.EinsumDense("abcd,ed->abce", output_shape=(6, 5, 2))(x)
    _, _, result = check_parity(keras.Model(inp, [a, b], name="m"), tmp_path)
    source = source_of(result)
    # The einsum reads the channels-first tensor as it is (its subscripts are permuted).
    assert "adbc,ed->abce" in source


@pytest.mark.parametrize("lora_alpha", [None, 4])
def test_einsum_dense_lora_is_merged(tmp_path, lora_alpha):
    inp = keras.Input((5, 6))
    layer = layers.EinsumDense(
        "abc,cd->abd", output_shape=(None, 3), bias_axes="d", lora_rank=2, lora_alpha=lora_alpha
    )
    source = check_without_param_count(keras.Model(inp, layer(inp), name="m"), tmp_path)
    assert "lora" not in source.split('"""', 2)[2].lower()


def test_quantized_einsum_dense_is_unsupported():
    inp = keras.Input((5, 6))
    layer = layers.EinsumDense("abc,cd->abd", output_shape=(None, 3), bias_axes="d")
    model = keras.Model(inp, layer(inp))
    layer.quantize("int8")
    with pytest.raises(codegen.UnsupportedError, match="quantized"):
        generate(model, command="x")


# -- MultiHeadAttention -------------------------------------------------------------------
@pytest.mark.parametrize(
    "options",
    [
        {},
        {"use_bias": False, "value_dim": 3},
        {"output_shape": 5},
        {"output_shape": (2, 3), "use_gate": True},
        {"dropout": 0.3},
        {"sliding_window": 2},
    ],
)
def test_mha_self_attention(tmp_path, options):
    inp = keras.Input((6, 8))
    out = layers.MultiHeadAttention(2, 4, name="mha", **options)(inp, inp)
    _, _, result = check_parity(keras.Model(inp, out, name="m"), tmp_path)
    assert "x = self.mha(x, x)" in source_of(result)


def test_mha_cross_attention_with_key(tmp_path):
    q = keras.Input((5, 8), name="q")
    v = keras.Input((6, 4), name="v")
    k = keras.Input((6, 3), name="k")
    out = layers.MultiHeadAttention(3, 2, value_dim=5, name="mha")(q, v, key=k)
    _, _, result = check_parity(keras.Model([q, v, k], out, name="m"), tmp_path)
    source = " ".join(source_of(result).split())
    assert "KerasMultiHeadAttention( 8, num_heads=3, key_dim=2, value_dim=5, kdim=3, vdim=4 )" in (
        source
    )
    assert "x = self.mha(q, v, k)" in source


@pytest.mark.parametrize("scores", [False, True])
@pytest.mark.parametrize("causal", [False, True])
def test_mha_causal_and_scores(tmp_path, causal, scores):
    q = keras.Input((5, 8), name="q")
    v = keras.Input((7, 8), name="v")
    result = layers.MultiHeadAttention(2, 3)(
        q, v, use_causal_mask=causal, return_attention_scores=scores
    )
    outputs = list(result) if scores else result
    check_parity(keras.Model([q, v], outputs, name="m"), tmp_path)


@pytest.mark.parametrize("dtype, causal", [("bool", False), ("bool", True), ("float32", False)])
def test_mha_attention_mask_input(tmp_path, dtype, causal):
    x = keras.Input((5, 8), name="x")
    m = keras.Input((5, 5), dtype=dtype, name="m")
    out = layers.MultiHeadAttention(2, 4)(x, x, attention_mask=m, use_causal_mask=causal)
    model = keras.Model([x, m], out, name="m")
    rng = np.random.default_rng(3)
    for batch in (1, 3):
        xs = rng.standard_normal((batch, 5, 8)).astype("float32")
        mask = rng.integers(0, 2, size=(batch, 5, 5))
        mask[0, 2] = 0  # one query step may attend to nothing
        check_parity(model, tmp_path, inputs=[xs, mask.astype(dtype)])


@pytest.mark.parametrize(
    "extra", [{}, {"return_attention_scores": True}, {"use_causal_mask": True}]
)
def test_mha_on_embedding_masks(tmp_path, extra):
    inp, x = embedded()
    result = layers.MultiHeadAttention(2, 4, name="mha")(x, x, **extra)
    outputs = list(result) if extra.get("return_attention_scores") else result
    _, _, port = parity_with_ids(keras.Model(inp, outputs, name="m"), tmp_path)
    assert "query_mask=tokens != 0, value_mask=tokens != 0" in source_of(port)


def test_mha_with_dropout_on_embedding_masks(tmp_path):
    # Dropout sends Keras down its explicit-softmax path (fully masked rows become zeros).
    inp, x = embedded()
    out = layers.MultiHeadAttention(2, 4, dropout=0.2)(x, x)
    parity_with_ids(keras.Model(inp, out, name="m"), tmp_path)


def test_mha_cross_attention_masked_value(tmp_path):
    q = keras.Input((4, 8), name="q")
    ids, v = embedded()
    out = layers.MultiHeadAttention(2, 4)(q, v)
    model = keras.Model([q, ids], out, name="m")
    xs = np.random.default_rng(0).standard_normal((4, 4, 8)).astype("float32")
    check_parity(model, tmp_path, inputs=[xs, IDS])


def test_mha_masking_layer(tmp_path):
    inp = keras.Input((6, 4))
    x = layers.Masking(0.0)(inp)
    out = layers.MultiHeadAttention(2, 3)(x, x)
    xs = np.random.default_rng(1).standard_normal((3, 6, 4)).astype("float32")
    xs[0, 4:] = 0.0
    xs[2, :] = 0.0
    check_parity(keras.Model(inp, out, name="m"), tmp_path, inputs=[xs])


def test_mha_masked_key(tmp_path):
    q_ids, q = embedded(name="q")
    v = keras.Input((7, 8), name="v")
    k_ids, k = embedded(name="k")
    out = layers.MultiHeadAttention(2, 4)(q, v, key=k)
    model = keras.Model([q_ids, v, k_ids], out, name="m")
    xs = np.random.default_rng(0).standard_normal((4, 7, 8)).astype("float32")
    _, _, result = check_parity(model, tmp_path, inputs=[IDS, xs, IDS[::-1].copy()])
    assert "key_mask=k != 0" in " ".join(source_of(result).split())


@pytest.mark.parametrize("kind", ["MultiHeadAttention", "GroupQueryAttention", "Attention"])
def test_masks_pass_through_attention_outputs(tmp_path, kind):
    # An attention output carries its query's mask on to the next attention layer.
    inp, x = embedded()
    if kind == "Attention":
        y = layers.Attention()([x, x])
    elif kind == "GroupQueryAttention":
        y = layers.GroupQueryAttention(4, 4, 2)(x, x)
    else:
        y = layers.MultiHeadAttention(2, 4)(x, x)
    out = layers.AdditiveAttention()([y, y])
    _, _, result = parity_with_ids(keras.Model(inp, out, name="m"), tmp_path)
    assert "query_mask=tokens != 0" in " ".join(source_of(result).split())


def test_masks_merge_with_or(tmp_path):
    # Add of two masked inputs: Keras ORs their masks.
    a_ids, a = embedded(name="a")
    b_ids, b = embedded(name="b")
    x = layers.Add()([a, b])
    out = layers.MultiHeadAttention(2, 4)(x, x)
    model = keras.Model([a_ids, b_ids], out, name="m")
    _, _, result = check_parity(model, tmp_path, inputs=[IDS, IDS[:, ::-1].copy()])
    assert "(a != 0) | (b != 0)" in source_of(result)


@pytest.mark.parametrize("shape", [(3, 4, 8), (None, None, 8)])
def test_mha_rank4_attends_over_both_axes(tmp_path, shape):
    inp = keras.Input(shape)
    out = layers.MultiHeadAttention(2, 4, name="mha")(inp, inp)
    _, _, result = check_parity(keras.Model(inp, out, name="m"), tmp_path, spatial=4)
    assert ".flatten(1, -2)" in source_of(result)


def test_mha_partial_attention_axes_is_unsupported():
    inp = keras.Input((3, 4, 8))
    out = layers.MultiHeadAttention(2, 4, attention_axes=(2,))(inp, inp)
    with pytest.raises(codegen.UnsupportedError, match="attention_axes"):
        generate(keras.Model(inp, out), command="x")


def test_mha_masks_read_in_an_order_keras_leaves_open_are_unsupported():
    # MultiHeadAttention deletes its inputs' masks at run time: which of two calls on the
    # same masked tensor sees the mask depends on Keras's scheduling.
    inp, x = embedded()
    a = layers.MultiHeadAttention(2, 4)(x, x)
    b = layers.MultiHeadAttention(2, 4)(x, x)
    with pytest.raises(codegen.UnsupportedError, match="order"):
        generate(keras.Model(inp, layers.Add()([a, b])), command="x")


def test_mha_dropout_in_training(tmp_path):
    inp = keras.Input((6, 8))
    out = layers.MultiHeadAttention(2, 4, dropout=0.5)(inp, inp)
    _, port, result = check_parity(keras.Model(inp, out, name="m"), tmp_path)
    x = to_torch(random_inputs(keras.Model(inp, out), 2)[0], result.input_perms[0])
    port.train()
    with torch.no_grad():
        assert not torch.allclose(port(x), port(x))


# -- transformer blocks --------------------------------------------------------------------
def encoder_block(x, heads, dim, pre_norm, name, causal=False):
    norm = layers.LayerNormalization(epsilon=1e-6, name=f"{name}_norm1")
    norm2 = layers.LayerNormalization(epsilon=1e-6, name=f"{name}_norm2")
    h = norm(x) if pre_norm else x
    h = layers.MultiHeadAttention(heads, dim // heads, name=f"{name}_mha")(
        h, h, use_causal_mask=causal
    )
    x = layers.Add(name=f"{name}_add1")([x, h])
    x = x if pre_norm else norm(x)
    h = norm2(x) if pre_norm else x
    h = layers.Dense(2 * dim, activation="gelu", name=f"{name}_ff1")(h)
    h = layers.Dense(dim, name=f"{name}_ff2")(h)
    x = layers.Add(name=f"{name}_add2")([x, h])
    return x if pre_norm else norm2(x)


@pytest.mark.parametrize("pre_norm", [True, False])
def test_transformer_encoder(tmp_path, pre_norm):
    inp = keras.Input((6, 8))
    x = encoder_block(inp, 2, 8, pre_norm, "block1")
    x = encoder_block(x, 4, 8, pre_norm, "block2", causal=True)
    out = layers.Dense(3)(layers.GlobalAveragePooling1D()(x))
    check_parity(keras.Model(inp, out, name="encoder"), tmp_path)


@pytest.mark.parametrize("pre_norm", [True, False])
def test_transformer_on_masked_tokens(tmp_path, pre_norm):
    # Post-norm: MultiHeadAttention deletes the mask of its input at run time, so the
    # residual Add has an unmasked input and the second block sees no mask in Keras.
    # Pre-norm: the attention reads the normalized copy, the residual keeps the mask.
    inp, x = embedded(dim=8)
    x = encoder_block(x, 2, 8, pre_norm, "block1")
    x = encoder_block(x, 2, 8, pre_norm, "block2")
    parity_with_ids(keras.Model(inp, x, name="encoder"), tmp_path)


# -- GroupQueryAttention ------------------------------------------------------------------
@pytest.mark.parametrize(
    "kv_heads, extra", [(2, {}), (1, {}), (4, {}), (2, {"use_causal_mask": True})]
)
def test_group_query_attention(tmp_path, kv_heads, extra):
    q = keras.Input((5, 8), name="q")
    v = keras.Input((6, 8), name="v")
    out = layers.GroupQueryAttention(4, 4, kv_heads, name="gqa")(q, v, **extra)
    _, _, result = check_parity(keras.Model([q, v], out, name="m"), tmp_path)
    assert ("num_kv_heads=" in source_of(result)) == (kv_heads != 4)


@pytest.mark.parametrize(
    "options", [{"use_bias": False, "sliding_window": 2}, {"use_gate": True, "dropout": 0.1}]
)
def test_group_query_attention_options(tmp_path, options):
    x = keras.Input((6, 8))
    out = layers.GroupQueryAttention(2, 4, 1, **options)(x, x)
    check_parity(keras.Model(x, out, name="m"), tmp_path)


@pytest.mark.parametrize("extra", [{}, {"return_attention_scores": True}])
def test_group_query_attention_on_embedding_masks(tmp_path, extra):
    inp, x = embedded()
    result = layers.GroupQueryAttention(4, 4, 2)(x, x, **extra)
    outputs = list(result) if extra else result
    parity_with_ids(keras.Model(inp, outputs, name="m"), tmp_path)


# -- Attention / AdditiveAttention --------------------------------------------------------
SCORES = {"return_attention_scores": True}
CAUSAL = {"use_causal_mask": True}
ATTENTION = [
    ("Attention", {}, {}),
    ("Attention", {"use_scale": True}, SCORES),
    ("Attention", {"score_mode": "concat"}, CAUSAL),
    ("Attention", {"score_mode": "concat", "use_scale": True}, SCORES),
    ("Attention", {"dropout": 0.2}, {}),
    ("AdditiveAttention", {}, CAUSAL),
    ("AdditiveAttention", {"use_scale": False}, SCORES),
]


@pytest.mark.parametrize("kind, options, call", ATTENTION)
def test_attention(tmp_path, kind, options, call):
    q = keras.Input((5, 6), name="q")
    v = keras.Input((7, 6), name="v")
    result = getattr(layers, kind)(name="attn", **options)([q, v], **call)
    outputs = list(result) if call.get("return_attention_scores") else result
    check_parity(keras.Model([q, v], outputs, name="m"), tmp_path)


@pytest.mark.parametrize("kind", ["Attention", "AdditiveAttention"])
def test_attention_with_key(tmp_path, kind):
    q = keras.Input((5, 6), name="q")
    v = keras.Input((7, 4), name="v")
    k = keras.Input((7, 6), name="k")
    out = getattr(layers, kind)()([q, v, k])
    check_parity(keras.Model([q, v, k], out, name="m"), tmp_path)


@pytest.mark.parametrize("kind", ["Attention", "AdditiveAttention"])
@pytest.mark.parametrize("causal", [False, True])
def test_attention_on_embedding_masks(tmp_path, kind, causal):
    inp, x = embedded()
    q = layers.Dense(8, name="query")(x)
    out = getattr(layers, kind)()([q, x], use_causal_mask=causal)
    _, _, result = parity_with_ids(keras.Model(inp, out, name="m"), tmp_path)
    source = " ".join(source_of(result).split())
    assert "query_mask=tokens != 0, value_mask=tokens != 0" in source


def test_attention_explicit_masks(tmp_path):
    q = keras.Input((5, 6), name="q")
    v = keras.Input((7, 6), name="v")
    qm = keras.Input((5,), dtype="bool", name="qm")
    vm = keras.Input((7,), dtype="bool", name="vm")
    out = layers.Attention()([q, v], mask=[qm, vm])
    model = keras.Model([q, v, qm, vm], out, name="m")
    rng = np.random.default_rng(0)
    arrays = [
        rng.standard_normal((3, 5, 6)).astype("float32"),
        rng.standard_normal((3, 7, 6)).astype("float32"),
        rng.integers(0, 2, (3, 5)).astype(bool),
        rng.integers(0, 2, (3, 7)).astype(bool),
    ]
    check_parity(model, tmp_path, inputs=arrays)

"""Helpers rendered with only the code paths a model uses (``ctx.helper(name, **features)``).

Each specialised template renders to valid, black-clean Python for any set of features; a
model's helper carries the branches of its own calls (the union over every call), and the
port still matches Keras.
"""

import ast
import random

import black
import keras
import numpy as np
import pytest
from keras import layers
from parity import check_parity

from codegen.conversion.helpers import FEATURE_OWNERS, FEATURES
from codegen.conversion.model import Options, Session
from codegen.conversion.registry import Registry, Table
from codegen.errors import ConversionError
from codegen.render.templates import environment

SPECIALISED = sorted(set(FEATURES) | set(FEATURE_OWNERS))
PREAMBLE = (
    "import math\n\nimport torch\nimport torch.nn.functional as F\nfrom torch import nn\n\n\n"
)


def feature_sets(name: str) -> list[dict[str, bool]]:
    """None, all, each alone, and a few random mixes of the features of ``name``."""
    features = FEATURES[FEATURE_OWNERS.get(name, name)]
    sets = [dict.fromkeys(features, False), dict.fromkeys(features, True)]
    sets += [{f: f == alone for f in features} for alone in features]
    rng = random.Random(name)
    sets += [{f: rng.random() < 0.5 for f in features} for _ in range(12)]
    return sets


@pytest.mark.parametrize("name", SPECIALISED)
def test_every_feature_set_renders_valid_python(name):
    template = environment().get_template(f"helpers/{name}.py.j2")
    for flags in feature_sets(name):
        text = PREAMBLE + template.render(**flags).strip() + "\n"
        compile(text, name, "exec")
        formatted = black.format_str(text, mode=black.Mode())
        assert "\n\n\n\n" not in formatted.split(PREAMBLE.strip())[-1], flags


def test_session_unions_features_and_checks_their_names():
    session = Session(Options(), Registry(Table("test")))
    session.use_helper("KerasAttention", ["causal"])
    session.use_helper("KerasAttention", ["dropout"])
    session.use_helper("LSTMLoop", ["mask"])  # the loops share RNNLoop's features
    session.use_helper("GRULoop", ["recurrent_dropout"])
    assert session.helpers == ["KerasAttention", "RNNLoop", "LSTMLoop", "GRULoop"]
    flags = session.helper_flags("KerasAttention")
    assert [f for f, on in flags.items() if on] == ["dropout", "causal"]
    assert session.helper_flags("GRULoop") == session.helper_flags("RNNLoop")
    assert (
        session.helper_flags("RNNLoop")["mask"] and not session.helper_flags("RNNLoop")["dropout"]
    )
    with pytest.raises(ConversionError, match="no feature"):
        session.use_helper("KerasAttention", ["casual"])


def test_arguments_passed_on_reach_the_callee():
    """BidirectionalRNN passes its mask on to the loops it holds, whatever their own calls."""
    session = Session(Options(), Registry(Table("test")))
    session.use_helper("LSTMLoop")
    session.use_helper("BidirectionalRNN", ["loop_layers", "mask"])
    assert session.helper_flags("LSTMLoop")["mask"]
    assert not session.helper_flags("LSTMLoop")["initial_state"]


# -- generated models ----------------------------------------------------------------------
def helper_source(result, name: str) -> str:
    source = result.module_path.read_text()
    tree = ast.parse(source)
    node = next(n for n in tree.body if getattr(n, "name", None) == name)
    return ast.get_source_segment(source, node)


def code_of(text: str) -> str:
    """``text`` without comments and docstrings: what runs."""
    tree = ast.parse(text)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            if isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return ast.unparse(tree)


def self_attention(causal=False, masked=False, dropout=0.0, name="attention"):
    tokens = keras.Input((7,), dtype="int32")
    x = layers.Embedding(10, 8, mask_zero=masked)(tokens)
    attention = layers.MultiHeadAttention(2, 4, dropout=dropout, name=name)
    return tokens, x, attention(x, x, use_causal_mask=causal)


IDS = np.array([[3, 4, 5, 6, 7, 0, 0], [1, 9, 0, 0, 0, 0, 0], [2, 2, 8, 1, 5, 4, 3]], "int32")


def test_plain_self_attention_has_no_mask_causal_or_dropout_code(tmp_path):
    tokens, _, out = self_attention()
    _, _, result = check_parity(keras.Model(tokens, out, name="plain"), tmp_path)
    code = code_of(helper_source(result, "KerasMultiHeadAttention"))
    for branch in ("mask", "causal", "dropout", "return_scores", "num_kv_heads", "gate", "window"):
        assert branch not in code, branch
    assert "F.scaled_dot_product_attention(q, k, v, scale=self.scale)" in code


def test_causal_masked_self_attention_has_its_branches(tmp_path):
    tokens, _, out = self_attention(causal=True, masked=True)
    model = keras.Model(tokens, out, name="causal_masked")
    check_parity(model, tmp_path, inputs=[IDS])
    _, _, result = check_parity(model, tmp_path)
    code = code_of(helper_source(result, "KerasMultiHeadAttention"))
    for branch in ("query_mask", "value_mask", "causal", ".tril()", "masked_fill"):
        assert branch in code, branch
    # Self-attention: no separate key, so no key mask either.
    for branch in ("key_mask", "dropout", "attention_mask", "return_scores", "num_kv_heads"):
        assert branch not in code, branch


def test_one_helper_two_attention_layers_gets_the_union(tmp_path):
    """A plain layer and a causal one with dropout share one KerasMultiHeadAttention."""
    tokens = keras.Input((7,), dtype="int32")
    x = layers.Embedding(10, 8)(tokens)
    x = x + layers.MultiHeadAttention(2, 4, name="plain")(x, x)
    x = layers.MultiHeadAttention(2, 4, dropout=0.2, name="causal")(x, x, use_causal_mask=True)
    _, _, result = check_parity(keras.Model(tokens, x, name="two"), tmp_path)
    source = result.module_path.read_text()
    assert source.count("class KerasMultiHeadAttention") == 1
    code = code_of(helper_source(result, "KerasMultiHeadAttention"))
    for branch in ("causal", "self.dropout", "explicit", ".tril()"):
        assert branch in code, branch
    assert "mask: torch.Tensor" not in code  # no Keras masks in this model


# -- recurrent loops -------------------------------------------------------------------------
STEPS, FEATURES_IN = 12, 5


def padded(real_lengths, rng):
    x = rng.standard_normal((len(real_lengths), STEPS, FEATURES_IN)).astype(np.float32)
    for i, n in enumerate(real_lengths):
        x[i, n:] = 0.0
    return x


def test_lstm_loop_without_mask_has_no_mask_code(tmp_path):
    inp = keras.Input((STEPS, FEATURES_IN))
    out = layers.LSTM(4, activation="softsign")(inp)  # not nn.LSTM: a step-by-step loop
    _, _, result = check_parity(keras.Model(inp, out, name="lstm_plain"), tmp_path)
    code = code_of(helper_source(result, "RNNLoop") + "\n" + helper_source(result, "LSTMLoop"))
    for branch in ("mask", "hx", "dropout", "project", "recurrent_activation"):
        assert branch not in code, branch
    assert "self.activation(g)" in code and "torch.sigmoid(f)" in code
    assert "torch.nn.functional" not in code and "F." not in code


def test_lstm_loop_masked_backwards_has_its_branches(tmp_path):
    inp = keras.Input((STEPS, FEATURES_IN))
    x = layers.Masking(0.0)(inp)
    out = layers.LSTM(4, activation="softsign", go_backwards=True, return_sequences=True)(x)
    model = keras.Model(inp, out, name="lstm_masked")
    rng = np.random.default_rng(0)
    check_parity(model, tmp_path, inputs=[padded([STEPS, 7, 0], rng)])
    _, _, result = check_parity(model, tmp_path, inputs=[padded([3], rng)])
    code = code_of(helper_source(result, "RNNLoop"))
    assert "mask.bool()" in code and "torch.where(real" in code
    assert "zero_output_for_mask" not in code and "hx" not in code
    assert ".flip(1), mask=" in result.module_path.read_text().replace("\n", "")


def test_two_loops_with_different_features_get_the_union(tmp_path, monkeypatch):
    """A masked GRU loop and an unmasked LSTM loop with recurrent dropout: one RNNLoop with
    both paths, each loop's step taking the dropout masks; parity in inference."""
    inp = keras.Input((STEPS, FEATURES_IN))
    masked = layers.Masking(0.0)(inp)
    gru = layers.GRU(4, activation="softsign")(masked)
    lstm = layers.LSTM(4, recurrent_dropout=0.3)(inp)
    model = keras.Model(inp, [gru, lstm], name="two_loops")
    rng = np.random.default_rng(1)
    _, _, result = check_parity(model, tmp_path, inputs=[padded([STEPS, 5, 9], rng)])
    loop = code_of(helper_source(result, "RNNLoop"))
    assert "mask.bool()" in loop and "self.recurrent_dropout" in loop
    assert "self.dropout " not in loop and "x_masks" not in loop  # no input dropout
    for name in ("GRULoop", "LSTMLoop"):
        assert "def step(self, x, states, h_masks)" in code_of(helper_source(result, name))

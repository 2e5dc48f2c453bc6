"""ReversibleEmbedding: the lookup and the reverse projection, tied and untied weights."""

import keras
import numpy as np
import pytest
from keras import layers
from parity import check_parity

import codegen
from codegen.api import generate

IDS = np.array([[1, 2, 3, 0, 9], [4, 4, 0, 7, 8], [5, 6, 7, 8, 9]], dtype="int32")


def _language_model(**options):
    ids = keras.Input((5,), dtype="int32")
    emb = layers.ReversibleEmbedding(10, 6, name="emb", **options)
    x = emb(ids)
    x = layers.Dense(6, activation="tanh")(x)
    return keras.Model(ids, [x, emb(x, reverse=True)], name="lm")


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"tie_weights": False},
        {"logit_soft_cap": 0.7},
        {"tie_weights": False, "logit_soft_cap": 2.0, "reverse_dtype": "float32"},
    ],
)
def test_both_directions(tmp_path, options):
    model = _language_model(**options)
    _, _, result = check_parity(model, tmp_path, inputs=[IDS])
    source = result.module_path.read_text()
    assert source.count("ReversibleEmbedding(10, 6") == 1  # one module for both calls
    assert "self.emb.reverse(" in source


def test_reverse_in_float64(tmp_path):
    hidden = keras.Input((4, 6))
    emb = layers.ReversibleEmbedding(10, 6, reverse_dtype="float64", name="emb")
    emb.build((None, 4))
    model = keras.Model(hidden, emb(hidden, reverse=True), name="head")
    _, _, result = check_parity(model, tmp_path)
    assert ".double()" in result.module_path.read_text()


def test_reverse_in_half_precision_is_refused():
    hidden = keras.Input((4, 6))
    emb = layers.ReversibleEmbedding(10, 6, reverse_dtype="bfloat16")
    emb.build((None, 4))
    with pytest.raises(codegen.UnsupportedError, match="reverse_dtype='bfloat16'"):
        generate(keras.Model(hidden, emb(hidden, reverse=True)), command="x")

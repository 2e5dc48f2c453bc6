"""Embedding against Keras 3: lookups of any index rank and dtype, masks, LoRA."""

import keras
import numpy as np
import pytest
from keras import layers
from parity import check_parity
from test_core import check_without_param_count

import codegen
from codegen.api import generate
from codegen.conversion.engine import convert_graph
from codegen.conversion.model import Options
from codegen.conversion.pipeline import converter_registry
from codegen.read.from_keras import read_model


@pytest.mark.parametrize("shape", [(), (7,), (3, 4)])
def test_index_ranks(tmp_path, shape):
    inp = keras.Input(shape, dtype="int32")
    out = layers.Embedding(12, 5)(inp)
    check_parity(keras.Model(inp, out, name="m"), tmp_path)


@pytest.mark.parametrize("dtype", ["int64", "float32"])
def test_index_dtypes(tmp_path, dtype):
    inp = keras.Input((6,), dtype=dtype)
    model = keras.Model(inp, layers.Embedding(12, 4)(inp), name="m")
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 12, size=(3, 6)).astype(dtype)
    if dtype == "float32":
        ids = ids + 0.75  # Keras truncates to int32
    _, _, result = check_parity(model, tmp_path, inputs=[ids])
    assert (".long()" in result.module_path.read_text()) == (dtype == "float32")


def test_into_dense(tmp_path):
    inp = keras.Input((9,), dtype="int32")
    x = layers.Embedding(10, 6, mask_zero=True, name="embedding")(inp)
    x = layers.Dense(4, activation="relu")(x)
    out = layers.Dense(2)(layers.Flatten()(x))
    _, _, result = check_parity(keras.Model(inp, out, name="m"), tmp_path)
    source = result.module_path.read_text()
    assert "self.embedding = nn.Embedding(10, 6)" in source
    assert "padding_idx" not in source  # a Keras mask is not torch's padding_idx


def test_mask_zero_into_pooling(tmp_path):
    # The mask reaches GlobalAveragePooling1D as a recorded ops.not_equal node.
    inp = keras.Input((8,), dtype="int32")
    x = layers.Embedding(10, 6, mask_zero=True)(inp)
    x = layers.Dense(6)(x)
    out = layers.GlobalAveragePooling1D()(x)
    ids = np.array([[3, 4, 5, 0, 0, 0, 0, 0], [1, 0, 2, 3, 0, 0, 0, 0], [9, 9, 9, 9, 9, 9, 9, 9]])
    check_parity(keras.Model(inp, out, name="m"), tmp_path, inputs=[ids.astype("int32")])


def test_shared_embedding(tmp_path):
    a = keras.Input((5,), dtype="int32", name="a")
    b = keras.Input((3,), dtype="int32", name="b")
    table = layers.Embedding(10, 4)
    out = layers.Concatenate(axis=1)([table(a), table(b)])
    _, _, result = check_parity(keras.Model([a, b], out, name="m"), tmp_path)
    assert result.module_path.read_text().count("nn.Embedding(") == 1


def test_input_length_from_an_old_config(tmp_path):
    # Keras 2 configs carry input_length; it only fixed the input shape.
    graph = read_model(_model())
    graph.calls[1].layer.config["input_length"] = 7
    convert_graph(graph, Options(), registry=converter_registry())


def _model():
    inp = keras.Input((7,), dtype="int32")
    return keras.Model(inp, layers.Embedding(10, 3)(inp), name="m")


@pytest.mark.parametrize("lora_alpha", [None, 6])
def test_lora_is_merged(tmp_path, lora_alpha):
    inp = keras.Input((7,), dtype="int32")
    layer = layers.Embedding(10, 4, lora_rank=2, lora_alpha=lora_alpha)
    model = keras.Model(inp, layer(inp), name="m")
    source = check_without_param_count(model, tmp_path)
    assert float(np.abs(layer.lora_embeddings_b.numpy()).max()) > 0
    assert "lora" not in source.split('"""', 2)[2].lower()


def test_quantized_is_unsupported():
    model = _model()
    model.layers[1].quantize("int8")
    with pytest.raises(codegen.UnsupportedError, match="quantized"):
        generate(model, command="x")

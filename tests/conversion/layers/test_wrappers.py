"""TimeDistributed against Keras 3: wrapped layers, a wrapped model, masks."""

import keras
import numpy as np
import pytest
from keras import layers
from parity import check_parity

import codegen
from codegen.api import generate


def source_of(result) -> str:
    return result.module_path.read_text()


def test_dense(tmp_path):
    inp = keras.Input((5, 6))
    out = layers.TimeDistributed(layers.Dense(4, activation="relu"), name="td")(inp)
    _, _, result = check_parity(keras.Model(inp, out, name="m"), tmp_path)
    source = source_of(result)
    assert "self.td = nn.Linear(6, 4)" in source
    assert "x = torch.relu(self.td(x.flatten(0, 1))).unflatten(0, (-1, 5))" in source


def test_dense_on_unknown_steps(tmp_path):
    inp = keras.Input((None, 6))
    out = layers.TimeDistributed(layers.Dense(3))(inp)
    _, _, result = check_parity(keras.Model(inp, out, name="m"), tmp_path)
    assert ".shape[0], -1)" in source_of(result)


def test_conv2d_on_5d_input(tmp_path):
    inp = keras.Input((4, 9, 8, 3))
    x = layers.TimeDistributed(layers.Conv2D(5, 3, strides=2, padding="same"), name="td1")(inp)
    x = layers.TimeDistributed(layers.Conv2D(6, 3, activation="relu"), name="td2")(x)
    x = layers.TimeDistributed(layers.MaxPooling2D(), name="td3")(x)
    _, _, result = check_parity(keras.Model(inp, x, name="m"), tmp_path)
    source = source_of(result)
    # Channels-first from the first convolution on: permuted at the input and output only.
    assert source.count(".permute(") == 2
    assert "self.td1 = nn.Conv2d(3, 5" in source


def test_crnn_head(tmp_path):
    # Conv features per frame, flattened, then a Dense per frame.
    inp = keras.Input((3, 6, 5, 2))
    x = layers.TimeDistributed(layers.Conv2D(4, 3, padding="same"))(inp)
    x = layers.TimeDistributed(layers.Flatten())(x)
    x = layers.TimeDistributed(layers.Dense(7))(x)
    check_parity(keras.Model(inp, x, name="m"), tmp_path)


def test_conv1d_and_batch_norm(tmp_path):
    inp = keras.Input((3, 10, 4))
    x = layers.TimeDistributed(layers.Conv1D(5, 3))(inp)
    x = layers.TimeDistributed(layers.BatchNormalization())(x)
    check_parity(keras.Model(inp, x, name="m"), tmp_path)


def test_weights_keep_the_keras_names(tmp_path):
    inp = keras.Input((4, 6))
    out = layers.TimeDistributed(layers.Dense(3, name="inner"), name="td")(inp)
    model = keras.Model(inp, out, name="m")
    check_parity(model, tmp_path)
    entries = {
        w.key: (w.keras_layer, w.keras_variable) for w in generate(model, command="x").top.weights
    }
    assert entries == {"td.weight": ("td", "inner/kernel"), "td.bias": ("td", "inner/bias")}


def test_nested_model(tmp_path):
    frame = keras.Input((6, 5, 2))
    y = layers.Conv2D(3, 3, activation="relu")(frame)
    y = layers.GlobalAveragePooling2D()(y)
    encoder = keras.Model(frame, layers.Dense(4)(y), name="frame_encoder")
    inp = keras.Input((3, 6, 5, 2))
    out = layers.TimeDistributed(encoder, name="td")(inp)
    _, _, result = check_parity(keras.Model(inp, out, name="m"), tmp_path)
    source = source_of(result)
    assert "class FrameEncoder(nn.Module)" in source
    assert "self.td = FrameEncoder()" in source


def test_shared(tmp_path):
    a = keras.Input((4, 6), name="a")
    b = keras.Input((3, 6), name="b")
    td = layers.TimeDistributed(layers.Dense(2), name="td")
    out = layers.Concatenate(axis=1)([td(a), td(b)])
    _, _, result = check_parity(keras.Model([a, b], out, name="m"), tmp_path)
    assert source_of(result).count("nn.Linear(") == 1


def test_embedding_on_masked_steps(tmp_path):
    # A Dense ignores the mask; the mask passes through to the attention after it.
    inp = keras.Input((5,), dtype="int32")
    x = layers.Embedding(10, 6, mask_zero=True)(inp)
    x = layers.TimeDistributed(layers.Dense(6))(x)
    out = layers.Attention()([x, x])
    ids = np.array([[1, 2, 3, 0, 0], [4, 0, 0, 0, 0], [5, 6, 7, 8, 9]], dtype="int32")
    check_parity(keras.Model(inp, out, name="m"), tmp_path, inputs=[ids])


def test_unsupported_inner_option_is_reported():
    inp = keras.Input((4, 6))
    dense = layers.Dense(3, name="inner")
    out = layers.TimeDistributed(dense, name="td")(inp)
    model = keras.Model(inp, out)
    original = dense.get_config
    dense.get_config = lambda: {**original(), "mystery": 3}
    try:
        with pytest.raises(codegen.UnsupportedError, match="mystery"):
            generate(model, command="x")
    finally:
        dense.get_config = original


@pytest.mark.parametrize("then", ["dense", "lstm_like", "output"])
def test_flatten_per_frame(tmp_path, then):
    # Frames flattened channels-first: a following TimeDistributed(Dense) reorders its
    # kernel rows, anything else gets the frames flattened in Keras's order.
    inp = keras.Input((3, 6, 5, 2))
    x = layers.TimeDistributed(layers.Conv2D(4, 3, padding="same"))(inp)
    x = layers.TimeDistributed(layers.Flatten())(x)
    if then == "dense":
        x = layers.TimeDistributed(layers.Dense(7))(x)
    elif then == "lstm_like":
        x = layers.GlobalAveragePooling1D()(layers.Dense(5)(x))
    _, _, result = check_parity(keras.Model(inp, x, name="m"), tmp_path)
    assert source_of(result).count(".permute(") == (1 if then == "dense" else 2)


def test_masked_input_to_a_layer_that_takes_masks_is_unsupported():
    inp = keras.Input((5,), dtype="int32")
    x = layers.Embedding(10, 6, mask_zero=True)(inp)
    out = layers.TimeDistributed(layers.Softmax())(x)
    with pytest.raises(codegen.UnsupportedError, match="masked input"):
        generate(keras.Model(inp, out), command="x")


def test_unsupported_inner_layer_is_named():
    inp = keras.Input((4, 6))
    out = layers.TimeDistributed(layers.Lambda(lambda t: t * 2))(inp)
    with pytest.raises(codegen.UnsupportedError, match="Lambda"):
        generate(keras.Model(inp, out), command="x")


def test_recurrent_layer_per_step(tmp_path):
    from codegen.conversion.pipeline import converter_registry

    registry = converter_registry(entry_points=False)

    if registry.lookup("LSTM") is None:
        pytest.skip("no LSTM converter")
    inp = keras.Input((3, 5, 4))
    out = layers.TimeDistributed(layers.LSTM(6), name="td")(inp)
    _, _, result = check_parity(keras.Model(inp, out, name="m"), tmp_path)
    assert "self.td(x.flatten(0, 1))" in source_of(result)

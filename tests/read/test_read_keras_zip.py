"""The file reader on Keras 3 files gives what Keras's own loader gives.

For ``.keras`` archives (and Keras 3's ``.h5`` writer) the TensorFlow-free reader must produce
the Graph :func:`codegen.read_keras.read_model` makes from ``keras.saving.load_model``: the
same calls in the same order, shapes, masks, configs and variables, hence the same
``model.py`` and state_dict.
"""

from pathlib import Path

import keras
import numpy as np
import pytest
from graph_compare import compare_graphs, same_port
from keras import layers
from parity import randomize

from codegen.errors import InputError
from codegen.read.from_file import read_file
from codegen.read.from_keras import load_keras_file, read_model

ROOT = Path(__file__).resolve().parents[2]


def check_against_keras(path: Path, configs: bool = True, live=None) -> None:
    """Against Keras's loader; against the saved model itself where Keras cannot load the
    file it wrote (Keras 3.15's .h5 writer loses Attention's score_mode and operations'
    constant arguments)."""
    ours = read_file(path, check_shapes=True)
    try:
        theirs = read_model(load_keras_file(path))
    except InputError:
        if live is None:
            raise
        theirs = read_model(live)
    diffs = compare_graphs(ours, theirs, configs=configs)
    assert not diffs, "\n".join(diffs[:20])
    same_source, same_state = same_port(ours, theirs)
    assert same_source and same_state


@pytest.mark.parametrize("name", ["bn_conv", "mnist_cnn", "small_resnet"])
def test_samples(name):
    check_against_keras(ROOT / "samples" / f"{name}.keras")


def _many_layers():
    img = keras.Input((9, 9, 3), name="img")
    seq = keras.Input((5,), dtype="int32", name="seq")
    y = layers.Conv2D(4, 3)(img)
    y = layers.DepthwiseConv2D(3, padding="same")(y)
    y = layers.SeparableConv2D(5, 3)(y)
    y = layers.Conv2DTranspose(3, 3)(y)
    y = layers.BatchNormalization(center=False)(y)
    y = layers.LayerNormalization()(y)
    y = layers.GroupNormalization(groups=1)(y)
    y = layers.PReLU()(y)
    inner = keras.Sequential(
        [keras.Input((7, 7, 3)), layers.Conv2D(2, 1), layers.BatchNormalization()], name="inner"
    )
    y = layers.Dense(7)(layers.GlobalAveragePooling2D()(inner(y)))
    shared = layers.Dense(7, name="shared")
    a = shared(y)
    s = layers.Embedding(20, 6, mask_zero=True)(seq)
    s = layers.LSTM(4, return_sequences=True)(s)
    s = layers.GRU(4, return_sequences=True)(s)
    s = layers.SimpleRNN(6, return_sequences=True)(s)
    s = layers.Bidirectional(layers.LSTM(3, return_sequences=True))(s)
    s = layers.MultiHeadAttention(2, 3)(s, s)
    s = layers.EinsumDense("abc,cd->abd", output_shape=(None, 4), bias_axes="d")(s)
    s = layers.Attention(use_scale=True)([s, s])
    s = layers.GlobalAveragePooling1D()(layers.TimeDistributed(layers.Dense(7))(s))
    b = shared(s)
    n = layers.Normalization(mean=[1.0] * 7, variance=[2.0] * 7)(b)
    adapted = layers.Normalization(axis=-1)
    adapted.adapt(np.random.default_rng(0).random((10, 7)).astype("float32"))
    out = layers.Add()([a, adapted(n)])
    x = keras.Input((5, 4), name="steps")
    r = layers.RNN(layers.LSTMCell(3), return_sequences=True, return_state=True)(x)
    g = layers.GroupQueryAttention(head_dim=4, num_query_heads=4, num_key_value_heads=2)(x, x)
    d = layers.Dense(3, lora_rank=2)(x)
    return keras.Model([img, seq, x], [out, *r, g, d], name="many")


def _masked_sequential():
    inner_in = keras.Input((6,))
    tower = keras.Model(inner_in, layers.Dense(3, activation="relu")(inner_in), name="tower")
    return keras.Sequential(
        [
            keras.Input((5,), dtype="int32"),
            layers.Embedding(10, 6, mask_zero=True),
            layers.LSTM(6, return_sequences=True),
            layers.Dropout(0.1),
            layers.LSTM(6),
            tower,
            layers.Dense(2),
        ],
        name="masked_sequential",
    )


def _masking_and_conv_lstm():
    x = keras.Input((5, 4))
    y = layers.GRU(3)(layers.Masking()(x))
    v = keras.Input((3, 6, 6, 2))
    c = layers.ConvLSTM2D(2, 3, padding="same", return_sequences=True)(v)
    return keras.Model([x, v], [y, c], name="masking")


@pytest.mark.parametrize("build", [_many_layers, _masked_sequential, _masking_and_conv_lstm])
@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_models_saved_by_keras3(build, suffix, tmp_path):
    model = build()
    randomize(model)
    # An adapted Normalization computes with constants snapshotted at its last
    # finalize_state(); a loaded file computes with the variables it stores. Snapshot the
    # randomized variables so the live model (the fallback reference) computes what the file says.
    for layer in model._flatten_layers():
        if isinstance(layer, layers.Normalization):
            layer.finalize_state()
    path = tmp_path / f"model{suffix}"
    model.save(path)
    check_against_keras(path, configs=suffix == ".keras", live=model)


def test_keras_ops_and_slicing(tmp_path):
    """keras.ops calls in a saved functional model (read_keras keeps GetItem's index a list)."""
    from keras import ops

    import codegen
    from codegen.check.compare import keras_outputs

    x = keras.Input((8, 8, 3))
    y = ops.relu(layers.Conv2D(4, 3, padding="same")(x)) * 2.0 + 1.0
    z = ops.mean(y[..., :2], axis=[1, 2])
    w = ops.concatenate([ops.reshape(y[:, 1:5, ::2, 0], (-1, 16)), z], axis=-1)
    model = keras.Model(x, [ops.clip(w, -1.0, 1.0), 1.0 - y[:, None, 0]])
    randomize(model)
    path = tmp_path / "ops.keras"
    model.save(path)
    result = codegen.convert(path, tmp_path / "out", reader="file", verify=True)
    assert result.passed, result.errors
    arrays = [np.random.default_rng(0).standard_normal((2, 8, 8, 3)).astype("float32")]
    assert len(keras_outputs(model, arrays)) == 2


from applications import APPLICATIONS as ALL_APPLICATIONS  # noqa: E402

APPLICATIONS = ["MobileNetV3Small", "EfficientNetB0"]
# Every other keras.applications architecture (run with -m slow).
SLOW_APPLICATIONS = sorted(set(ALL_APPLICATIONS) - set(APPLICATIONS))


def _application(name: str, tmp_path: Path) -> Path:
    builder = getattr(keras.applications, name)
    kwargs = {"weights": None, "classifier_activation": None}
    if not name.startswith("NASNet"):
        kwargs["input_shape"] = (75, 83, 3)
    model = builder(**kwargs)
    path = tmp_path / f"{name}.keras"
    model.save(path)
    return path


@pytest.mark.parametrize("name", APPLICATIONS)
def test_applications(name, tmp_path):
    check_against_keras(_application(name, tmp_path))


@pytest.mark.slow
@pytest.mark.parametrize("name", SLOW_APPLICATIONS)
def test_more_applications(name, tmp_path):
    check_against_keras(_application(name, tmp_path))


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_reversible_embedding_untied(tmp_path, suffix):
    ids = keras.Input((5,), dtype="int32")
    emb = layers.ReversibleEmbedding(10, 6, tie_weights=False, logit_soft_cap=2.0, name="emb")
    x = layers.Dense(6, activation="tanh")(emb(ids))
    model = keras.Model(ids, emb(x, reverse=True))
    randomize(model)
    model.save(tmp_path / f"lm{suffix}")
    check_against_keras(tmp_path / f"lm{suffix}", live=model)


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_spectral_normalization(tmp_path, suffix):
    inp = keras.Input((6, 5, 2))
    x = layers.SpectralNormalization(layers.Conv2D(3, 3), power_iterations=2)(inp)
    x = layers.SpectralNormalization(layers.Dense(4))(layers.Flatten()(x))
    model = keras.Model(inp, x)
    randomize(model)
    model.save(tmp_path / f"sn{suffix}")
    check_against_keras(tmp_path / f"sn{suffix}", live=model)

"""TimeDistributed read from files of every era, with every kind of wrapped layer.

One model wraps a layer of each family (convolution, normalization, pooling, reshaping, core,
recurrent, embedding, a nested model), with a mask carried through a wrapper. It is written by
Keras 3 (``.keras`` and ``.h5``: the file reader must give the Graph Keras's loader gives) and
by tf-keras (``.h5`` as tf.keras 2.13+ writes it, and rewritten as tf.keras 2.4-2.12 and
Keras 2.0-2.3 wrote it: wrapped layers named by class name only, without ``module``).
"""

import keras
import pytest
from legacy import check_file_port, rewrite_config, save, tf_keras
from parity import check_parity, randomize
from test_read_keras_zip import check_against_keras

import codegen


def build(K):
    """The same model with Keras 3 (``keras``) or tf-keras (``K``)."""
    L = K.layers
    frames = L.Input((3, 8, 7, 2), name="frames")
    x = L.TimeDistributed(L.Conv2D(4, 3, strides=2, padding="same"), name="td_conv2d")(frames)
    x = L.TimeDistributed(L.BatchNormalization(), name="td_bn")(x)
    x = L.TimeDistributed(L.MaxPooling2D(), name="td_pool")(x)
    x = L.TimeDistributed(L.Flatten(), name="td_flatten")(x)
    x = L.TimeDistributed(L.Dense(6, activation="relu"), name="td_dense")(x)
    x = L.TimeDistributed(L.Dropout(0.5), name="td_dropout")(x)
    x = L.LSTM(5, return_sequences=True)(x)
    out_frames = L.TimeDistributed(L.Dense(3), name="td_head")(x)

    signals = L.Input((4, 9, 3), name="signals")
    y = L.TimeDistributed(L.Conv1D(5, 3), name="td_conv1d")(signals)
    y = L.TimeDistributed(L.LSTM(4), name="td_lstm")(y)
    step = K.Sequential([L.Dense(5, activation="tanh"), L.Dense(2)], name="step_model")
    step.build((None, 4))
    out_signals = L.TimeDistributed(step, name="td_model")(y)

    tokens = L.Input((4, 5), dtype="int32", name="tokens")
    z = L.TimeDistributed(L.Embedding(10, 3), name="td_embedding")(tokens)
    z = L.TimeDistributed(L.GlobalAveragePooling1D(), name="td_gap")(z)
    ids = L.Input((6,), dtype="int32", name="ids")
    w = L.Embedding(10, 4, mask_zero=True)(ids)
    w = L.TimeDistributed(L.Dense(4), name="td_masked")(w)  # the mask passes through
    w = L.GRU(3)(w)
    return K.Model([frames, signals, tokens, ids], [out_frames, out_signals, z, w], name="td")


def _strip_modules(value):
    """A config as tf.keras <= 2.12 wrote it: classes named by class name only."""
    if isinstance(value, dict):
        return {
            k: _strip_modules(v)
            for k, v in value.items()
            if k not in ("module", "registered_name", "build_config")
        }
    if isinstance(value, list):
        return [_strip_modules(v) for v in value]
    return value


@pytest.fixture(scope="module")
def tf_keras_file(tmp_path_factory):
    K = tf_keras()
    model = build(K)
    path = save(model, tmp_path_factory.mktemp("td") / "tf_keras.h5")
    return model, path


def test_live_keras3_model(tmp_path):
    check_parity(build(keras), tmp_path)


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_keras3_files_read_as_keras_reads_them(tmp_path, suffix):
    model = build(keras)
    randomize(model)
    path = tmp_path / f"td{suffix}"
    model.save(path)
    check_against_keras(path, live=model)


@pytest.mark.parametrize(
    "era, version",
    [("tf.keras 2.13+", None), ("tf.keras 2.4-2.12", "2.10.0"), ("Keras 2.2", "2.2.4")],
)
def test_tf_keras_files(tf_keras_file, tmp_path, era, version):
    model, path = tf_keras_file
    if version is not None:
        path = rewrite_config(path, tmp_path / "old.h5", _strip_modules, version)
    result = check_file_port(model, path, tmp_path, source_checks=True)
    assert "self.td_dense = nn.Linear(" in result.module_path.read_text()


def test_lstm_autoencoder_of_tf_keras_2_10(tmp_path):
    """The file of the report: LSTM -> RepeatVector -> LSTM -> TimeDistributed(Dense), .h5."""
    K = tf_keras()
    L = K.layers
    model = K.Sequential(
        [
            L.LSTM(8, input_shape=(5, 3)),
            L.RepeatVector(5),
            L.LSTM(8, return_sequences=True),
            L.TimeDistributed(L.Dense(3)),
        ]
    )
    path = save(model, tmp_path / "autoencoder.h5")
    old = rewrite_config(path, tmp_path / "autoencoder210.h5", _strip_modules, "2.10.0")
    check_file_port(model, old, tmp_path)


def test_custom_wrapped_layer_is_still_refused(tmp_path):
    K = tf_keras()
    L = K.layers
    model = K.Sequential([L.TimeDistributed(L.Dense(3), input_shape=(4, 2))])
    path = save(model, tmp_path / "custom.h5")

    def custom(config):
        inner = config["config"]["layers"][-1]["config"]["layer"]
        inner["module"] = "my_package.layers"
        return config

    edited = rewrite_config(path, tmp_path / "custom_inner.h5", custom)
    with pytest.raises(codegen.UnsupportedError, match="wrapped custom layer 'Dense'"):
        codegen.convert(edited, tmp_path / "out", reader="file", force=True)

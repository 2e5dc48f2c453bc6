"""ops.argmax/argmin (Keras 3), tf.math.argmax/argmin and tf.clip_by_norm (tf.keras TFOpLambda)."""

import keras
import numpy as np
import pytest
from keras import layers, ops
from legacy import check_file_port, save, tf_keras
from parity import check_parity


def test_keras_ops(tmp_path):
    inp = keras.Input((6, 5, 3))
    x = layers.Conv2D(4, 1)(inp)  # channels-first inside: the axes move
    outs = [
        ops.argmax(x, axis=-1),
        ops.argmin(x, axis=1, keepdims=True),
        ops.argmax(x, axis=None, keepdims=True),  # over the batch too
        ops.argmin(x, axis=2),
    ]
    _, _, result = check_parity(keras.Model(inp, outs), tmp_path)
    assert "torch.argmax(" in result.module_path.read_text()


def test_ties_pick_the_first_index(tmp_path):
    inp = keras.Input((6,))
    model = keras.Model(inp, [ops.argmax(inp, axis=-1), ops.argmin(inp, axis=-1)])
    rounded = np.round(np.random.default_rng(0).standard_normal((4, 6))).astype("float32")
    check_parity(model, tmp_path, inputs=[rounded])


@pytest.fixture(scope="module")
def tf():
    tf_keras()
    import tensorflow

    return tensorflow


def test_tf_functions(tf, tmp_path):
    K = tf_keras()
    x = K.Input((4, 5))
    outs = [
        tf.math.argmax(x, axis=-1),  # int64 by default
        tf.math.argmin(x, 1, output_type=tf.int32),
        tf.argmax(x),  # axis 0: the batch axis
    ]
    model = K.Model(x, outs)
    check_file_port(model, save(model, tmp_path / "arg.h5"), tmp_path, batch_sizes=(3,))


def test_clip_by_norm(tf, tmp_path):
    K = tf_keras()
    x = K.Input((4, 5))
    outs = [
        tf.clip_by_norm(x, 1.5, axes=[-1]),
        tf.clip_by_norm(x, 3.0, axes=[1, 2]),
        tf.clip_by_norm(x * 0.01, 2.0),  # the whole tensor; under the bound: unchanged
        tf.clip_by_norm(x, 0.5),
    ]
    model = K.Model(x, outs)
    check_file_port(model, save(model, tmp_path / "clip.h5"), tmp_path, batch_sizes=(1, 3))

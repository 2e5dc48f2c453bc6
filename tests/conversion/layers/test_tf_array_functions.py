"""tf.split, tf.unstack, tf.math.top_k, tf.one_hot, tf.pad, tf.linalg.matmul's transpose and
adjoint flags, tf.math.cumsum/cumprod's exclusive and reverse (tf.keras TFOpLambda nodes in
.h5 files), ported through the file reader and compared with tf-keras, dtypes included."""

import numpy as np
import pytest
from legacy import check_file_port, save, tf_keras

import codegen


@pytest.fixture(scope="module")
def tf():
    tf_keras()
    import tensorflow

    return tensorflow


def _port(model, tmp_path, name, **kwargs):
    path = save(model, tmp_path / f"{name}.h5")
    return check_file_port(model, path, tmp_path, dtypes=True, **kwargs)


def test_split_and_unstack(tf, tmp_path):
    K = tf_keras()
    x = K.Input((4, 6, 3))
    y = K.layers.Conv2D(6, 1)(x)  # channels-first inside: the split axes move
    outs = [
        *tf.split(y, 3, axis=-1),
        *tf.split(y, [1, -1, 2], 2),
        *tf.split(y, [3, 1], axis=-3),
        *tf.unstack(y, axis=1),
        *tf.unstack(y[:, 0], axis=-1),
    ]
    model = K.Model(x, [o * 1.0 for o in outs])
    result = _port(model, tmp_path, "split")
    assert len(result.output_perms) == 3 + 3 + 2 + 4 + 6


def test_split_of_an_unknown_size_is_refused(tf, tmp_path):
    K = tf_keras()
    x = K.Input((None, 4))
    model = K.Model(x, tf.split(x, 2, axis=1))
    path = save(model, tmp_path / "unknown.h5")
    with pytest.raises(codegen.UnsupportedError, match="tf.split along axis 1"):
        codegen.convert(path, tmp_path / "out", reader="file", force=True)


def test_top_k(tf, tmp_path):
    K = tf_keras()
    x = K.Input((4, 7))
    y = K.layers.Dense(7)(x)
    values, indices = tf.math.top_k(y, k=3)
    top1 = tf.math.top_k(x)  # k=1
    model = K.Model(
        x, [values, indices, top1.values, top1.indices, tf.gather(y[0, 0], indices[0, 0])]
    )
    _port(model, tmp_path, "top_k")


def test_top_k_ties_and_int64_indices(tf, tmp_path):
    K = tf_keras()
    x = K.Input((9,))
    values, indices = tf.math.top_k(x, k=5, index_type=tf.int64)
    model = K.Model(x, [values, indices])

    def rounded(batch):  # many equal values: the lower index first, as TensorFlow
        return [np.round(np.random.default_rng(batch).standard_normal((batch, 9))).astype("f4")]

    _port(model, tmp_path, "ties", inputs=rounded)


def test_top_k_unsorted_is_refused(tf, tmp_path):
    K = tf_keras()
    x = K.Input((5,))
    model = K.Model(x, tf.math.top_k(x, 2, sorted=False).values)
    path = save(model, tmp_path / "unsorted.h5")
    with pytest.raises(codegen.UnsupportedError, match="sorted=False"):
        codegen.convert(path, tmp_path / "out", reader="file", force=True)


def test_one_hot(tf, tmp_path):
    K = tf_keras()
    i = K.Input((3, 5), dtype="int32")
    j = K.Input((4,), dtype="int64")
    outs = [
        tf.one_hot(i, 6),
        tf.one_hot(i, 4, on_value=2.5, off_value=-1.0, axis=1),
        tf.one_hot(j, 3, axis=0),  # before the batch axis
        tf.one_hot(j, 5, dtype=tf.int32),
        tf.one_hot(j, 2, on_value=7, off_value=3),  # int32 from the values
        tf.one_hot(i, 3, on_value=True, off_value=False, dtype=tf.bool, axis=-1),
        tf.one_hot(i, 2, axis=3),
    ]
    model = K.Model([i, j], outs)

    def indices(batch):  # negative and too large indices: a row of off_value
        rng = np.random.default_rng(batch)
        return [
            rng.integers(-2, 8, size=(batch, 3, 5)).astype("int32"),
            rng.integers(-1, 6, size=(batch, 4)).astype("int64"),
        ]

    _port(model, tmp_path, "one_hot", inputs=indices)


def test_pad(tf, tmp_path):
    K = tf_keras()
    x = K.Input((5, 6, 3))
    y = K.layers.Conv2D(4, 1)(x)  # channels-first inside
    outs = [
        tf.pad(y, [[0, 0], [1, 2], [2, 0], [0, 1]], constant_values=1.5),
        tf.pad(y, [[0, 0], [2, 1], [0, 0], [0, 0]]),
        tf.pad(y, [[0, 0], [2, 3], [1, 4], [0, 2]], mode="REFLECT"),
        tf.pad(y, [[1, 2], [0, 0], [3, 1], [2, 0]], mode="SYMMETRIC"),  # the batch axis too
        tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="reflect"),
        tf.pad(x[:, 0, 0], [[0, 0], [3, 3]], mode="Symmetric"),
    ]
    model = K.Model(x, outs)
    result = _port(model, tmp_path, "pad", batch_sizes=(3,))
    assert "mirror_pad(" in result.module_path.read_text()


def test_matmul_flags(tf, tmp_path):
    K = tf_keras()
    a = K.Input((4, 5))
    b = K.Input((4, 3))
    c = K.Input((3, 5))
    outs = [
        tf.linalg.matmul(a, b, transpose_a=True),
        tf.linalg.matmul(a, c, transpose_b=True),
        tf.linalg.matmul(b, a, adjoint_a=True, adjoint_b=False) * 1.0,
        tf.matmul(c, b, adjoint_a=True, adjoint_b=True),
    ]
    _port(K.Model([a, b, c], outs), tmp_path, "matmul")


def test_cumsum_and_cumprod_options(tf, tmp_path):
    K = tf_keras()
    x = K.Input((4, 5, 3))
    y = K.layers.Conv2D(3, 1)(x)  # channels-first inside
    i = K.Input((6,), dtype="int32")
    outs = [
        tf.math.cumsum(y, axis=1, exclusive=True),
        tf.math.cumsum(y, axis=-1, reverse=True),
        tf.math.cumsum(y, axis=2, exclusive=True, reverse=True),
        tf.math.cumprod(y, axis=-1, exclusive=True),
        tf.math.cumprod(y * 0.5, axis=1, exclusive=True, reverse=True),
        tf.math.cumsum(i, axis=1, exclusive=True, reverse=True),
        tf.math.cumsum(y, axis=0, reverse=True),  # over the batch
    ]
    result = _port(K.Model([x, i], outs), tmp_path, "cumulative")
    assert "tf_cumulative(" in result.module_path.read_text()


def test_einsum_is_refused_with_the_reason(tf, tmp_path):
    """tf-keras records ``tf.einsum(equation, *inputs)`` without its tensors (it cannot load
    the file back either)."""
    K = tf_keras()
    x = K.Input((4, 6))
    model = K.Model(x, tf.einsum("bij,bkj->bik", x, x))
    path = save(model, tmp_path / "einsum.h5")
    with pytest.raises(codegen.UnsupportedError, match="does not record its tensor operands"):
        codegen.convert(path, tmp_path / "out", reader="file", force=True)


def test_keras_ops(tmp_path):
    """The same operations recorded by Keras 3 (ops.top_k, ops.one_hot, ops.pad)."""
    import keras
    from keras import layers, ops
    from parity import check_parity

    x = keras.Input((5, 6, 3))
    i = keras.Input((4,), dtype="int32")
    y = layers.Conv2D(4, 1)(x)  # channels-first inside
    values, indices = ops.top_k(y, 2)
    outs = [
        values,
        indices,
        ops.one_hot(i, 5),
        ops.one_hot(i, 3, axis=0, dtype="int32"),
        ops.pad(y, [[0, 0], [1, 2], [0, 1], [2, 0]], constant_values=0.5),
        ops.pad(y, [[0, 0], [2, 1], [1, 1], [0, 0]], mode="symmetric"),
        ops.pad(y, [[0, 0], [2, 1], [1, 3], [0, 0]], mode="reflect"),
    ]
    check_parity(keras.Model([x, i], outs), tmp_path)

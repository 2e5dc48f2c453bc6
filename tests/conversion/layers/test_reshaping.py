"""Flatten, Reshape, Permute, RepeatVector: Keras-order semantics with as few permutes as possible."""

import keras
import pytest
from keras import layers
from parity import check_parity


def _source(result) -> str:
    return result.module_path.read_text()


@pytest.mark.parametrize("channels_first", [False, True])
def test_flatten_dense_reorders_kernel_rows(tmp_path, channels_first):
    inp = keras.Input((11, 9, 3))
    x = layers.Conv2D(5, 3, activation="relu")(inp)
    x = layers.MaxPooling2D()(x)
    a = layers.Dense(7)(layers.Flatten()(x))
    b = layers.Dense(4)(layers.Dropout(0.3)(layers.Flatten()(x)))  # through Dropout
    _, _, result = check_parity(keras.Model(inp, [a, b]), tmp_path, channels_first=channels_first)
    source = _source(result)
    # Only the input permute: the Dense kernels absorb Keras's H·W·C flatten order.
    assert source.count(".permute(") == (0 if channels_first else 1), source


def test_flatten_needs_keras_order(tmp_path):
    inp = keras.Input((7, 6, 3))
    x = layers.Conv2D(4, 3)(inp)
    flat = layers.Flatten()(x)  # a model output: must be in Keras order
    shared = layers.Dense(3)  # a shared Dense cannot hold two row orders
    outs = [flat, shared(layers.Flatten()(x)), shared(layers.Flatten()(layers.Conv2D(4, 3)(inp)))]
    outs.append(layers.Reshape((4, -1))(layers.Flatten()(x)))  # a non-Dense consumer
    _, _, result = check_parity(keras.Model(inp, outs), tmp_path)
    assert _source(result).count(".permute(0, 2, 3, 1), 1)") == 4


def test_flatten_without_permute_when_order_agrees(tmp_path):
    inp = keras.Input((9, 8, 3))
    x = layers.Conv2D(6, 3)(inp)
    pooled = layers.GlobalAveragePooling2D(keepdims=True)(x)  # (N, 1, 1, 6)
    outs = [layers.Flatten()(pooled), layers.Flatten()(layers.Conv2D(5, (7, 6))(x))]
    _, _, result = check_parity(keras.Model(inp, outs), tmp_path)
    assert _source(result).count(".permute(") == 1  # the input only


def test_flatten_channels_first_format(tmp_path):
    inp = keras.Input((3, 6, 5))
    x = layers.MaxPooling2D(2, 1, data_format="channels_first")(inp)  # (N, C, H, W) in Keras
    outs = [
        layers.Flatten(data_format="channels_first")(x),
        layers.Dense(3)(layers.Flatten(data_format="channels_first")(x)),
        layers.Flatten()(x),
        layers.Dense(2)(layers.Flatten()(x)),
    ]
    inp2 = keras.Input((6, 5, 3))
    y = layers.Conv2D(4, 3)(inp2)  # channels_last data flattened as if channels_first
    outs += [
        layers.Flatten(data_format="channels_first")(y),
        layers.Dense(3)(layers.Flatten(data_format="channels_first")(y)),
    ]
    for channels_first in (False, True):
        check_parity(keras.Model([inp, inp2], outs), tmp_path, channels_first=channels_first)


def test_flatten_sequences_and_vectors(tmp_path):
    seq, vec = keras.Input((None, 4)), keras.Input(())
    outs = [layers.Flatten()(layers.Conv1D(3, 2)(seq)), layers.Flatten()(vec)]
    fixed = keras.Input((6, 4))
    outs.append(layers.Dense(2)(layers.Flatten()(layers.Conv1D(3, 2)(fixed))))
    check_parity(keras.Model([seq, vec, fixed], outs), tmp_path, spatial=7)


@pytest.mark.parametrize("channels_first", [False, True])
def test_reshape_on_spatial_tensor(tmp_path, channels_first):
    inp = keras.Input((6, 4, 3))
    x = layers.Conv2D(8, 3, padding="same")(inp)
    tokens = layers.Reshape((-1, 8))(x)  # (N, H·W, C): a channels-first (N, C, L) reshape
    outs = [tokens, layers.Conv1D(2, 3)(tokens)]
    outs.append(layers.Reshape((6, 32))(x))  # mixes W and C: needs Keras order
    outs.append(layers.Reshape((3, 2, 4, 8))(x))  # splits H only
    outs.append(layers.Reshape((24, 2, 4))(x))  # splits C only
    outs.append(layers.Reshape((6, 4, 8))(x))  # no-op
    _, _, result = check_parity(keras.Model(inp, outs), tmp_path, channels_first=channels_first)
    source = _source(result)
    assert ".reshape(-1, 8, 24)" in source and ".permute(0, 2, 3, 1).reshape(-1, 6, 32)" in source
    assert ".reshape(-1, 8, 3, 2, 4)" in source and ".reshape(-1, 8, 6, 4)" in source


def test_reshape_unknown_size(tmp_path):
    inp = keras.Input((None, None, 3))
    x = layers.Conv2D(4, 3)(inp)
    outs = [layers.Reshape((-1, 4))(x), layers.Reshape((-1,))(x), layers.Reshape((-1, 2, 2))(x)]
    _, _, result = check_parity(keras.Model(inp, outs), tmp_path, spatial=9)
    assert ".size(0), 4, -1)" in _source(result)


def test_reshape_vectors(tmp_path):
    inp = keras.Input((24,))
    x = layers.Dense(24)(inp)
    grid = layers.Reshape((2, 3, 4))(x)
    outs = [
        grid,
        layers.Reshape((-1, 6))(x),
        layers.Reshape((1, 1, 24))(x),
        layers.Conv2D(3, 1)(layers.Reshape((1, 1, 24))(x)),  # channels-first without permute
        layers.Conv2D(3, 1)(grid),  # a real grid: Keras order, then the conv permutes
        layers.Reshape((24,))(grid),
    ]
    _, _, result = check_parity(keras.Model(inp, outs), tmp_path)
    assert ".reshape(-1, 24, 1, 1)" in _source(result)


@pytest.mark.parametrize("channels_first", [False, True])
def test_permute(tmp_path, channels_first):
    seq = keras.Input((10, 4))
    swapped = layers.Permute((2, 1))(seq)  # (N, 4, 10) read by Conv1D as 4 steps of 10
    outs = [swapped, layers.Conv1D(3, 2)(swapped)]
    img = keras.Input((5, 6, 3))
    x = layers.Conv2D(4, 1)(img)
    outs += [layers.Permute(p)(x) for p in [(3, 1, 2), (2, 1, 3), (1, 3, 2), (3, 2, 1)]]
    outs.append(
        layers.AveragePooling2D(2, 1, data_format="channels_first")(layers.Permute((3, 1, 2))(x))
    )
    outs.append(layers.Conv2D(2, 2)(layers.Permute((2, 1, 3))(x)))
    check_parity(keras.Model([seq, img], outs), tmp_path, channels_first=channels_first)
    _, _, result = check_parity(keras.Model(seq, outs[1]), tmp_path, channels_first=channels_first)
    assert _source(result).count(".permute(") == (0 if channels_first else 1)  # the output


def test_repeat_vector(tmp_path):
    inp = keras.Input((5,))
    x = layers.Dense(6)(inp)
    rep = layers.RepeatVector(4)(x)
    outs = [rep, layers.Conv1D(3, 2)(rep), layers.RepeatVector(1)(inp)]
    check_parity(keras.Model(inp, outs), tmp_path)


@pytest.mark.parametrize("channels_first", [False, True])
def test_reshape_into_channels_first(tmp_path, channels_first):
    # A flat image with one channel, and a squeeze-and-excitation gate: both reshape straight
    # into channels-first, since axes of size 1 may sit anywhere.
    inp = keras.Input((42,))
    img = layers.Reshape((7, 6, 1))(inp)
    x = layers.Conv2D(4, 3, padding="same")(img)
    gate = layers.Dense(4, activation="sigmoid")(layers.GlobalAveragePooling2D()(x))
    x = layers.Multiply()([x, layers.Reshape((1, 1, 4))(gate)])
    out = layers.Conv2D(2, 3)(x)
    _, _, result = check_parity(keras.Model(inp, out), tmp_path, channels_first=channels_first)
    source = _source(result)
    assert ".reshape(-1, 1, 7, 6)" in source and ".reshape(-1, 4, 1, 1)" in source
    assert source.count(".permute(") == (0 if channels_first else 1)  # the output only

"""Keras masks through Concatenate and merge layers, and into nested models, in .h5 files
(the file reader makes the mask operations the config does not record), compared with the
tf-keras model that wrote the file."""

import numpy as np
import pytest
from legacy import check_file_port, save, tf_keras


@pytest.fixture(scope="module")
def K():
    return tf_keras()


def _inputs(batch, tokens=True, steps=(6, 6), features=3):
    """Token ids with padding zeros and float sequences with all-zero (masked) steps."""
    rng = np.random.default_rng(batch)
    ids = rng.integers(1, 10, size=(batch, steps[0])).astype("int32")
    ids[:, -2:] = 0
    ids[0, 1] = 0
    seq = rng.standard_normal((batch, steps[1], features)).astype("float32")
    seq[:, :1] = 0
    seq[-1, 3:] = 0
    return [ids, seq] if tokens else [seq]


def test_concatenate_of_masked_and_unmasked(K, tmp_path):
    L = K.layers
    ids = L.Input((6,), dtype="int32")
    seq = L.Input((6, 3))
    embedded = L.Embedding(10, 4, mask_zero=True)(ids)
    masked = L.Masking()(seq)
    both = L.Concatenate()([embedded, masked])  # Keras 2: the masks and-ed
    one = L.Concatenate(axis=-1)([L.Dense(2)(seq), embedded])  # the first input unmasked
    outs = [
        L.LSTM(3)(both),
        L.GRU(2, return_sequences=True)(one),
        L.LSTM(2)(L.Concatenate(axis=1)([embedded, L.Masking()(L.Dense(4)(seq))])),  # on time
    ]
    model = K.Model([ids, seq], outs)
    check_file_port(model, save(model, tmp_path / "concat.h5"), tmp_path, inputs=_inputs)


def test_merge_of_different_masks(K, tmp_path):
    L = K.layers
    ids = L.Input((6,), dtype="int32")
    seq = L.Input((6, 4))
    added = L.Add()([L.Embedding(10, 4, mask_zero=True)(ids), L.Masking()(seq)])
    averaged = L.Average()([L.Dense(4)(seq), L.Masking()(seq)])  # one masked input
    model = K.Model([ids, seq], [L.LSTM(3)(added), L.SimpleRNN(2)(averaged)])
    inputs = lambda batch: _inputs(batch, features=4)
    check_file_port(model, save(model, tmp_path / "merge.h5"), tmp_path, inputs=inputs)

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


def test_masks_into_nested_models(K, tmp_path):
    L = K.layers
    inner_in = L.Input((6, 4))
    inner = K.Model(inner_in, L.LSTM(3)(L.Dense(4)(inner_in)), name="inner")
    pair_a, pair_b = L.Input((6, 4)), L.Input((6, 3))
    pair = K.Model(  # one masked input of two, concatenated inside
        [pair_a, pair_b], L.GRU(2)(L.Concatenate()([pair_a, pair_b])), name="pair"
    )
    ids = L.Input((6,), dtype="int32")
    seq = L.Input((6, 3))
    embedded = L.Embedding(10, 4, mask_zero=True)(ids)
    model = K.Model([ids, seq], [inner(embedded), pair([embedded, seq])])
    check_file_port(model, save(model, tmp_path / "nested.h5"), tmp_path, inputs=_inputs)


def test_masks_out_of_nested_models(K, tmp_path):
    """Keras 2 passes a nested model's output masks on (Functional.compute_mask)."""
    L = K.layers
    encoder_in = L.Input((6,), dtype="int32")
    encoder = K.Model(encoder_in, L.Embedding(10, 4, mask_zero=True)(encoder_in), name="enc")
    steps_in = L.Input((6, 4))
    steps = K.Model(steps_in, L.LSTM(3, return_sequences=True)(steps_in), name="steps")
    ids = L.Input((6,), dtype="int32")
    seq = L.Input((6, 3))
    model = K.Model([ids, seq], L.GRU(2)(steps(encoder(ids))))
    check_file_port(model, save(model, tmp_path / "nested_out.h5"), tmp_path, inputs=_inputs)


def test_masks_into_nested_sequential(K, tmp_path):
    L = K.layers
    model = K.Sequential(
        [
            L.Input((6,), dtype="int32"),
            L.Embedding(10, 4, mask_zero=True),
            K.Sequential([L.Dense(5), L.LSTM(3, return_sequences=True)]),
            L.GRU(2),
        ]
    )
    inputs = lambda batch: _inputs(batch)[:1]
    check_file_port(model, save(model, tmp_path / "seq.h5"), tmp_path, inputs=inputs)


def test_masks_into_nested_models_of_keras3(tmp_path):
    """A .keras file: the masks a nested model is called with are recorded; inside, Keras 3
    computes them again (Concatenate: any over the concatenated masks)."""
    import keras
    from keras import layers as L

    a, b = keras.Input((6, 4)), keras.Input((6, 3))
    inner = keras.Model([a, b], L.LSTM(3)(L.Concatenate()([a, b])), name="inner")
    ids = keras.Input((6,), dtype="int32")
    seq = keras.Input((6, 3))
    embedded = L.Embedding(10, 4, mask_zero=True)(ids)
    model = keras.Model([ids, seq], inner([embedded, L.Masking()(seq)]))  # both masked
    from parity import randomize

    randomize(model)
    path = tmp_path / "nested.keras"
    model.save(path)
    check_file_port(model, path, tmp_path, inputs=_inputs)


def test_live_nested_model_with_masks_converts_through_a_saved_file(tmp_path):
    """The live reader sees the graph Keras recorded for the nested model, without the
    masks Keras passes in; such a model is read from a saved .keras file instead."""
    import keras
    import numpy as np
    from keras import layers as L
    from parity import randomize

    import codegen

    inner_in = keras.Input((5, 4))
    inner = keras.Model(inner_in, L.LSTM(3)(inner_in), name="inner")
    ids = keras.Input((5,), dtype="int32")
    model = keras.Model(ids, inner(L.Embedding(10, 4, mask_zero=True)(ids)))
    randomize(model)
    # padding in every row (the mask matters), one row all padding but its first token
    tokens = np.array([[3, 0, 0, 0, 0], [1, 2, 3, 4, 0], [5, 6, 0, 0, 0]], dtype="int32")
    np.savez(tmp_path / "inputs.npz", tokens)
    result = codegen.convert(
        model, tmp_path / "out", force=True, verify=True, inputs=tmp_path / "inputs.npz"
    )
    assert result.report.passed
    ref = model.predict(tokens, verbose=0)
    plain = L.Embedding(10, 4)
    unmasked = keras.Model(ids, inner(plain(ids)))
    plain.set_weights(model.layers[1].get_weights())
    assert not np.allclose(ref, unmasked.predict(tokens, verbose=0), atol=1e-3)  # masks matter


def test_merge_masks_inside_a_keras3_nested_model(tmp_path):
    """Keras 3 or-s the masks of a merge layer (none when an input is unmasked)."""
    import keras
    from keras import layers as L
    from parity import randomize

    a, b, c = keras.Input((6, 4)), keras.Input((6, 4)), keras.Input((6, 4))
    inner = keras.Model(
        [a, b, c],
        [L.LSTM(3)(L.Add()([a, b])), L.GRU(2)(L.Subtract()([a, c]))],  # c is unmasked
        name="inner",
    )
    ids = keras.Input((6,), dtype="int32")
    seq = keras.Input((6, 4))
    embedded = L.Embedding(10, 4, mask_zero=True)(ids)
    model = keras.Model([ids, seq], inner([embedded, L.Masking()(seq), seq]))
    randomize(model)
    path = tmp_path / "merge.keras"
    model.save(path)
    check_file_port(model, path, tmp_path, inputs=lambda batch: _inputs(batch, features=4))

"""Recurrent layers: LSTM, GRU, SimpleRNN, Bidirectional, masks (Masking, Embedding(mask_zero)).

Every model runs over 50 steps (tolerance 1e-4 relative to max|ref|). Masked batches are
hand-made: right- and left-padded sequences of different real lengths, masks with holes and
sequences without any real step.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
import keras
import numpy as np
import parity
import pytest
import tensorflow as tf
import torch
from keras import layers
from parity import check_parity, from_torch, randomize, to_torch

from codegen.errors import UnsupportedError
from codegen.check.compare import keras_outputs

STEPS = 50
FEATURES = 6
VOCAB = 30
TOL = 1e-4
KINDS = ["LSTM", "GRU", "SimpleRNN"]
TORCH = {"LSTM": "nn.LSTM(", "GRU": "nn.GRU(", "SimpleRNN": "nn.RNN("}
LOOP = {"LSTM": "LSTMLoop(", "GRU": "GRULoop(", "SimpleRNN": "SimpleRNNLoop("}


def rnn(kind, units, **kwargs):
    return getattr(layers, kind)(units, **kwargs)


_GRAPHS: dict[int, tuple] = {}


def graph_outputs(model, inputs, training=False):
    """``keras_outputs`` with the model traced once into a TensorFlow graph: the same Keras
    computation (bit-identical results), but a 50-step loop is not run op by op in Python."""
    if training:
        return keras_outputs(model, inputs, training=True)
    if id(model) not in _GRAPHS:
        spec = [tf.TensorSpec([None, *t.shape[1:]], t.dtype) for t in model.inputs]
        function = tf.function(
            lambda *xs: model(list(xs) if len(xs) > 1 else xs[0], training=False),
            input_signature=spec,
        )
        _GRAPHS[id(model)] = (model, function)
    result = _GRAPHS[id(model)][1](*inputs)
    if not isinstance(result, (list, tuple)):
        result = [result]
    return [np.asarray(r) for r in result]


@pytest.fixture(autouse=True)
def _graph_mode_keras(monkeypatch):
    monkeypatch.setattr(parity, "keras_outputs", graph_outputs)
    yield
    _GRAPHS.clear()


def assert_same(model, torch_model, result, arrays, tol=TOL):
    """The port's outputs on ``arrays`` match Keras's (inference)."""
    expected = graph_outputs(model, arrays)
    with torch.no_grad():
        got = torch_model(*[to_torch(a, p) for a, p in zip(arrays, result.input_perms)])
    got = got if isinstance(got, (tuple, list)) else [got]
    assert len(got) == len(expected)
    for i, (ref, out) in enumerate(zip(expected, got)):
        out = from_torch(out, result.output_perms[i])
        assert out.shape == ref.shape, (i, out.shape, ref.shape)
        delta = float(np.max(np.abs(out.astype(np.float64) - ref)))
        bound = tol * max(1.0, float(np.max(np.abs(ref))))
        assert delta <= bound, f"output {i}: max |delta| {delta:.3g} > {bound:.3g}"


def source_of(result) -> str:
    return result.module_path.read_text()


def compact(source: str) -> str:
    """The source without whitespace, to look for code however black wrapped it."""
    return "".join(source.split())


# -- padded batches -----------------------------------------------------------------------
def real_steps(lengths, side, rng, steps=STEPS) -> np.ndarray:
    """(batch, steps) booleans: ``lengths[i]`` real steps, padded on ``side``; "holes" puts
    masked steps in the middle too."""
    real = np.zeros((len(lengths), steps), dtype=bool)
    for i, n in enumerate(lengths):
        if side == "left":
            real[i, steps - n :] = True
        else:
            real[i, :n] = True
            if side == "holes" and n > 4:
                real[i, rng.choice(np.arange(1, n - 1), size=n // 3, replace=False)] = False
    return real


def padded_features(real, rng, features=FEATURES, value=0.0) -> np.ndarray:
    x = rng.standard_normal(real.shape + (features,)).astype(np.float32)
    x[~real] = value
    return x


def padded_tokens(real, rng) -> np.ndarray:
    tokens = rng.integers(1, VOCAB, size=real.shape).astype("int32")
    tokens[~real] = 0
    return tokens


LENGTHS = [[STEPS, 31, 7], [23]]  # batch sizes 3 and 1


def masked_batches(make, sides=("right", "left", "holes"), lengths=LENGTHS):
    rng = np.random.default_rng(3)
    return [make(real_steps(n, side, rng), rng) for side in sides for n in lengths]


# -- unmasked layers ----------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_layer_options(tmp_path, kind):
    inp = keras.Input((STEPS, FEATURES))
    outs = [
        rnn(kind, 5)(inp),
        rnn(kind, 5, return_sequences=True)(inp),
        rnn(kind, 5, go_backwards=True, return_sequences=True)(inp),
        rnn(kind, 4, go_backwards=True)(inp),
        rnn(kind, 4, use_bias=False, unroll=True, return_sequences=True)(inp),
        *rnn(kind, 3, return_state=True)(inp),
        *rnn(kind, 3, return_state=True, return_sequences=True, go_backwards=True)(inp),
    ]
    if kind == "LSTM":
        outs.append(rnn(kind, 4, unit_forget_bias=False)(inp))
    _, _, result = check_parity(keras.Model(inp, outs, name=kind.lower()), tmp_path, tol=TOL)
    source = source_of(result)
    assert source.count(f"= {TORCH[kind]}") == 7 + (kind == "LSTM")
    assert "Loop" not in source


@pytest.mark.parametrize("kind", KINDS)
def test_initial_states(tmp_path, kind):
    n_states = 2 if kind == "LSTM" else 1
    inp = keras.Input((STEPS, FEATURES))
    states = [keras.Input((5,), name=f"state_{i}") for i in range(n_states)]
    first = rnn(kind, 5, return_sequences=True, return_state=True)(inp, initial_state=states)
    backwards = rnn(kind, 5, go_backwards=True)(inp, initial_state=states)
    loop = rnn(kind, 5, recurrent_dropout=0.2, return_sequences=True)(
        first[0], initial_state=first[1:]
    )
    model = keras.Model([inp, *states], [*first, backwards, loop])
    _, _, result = check_parity(model, tmp_path, tol=TOL)
    assert LOOP[kind] in source_of(result)


# -- step-by-step modules -------------------------------------------------------------------
LOOP_CONFIGS = {
    "LSTM": [
        {"activation": "relu", "recurrent_activation": "hard_sigmoid"},
        {"recurrent_activation": "hard_sigmoid", "use_bias": False, "go_backwards": True},
        {"activation": "softsign", "recurrent_activation": "linear", "return_state": True},
        {"recurrent_dropout": 0.3, "dropout": 0.2, "return_sequences": True},
    ],
    "GRU": [
        {"reset_after": False},
        {"reset_after": False, "use_bias": False, "return_sequences": True},
        {"reset_after": False, "recurrent_activation": "hard_sigmoid", "return_state": True},
        {"activation": "relu", "go_backwards": True},
        {"recurrent_dropout": 0.3, "return_sequences": True},
    ],
    "SimpleRNN": [
        {"activation": "sigmoid"},
        {"activation": "softmax", "return_sequences": True},
        {"activation": "linear", "use_bias": False, "return_state": True},
        {"recurrent_dropout": 0.3, "dropout": 0.1, "return_sequences": True, "go_backwards": True},
    ],
}


@pytest.mark.parametrize("kind", KINDS)
def test_step_by_step(tmp_path, kind):
    """Configurations nn.LSTM/nn.GRU/nn.RNN cannot compute: a Keras cell loop."""
    inp = keras.Input((STEPS, FEATURES))
    outs = []
    for config in LOOP_CONFIGS[kind]:
        out = rnn(kind, 5, **config)(inp)
        outs.extend(out if isinstance(out, (list, tuple)) else [out])
    model = keras.Model(inp, outs, name=f"{kind.lower()}_loop")
    randomize(model, scale=0.3)
    _, _, result = check_parity(model, tmp_path, tol=TOL, randomize_weights=False)
    source = source_of(result)
    assert source.count(f"= {LOOP[kind]}") == len(LOOP_CONFIGS[kind])
    assert TORCH[kind] not in source


def test_relu_simple_rnn_is_nn_rnn(tmp_path):
    inp = keras.Input((STEPS, FEATURES))
    model = keras.Model(inp, rnn("SimpleRNN", 5, activation="relu", return_sequences=True)(inp))
    randomize(model, scale=0.2)
    _, _, result = check_parity(model, tmp_path, tol=TOL, randomize_weights=False)
    assert 'nn.RNN(6, 5, nonlinearity="relu", batch_first=True)' in source_of(result)


def test_rnn_of_one_cell(tmp_path):
    """keras.layers.RNN around an LSTMCell/GRUCell/SimpleRNNCell, after a Conv1D (which runs
    channels-first inside the port)."""
    inp = keras.Input((STEPS, FEATURES))
    x = layers.Conv1D(5, 3, padding="same")(inp)
    outs = [
        layers.RNN(layers.LSTMCell(4), return_sequences=True)(x),
        *layers.RNN(layers.GRUCell(4, reset_after=False), return_state=True, go_backwards=True)(x),
        layers.Bidirectional(layers.RNN(layers.SimpleRNNCell(3)), merge_mode="sum")(x),
    ]
    _, _, result = check_parity(keras.Model(inp, outs), tmp_path, tol=TOL)
    source = compact(source_of(result))
    assert "nn.LSTM(5,4,batch_first=True)" in source and "GRULoop(5,4,reset_after=False)" in source
    assert "nn.RNN(5,3,batch_first=True,bidirectional=True)" in source


# -- masks -----------------------------------------------------------------------------------
def masked_branches(kind, x, loop):
    extra = {"recurrent_activation": "hard_sigmoid"} if loop and kind != "SimpleRNN" else {}
    if loop and kind == "SimpleRNN":
        extra = {"activation": "softsign"}
    outs = [
        rnn(kind, 5, **extra)(x),
        rnn(kind, 5, return_sequences=True, **extra)(x),
        rnn(kind, 4, go_backwards=True, return_sequences=True, **extra)(x),
        rnn(kind, 4, go_backwards=True, **extra)(x),
        rnn(kind, 3, zero_output_for_mask=True, return_sequences=True, **extra)(x),
        rnn(kind, 3, zero_output_for_mask=True, **extra)(x),
        *rnn(kind, 3, return_state=True, **extra)(x),
    ]
    return outs


@pytest.mark.parametrize("loop", [False, True], ids=["torch", "loop"])
@pytest.mark.parametrize("kind", KINDS)
def test_masking_layer(tmp_path, kind, loop):
    """Masking -> recurrent layers on right-/left-padded batches and masks with holes."""
    inp = keras.Input((STEPS, FEATURES))
    x = layers.Masking(0.0)(inp)
    model = keras.Model(inp, masked_branches(kind, x, loop), name=f"masked_{kind.lower()}")
    batches = masked_batches(lambda real, rng: [padded_features(real, rng)])
    _, torch_model, result = check_parity(model, tmp_path, tol=TOL, inputs=batches[0])
    for arrays in batches[1:]:
        assert_same(model, torch_model, result, arrays)
    source = source_of(result)
    if loop:
        assert TORCH[kind] not in source and "rnn_masked" not in source
    else:
        assert "Loop" not in source and "rnn_masked(self." in source


@pytest.mark.parametrize("loop", [False, True], ids=["torch", "loop"])
def test_masked_sequence_without_real_steps(tmp_path, loop):
    """A sequence with every step masked keeps its initial state and outputs zeros."""
    inp = keras.Input((STEPS, FEATURES))
    h0, c0 = keras.Input((5,)), keras.Input((5,))
    x = layers.Masking(0.5)(inp)
    extra = {"activation": "softsign"} if loop else {}
    outs = [
        *rnn("LSTM", 5, return_state=True, return_sequences=True, **extra)(
            x, initial_state=[h0, c0]
        ),
        *rnn("GRU", 5, return_state=True, go_backwards=True, **extra)(x, initial_state=h0),
        rnn("LSTM", 4, **extra)(x),
    ]
    model = keras.Model([inp, h0, c0], outs)
    rng = np.random.default_rng(5)

    def batch(lengths, side):
        states = [rng.standard_normal((len(lengths), 5)).astype(np.float32) for _ in range(2)]
        return [padded_features(real_steps(lengths, side, rng), rng, value=0.5), *states]

    _, torch_model, result = check_parity(
        model, tmp_path, tol=TOL, inputs=batch([9, 0, STEPS], "right")
    )
    assert_same(model, torch_model, result, batch([0, 20, 0], "left"))
    assert_same(model, torch_model, result, batch([0], "holes"))


def test_embedding_mask_zero_stack(tmp_path):
    """Embedding(mask_zero) -> LSTM -> Dropout -> GRU(go_backwards) -> SimpleRNN: the same mask
    (Keras passes it on unreversed) reaches each layer."""
    tokens = keras.Input((STEPS,), dtype="int32")
    x = layers.Embedding(VOCAB, 8, mask_zero=True)(tokens)
    x = layers.LSTM(6, return_sequences=True)(x)
    x = layers.Dropout(0.3)(x)
    x = layers.GRU(5, return_sequences=True, go_backwards=True)(x)
    pooled = layers.GlobalAveragePooling1D()(x)
    last = layers.SimpleRNN(4)(x)
    model = keras.Model(tokens, [last, pooled])
    batches = masked_batches(lambda real, rng: [padded_tokens(real, rng)])
    _, torch_model, result = check_parity(model, tmp_path, tol=TOL, inputs=batches[0])
    for arrays in batches[1:]:
        assert_same(model, torch_model, result, arrays)
    source = source_of(result)
    assert (
        "nn.LSTM(8, 6, batch_first=True)" in source and "nn.GRU(6, 5, batch_first=True)" in source
    )


# -- Bidirectional -----------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_bidirectional_merge_modes(tmp_path, kind):
    inp = keras.Input((STEPS, FEATURES))
    outs = []
    for merge_mode in ["concat", "sum", "mul", "ave", None]:
        for sequences in (True, False):
            layer = layers.Bidirectional(
                rnn(kind, 4, return_sequences=sequences), merge_mode=merge_mode
            )
            out = layer(inp)
            outs.extend(out if isinstance(out, (list, tuple)) else [out])
    model = keras.Model(inp, outs, name=f"bidirectional_{kind.lower()}")
    _, _, result = check_parity(model, tmp_path, tol=TOL)
    source = source_of(result)
    assert source.count("bidirectional=True") == 10
    assert "BidirectionalRNN" not in source


@pytest.mark.parametrize("loop", [False, True], ids=["torch", "loop"])
@pytest.mark.parametrize("kind", KINDS)
def test_bidirectional_masked(tmp_path, kind, loop):
    tokens = keras.Input((STEPS,), dtype="int32")
    x = layers.Embedding(VOCAB, 6, mask_zero=True)(tokens)
    extra = {"activation": "softsign"} if loop else {}
    outs = [
        layers.Bidirectional(rnn(kind, 4, return_sequences=True, **extra))(x),
        layers.Bidirectional(rnn(kind, 4, **extra), merge_mode="sum")(x),
        *layers.Bidirectional(rnn(kind, 3, return_sequences=True, **extra), merge_mode=None)(x),
        *layers.Bidirectional(rnn(kind, 3, return_state=True, **extra), merge_mode="mul")(x),
    ]
    model = keras.Model(tokens, outs, name=f"bidirectional_masked_{kind.lower()}")
    batches = masked_batches(
        lambda real, rng: [padded_tokens(real, rng)], lengths=[[STEPS, 31, 0], [23]]
    )
    _, torch_model, result = check_parity(model, tmp_path, tol=TOL, inputs=batches[0])
    for arrays in batches[1:]:
        assert_same(model, torch_model, result, arrays)
    source = source_of(result)
    assert ("BidirectionalRNN" in source) == loop


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_bidirectional_states(tmp_path, kind):
    """return_state (forward states, then backward ones) and initial states, with a mask."""
    n = 2 if kind == "LSTM" else 1
    inp = keras.Input((STEPS, FEATURES))
    states = [keras.Input((4,), name=f"state_{i}") for i in range(2 * n)]
    x = layers.Masking()(inp)
    outs = [
        *layers.Bidirectional(rnn(kind, 4, return_state=True))(inp, initial_state=states),
        *layers.Bidirectional(
            rnn(kind, 4, return_sequences=True, return_state=True), merge_mode="ave"
        )(x, initial_state=states),
        *layers.Bidirectional(rnn(kind, 4, return_state=True, recurrent_dropout=0.1))(
            x, initial_state=states
        ),
        *layers.Bidirectional(rnn(kind, 3, return_state=True), merge_mode=None)(x),
    ]
    model = keras.Model([inp, *states], outs)
    rng = np.random.default_rng(2)
    batch = [padded_features(real_steps([STEPS, 0, 17], "holes", rng), rng)]
    batch += [rng.standard_normal((3, 4)).astype(np.float32) for _ in states]
    check_parity(model, tmp_path, tol=TOL, inputs=batch)


def test_bidirectional_backward_layer(tmp_path):
    """A backward_layer of its own; with a different activation it needs two modules."""
    inp = keras.Input((STEPS, FEATURES))
    x = layers.Masking()(inp)
    same = layers.Bidirectional(
        layers.LSTM(4, return_sequences=True),
        backward_layer=layers.LSTM(4, return_sequences=True, go_backwards=True),
    )(x)
    other = layers.Bidirectional(
        layers.GRU(4),
        backward_layer=layers.GRU(4, go_backwards=True, reset_after=False),
        merge_mode="sum",
    )(x)
    dropout = layers.Bidirectional(layers.LSTM(4, dropout=0.3, return_sequences=True))(x)
    model = keras.Model(inp, [same, other, dropout])
    batches = masked_batches(
        lambda real, rng: [padded_features(real, rng)], sides=("right", "holes")
    )
    _, torch_model, result = check_parity(model, tmp_path, tol=TOL, inputs=batches[0])
    for arrays in batches[1:]:
        assert_same(model, torch_model, result, arrays)
    source = compact(source_of(result))
    assert "nn.LSTM(6,4,batch_first=True,bidirectional=True)" in source
    assert "BidirectionalRNN(nn.GRU(6,4,batch_first=True),GRULoop(6,4,reset_after=False))" in source
    assert (
        "BidirectionalRNN(nn.LSTM(6,4,batch_first=True),nn.LSTM(6,4,batch_first=True),dropout=0.3"
        in source
    )


# -- dropout in training mode ---------------------------------------------------------------------
@pytest.mark.parametrize("recurrent", [False, True], ids=["dropout", "recurrent_dropout"])
@pytest.mark.parametrize("kind", KINDS)
def test_training_dropout(tmp_path, monkeypatch, kind, recurrent):
    """Identity at inference; in training, given Keras's dropout masks, exactly Keras."""
    units, steps, rate, recurrent_rate = 6, 12, 0.3, (0.4 if recurrent else 0.0)
    inp = keras.Input((steps, FEATURES))
    layer = rnn(kind, units, return_sequences=True, dropout=rate, recurrent_dropout=recurrent_rate)
    model = keras.Model(inp, layer(inp))
    _, torch_model, result = check_parity(model, tmp_path)
    assert (LOOP[kind] in source_of(result)) == recurrent

    rng = np.random.default_rng(7)
    x = rng.standard_normal((3, steps, FEATURES)).astype(np.float32)

    def draw(shape, r):
        return ((rng.random(shape) >= r) / (1 - r)).astype(np.float32)

    # Keras draws one mask per gate when it has recurrent dropout (not SimpleRNN).
    count = {"LSTM": 4, "GRU": 3, "SimpleRNN": 1}[kind] if recurrent else 1
    x_masks = [draw((3, FEATURES), rate) for _ in range(count)]
    h_masks = [draw((3, units), recurrent_rate) for _ in range(count)]
    split = recurrent and kind != "SimpleRNN"
    layer.cell._dropout_mask = x_masks if split else x_masks[0]
    if recurrent:
        layer.cell._recurrent_dropout_mask = h_masks if split else h_masks[0]
    expected = keras_outputs(model, [x], training=True)[0]

    queue = [np.stack(x_masks), np.stack(h_masks)] if recurrent else [x_masks[0][:, None]]

    def given_masks(input, p=0.5, training=True, inplace=False):
        assert training
        mask = torch.from_numpy(queue.pop(0))
        assert mask.shape == input.shape
        return mask

    torch_model.train()
    with torch.no_grad():
        free = torch_model(torch.from_numpy(x)).numpy()
        monkeypatch.setattr(torch.nn.functional, "dropout", given_masks)
        got = torch_model(torch.from_numpy(x)).numpy()
    assert not queue
    assert np.max(np.abs(got - expected)) <= TOL * max(1.0, np.max(np.abs(expected)))
    assert np.max(np.abs(free - expected)) > 1e-3  # really random without the given masks


# -- ConvLSTM ---------------------------------------------------------------------------------------
def test_conv_lstm2d(tmp_path):
    inp = keras.Input((STEPS, 7, 6, 3))
    outs = [
        layers.ConvLSTM2D(4, 3)(inp),
        layers.ConvLSTM2D(4, (2, 3), padding="same", return_sequences=True)(inp),
        layers.ConvLSTM2D(3, 3, strides=2, padding="same", go_backwards=True)(inp),
        layers.ConvLSTM2D(
            3,
            2,
            dilation_rate=2,
            use_bias=False,
            return_sequences=True,
            recurrent_activation="hard_sigmoid",
        )(inp),
        *layers.ConvLSTM2D(
            2, 3, strides=(2, 1), padding="same", return_state=True, recurrent_dropout=0.2
        )(inp),
    ]
    model = keras.Model(inp, outs)
    randomize(model, scale=0.3)
    _, _, result = check_parity(model, tmp_path, tol=TOL, randomize_weights=False)
    source = source_of(result)
    assert source.count("= ConvLSTMLoop(") == 5
    assert ".permute(0, 1, 4, 2, 3)" in source  # frames channels-first
    assert "padding=(0, 1, 1, 1)" in source  # TensorFlow's "same" with strides


def test_conv_lstm1d_states_and_mask(tmp_path):
    """Initial states (Keras (N, L, filters)) and a (N, T) mask passed explicitly."""
    inp = keras.Input((STEPS, 9, 3))
    real = keras.Input((STEPS,), dtype="bool")
    h0, c0 = keras.Input((7, 4)), keras.Input((7, 4))
    layer = layers.ConvLSTM1D(4, 3, return_sequences=True, return_state=True)
    outs = [
        *layer(inp, initial_state=[h0, c0], mask=real),
        layers.ConvLSTM1D(4, 4, strides=2, padding="same", zero_output_for_mask=True)(
            inp, mask=real
        ),
    ]
    model = keras.Model([inp, real, h0, c0], outs)
    rng = np.random.default_rng(4)
    for lengths, side in (([STEPS, 0, 13], "holes"), ([20], "left")):
        mask = real_steps(lengths, side, rng)
        batch = [rng.standard_normal((len(lengths), STEPS, 9, 3)).astype(np.float32), mask]
        batch += [rng.standard_normal((len(lengths), 7, 4)).astype(np.float32) for _ in range(2)]
        if side == "holes":
            _, torch_model, result = check_parity(model, tmp_path, tol=TOL, inputs=batch)
        else:
            assert_same(model, torch_model, result, batch)


def test_conv_lstm_training_dropout(tmp_path, monkeypatch):
    """ConvLSTM draws one (full-size) dropout mask per gate, recurrent dropout or not."""
    inp = keras.Input((8, 5, 4, 3))
    layer = layers.ConvLSTM2D(2, 3, padding="same", dropout=0.3, recurrent_dropout=0.2)
    model = keras.Model(inp, layer(inp))
    _, torch_model, _ = check_parity(model, tmp_path)
    rng = np.random.default_rng(8)
    x = rng.standard_normal((2, 8, 5, 4, 3)).astype(np.float32)
    x_masks = [((rng.random((2, 5, 4, 3)) >= 0.3) / 0.7).astype(np.float32) for _ in range(4)]
    h_masks = [((rng.random((2, 5, 4, 2)) >= 0.2) / 0.8).astype(np.float32) for _ in range(4)]
    layer.cell._dropout_mask, layer.cell._recurrent_dropout_mask = x_masks, h_masks
    expected = keras_outputs(model, [x], training=True)[0]
    queue = [np.stack(m).transpose(0, 1, 4, 2, 3).copy() for m in (x_masks, h_masks)]
    monkeypatch.setattr(
        torch.nn.functional, "dropout", lambda input, *a, **k: torch.from_numpy(queue.pop(0))
    )
    torch_model.train()
    with torch.no_grad():
        got = torch_model(torch.from_numpy(x)).numpy()
    assert not queue
    assert np.max(np.abs(got - expected)) <= TOL * max(1.0, np.max(np.abs(expected)))


# -- Masking, unsupported options -------------------------------------------------------------------
def test_masking_layer_alone(tmp_path):
    inp = keras.Input((STEPS, FEATURES))
    x = layers.Masking(mask_value=0.25)(inp)
    model = keras.Model(inp, [x, layers.GlobalAveragePooling1D()(x)])
    batches = masked_batches(lambda real, rng: [padded_features(real, rng, value=0.25)])
    _, torch_model, result = check_parity(model, tmp_path, inputs=batches[0])
    for arrays in batches[1:]:
        assert_same(model, torch_model, result, arrays, tol=1e-5)


def test_unsupported_options(tmp_path):
    inp = keras.Input((STEPS, FEATURES), batch_size=2)
    outs = [
        layers.LSTM(4, stateful=True, name="stateful_lstm")(inp),
        layers.RNN([layers.GRUCell(3), layers.GRUCell(2)], name="stacked_cells")(inp),
        layers.Bidirectional(layers.GRU(3, stateful=True), name="stateful_bidirectional")(inp),
        layers.Bidirectional(layers.ConvLSTM1D(2, 1), name="bidirectional_conv")(
            layers.Reshape((STEPS, FEATURES, 1))(inp)
        ),
    ]
    with pytest.raises(UnsupportedError) as info:
        check_parity(keras.Model(inp, outs), tmp_path)
    text = str(info.value)
    assert "'stateful_lstm' (LSTM): stateful=True" in text
    assert "'stacked_cells' (RNN): RNN of a StackedRNNCells cell" in text
    assert "'stateful_bidirectional' (Bidirectional): stateful=True" in text
    assert "'bidirectional_conv' (Bidirectional): Bidirectional around ConvLSTM1D" in text

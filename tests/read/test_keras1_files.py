"""Keras 1.x .h5 files (2016-2017), read as Keras 2 read them.

No Keras 1 runs here, so the fixtures are written by hand with h5py in Keras 1's layout:
root attributes ``keras_version`` ("1.2.2"), ``backend`` and ``model_config`` (Keras 1
class and option names: ``Convolution2D(nb_filter, nb_row, nb_col, border_mode, subsample,
dim_ordering)``, ``Dense(output_dim)``, ``Merge(mode)``, inbound nodes of three items), and
a ``model_weights`` group with one group per layer whose ``weight_names`` are Keras 1's
``<layer>_W``/``<layer>_b``, the kernels in Keras 1's layout (``dim_ordering="th"``:
``(filters, channels, rows, cols)``; the Theano backend stores them flipped). The reference
is a Keras 3 model built from the same weights, moved to Keras 3's layout by hand.
"""

import json

import h5py
import keras
import numpy as np
import pytest
from keras import layers
from legacy import check_file_port

import codegen


def _write(path, config, weights, backend="tensorflow"):
    """A Keras 1.2 model file; ``weights``: ``{layer: [(name, array), ...]}`` in order."""
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = b"1.2.2"
        f.attrs["backend"] = backend.encode()
        f.attrs["model_config"] = json.dumps(config).encode()
        group = f.create_group("model_weights")
        group.attrs["layer_names"] = [name.encode() for name in weights]
        for name, arrays in weights.items():
            layer = group.create_group(name)
            layer.attrs["weight_names"] = [w.encode() for w, _ in arrays]
            for w, array in arrays:
                layer.create_dataset(w, data=array)
    return path


def _layer(class_name, name, **config):
    return {"class_name": class_name, "config": {"name": name, "trainable": True, **config}}


# The options every Keras 1 recurrent layer saved, at their usual values.
RECURRENT = {
    "activation": "tanh",
    "inner_activation": "sigmoid",
    "dropout_W": 0.0,
    "dropout_U": 0.0,
    "consume_less": "cpu",
    "unroll": False,
    "stateful": False,
    "go_backwards": False,
    "init": "glorot_uniform",
    "inner_init": "orthogonal",
    "W_regularizer": None,
    "U_regularizer": None,
    "b_regularizer": None,
}


def input_dense(name, units, input_shape, activation="linear"):
    """A Keras 1 Dense as the first layer of a Sequential (it carries the input shape)."""
    return _layer(
        "Dense",
        name,
        output_dim=units,
        activation=activation,
        bias=True,
        batch_input_shape=[None, *input_shape],
        input_dtype="float32",
    )


def _random(shape, rng):
    return rng.standard_normal(shape).astype("float32") * 0.3


def _inputs(shape):
    return lambda batch: [
        np.random.default_rng(batch).standard_normal((batch, *shape)).astype("f4")
    ]


@pytest.mark.parametrize("backend", ["tensorflow", "theano"])
def test_th_ordered_sequential(backend, tmp_path):
    rng = np.random.default_rng(0)
    kernel1, bias1 = _random((4, 3, 3, 3), rng), _random((4,), rng)  # (filters, channels, r, c)
    kernel2, bias2 = _random((5, 4, 2, 2), rng), _random((5,), rng)
    dense, dense_b = _random((5 * 3 * 3, 6), rng), _random((6,), rng)
    config = {
        "class_name": "Sequential",
        "config": [
            _layer(
                "Convolution2D",
                "convolution2d_1",
                nb_filter=4,
                nb_row=3,
                nb_col=3,
                init="glorot_uniform",
                activation="relu",
                border_mode="same",
                subsample=[1, 1],
                dim_ordering="th",
                W_regularizer=None,
                b_regularizer=None,
                activity_regularizer=None,
                W_constraint=None,
                b_constraint=None,
                bias=True,
                batch_input_shape=[None, 3, 8, 8],
                input_dtype="float32",
            ),
            _layer(
                "MaxPooling2D",
                "maxpooling2d_1",
                pool_size=[2, 2],
                strides=[2, 2],
                border_mode="valid",
                dim_ordering="th",
            ),
            _layer(
                "Convolution2D",
                "convolution2d_2",
                nb_filter=5,
                nb_row=2,
                nb_col=2,
                init="glorot_uniform",
                activation="linear",
                border_mode="valid",
                subsample=[1, 1],
                dim_ordering="th",
                bias=True,
            ),
            _layer("Flatten", "flatten_1"),
            _layer("Dropout", "dropout_1", p=0.5),
            _layer(
                "Dense",
                "dense_1",
                output_dim=6,
                init="glorot_uniform",
                activation="softmax",
                bias=True,
                input_dim=None,
            ),
        ],
    }
    weights = {
        "convolution2d_1": [("convolution2d_1_W", kernel1), ("convolution2d_1_b", bias1)],
        "maxpooling2d_1": [],
        "convolution2d_2": [("convolution2d_2_W", kernel2), ("convolution2d_2_b", bias2)],
        "flatten_1": [],
        "dropout_1": [],
        "dense_1": [("dense_1_W", dense), ("dense_1_b", dense_b)],
    }
    path = _write(tmp_path / "keras1.h5", config, weights, backend)

    def keras3(kernel):  # (filters, channels, rows, cols) -> (rows, cols, channels, filters)
        kernel = np.transpose(kernel, (2, 3, 1, 0))
        return kernel[::-1, ::-1] if backend == "theano" else kernel  # Theano convolves

    x = keras.Input((3, 8, 8))
    y = layers.Permute((2, 3, 1))(x)  # the same computation channels-last
    conv1 = layers.Conv2D(4, 3, padding="same", activation="relu")
    y = layers.MaxPooling2D()(conv1(y))
    conv2 = layers.Conv2D(5, 2)
    y = layers.Permute((3, 1, 2))(conv2(y))  # flattened in Keras 1's (channels, rows, cols)
    head = layers.Dense(6, activation="softmax")
    model = keras.Model(x, head(layers.Flatten()(y)))
    conv1.set_weights([keras3(kernel1), bias1])
    conv2.set_weights([keras3(kernel2), bias2])
    head.set_weights([dense, dense_b])
    check_file_port(model, path, tmp_path, inputs=_inputs((3, 8, 8)))


def test_functional_model_with_merge(tmp_path):
    rng = np.random.default_rng(1)
    w = {n: (_random((5, 4), rng), _random((4,), rng)) for n in ("dense_1", "dense_2")}
    conv, conv_b = _random((2, 1, 5, 3), rng), _random((3,), rng)  # Keras 1 Convolution1D
    nodes = lambda *names: [[[n, 0, 0] for n in names]]
    entries = [
        {
            **_layer(
                "InputLayer",
                "input_1",
                batch_input_shape=[None, 6, 5],
                input_dtype="float32",
                sparse=False,
            ),
            "inbound_nodes": [],
        },
        {
            **_layer("Dense", "dense_1", output_dim=4, activation="tanh", bias=True),
            "inbound_nodes": nodes("input_1"),
        },
        {
            **_layer("Dense", "dense_2", output_dim=4, activation="linear", bias=True),
            "inbound_nodes": nodes("input_1"),
        },
        {
            **_layer(
                "Convolution1D",
                "convolution1d_1",
                nb_filter=3,
                filter_length=2,
                border_mode="same",
                subsample_length=1,
                activation="relu",
                bias=True,
                input_dim=None,
                input_length=None,
            ),
            "inbound_nodes": nodes("input_1"),
        },
    ]
    merges = [
        ("merge_1", "concat"),
        ("merge_2", "sum"),
        ("merge_3", "mul"),
        ("merge_4", "ave"),
        ("merge_5", "max"),
    ]
    for name, mode in merges:
        entries.append(
            {
                **_layer(
                    "Merge",
                    name,
                    mode=mode,
                    concat_axis=-1,
                    dot_axes=-1,
                    output_shape=None,
                    output_shape_type="raw",
                    output_mask=None,
                    output_mask_type="raw",
                    arguments={},
                    mode_type="raw",
                ),
                "inbound_nodes": nodes("dense_1", "dense_2"),
            }
        )
    entries.append(
        {
            **_layer("Merge", "merge_6", mode="concat", concat_axis=-1, mode_type="raw"),
            "inbound_nodes": nodes("merge_1", "convolution1d_1"),
        }
    )
    config = {
        "class_name": "Model",
        "config": {
            "name": "model_1",
            "layers": entries,
            "input_layers": [["input_1", 0, 0]],
            "output_layers": [["merge_6", 0, 0], *[[n, 0, 0] for n, _ in merges[1:]]],
        },
    }
    weights = {
        "input_1": [],
        "dense_1": [("dense_1_W", w["dense_1"][0]), ("dense_1_b", w["dense_1"][1])],
        "dense_2": [("dense_2_W", w["dense_2"][0]), ("dense_2_b", w["dense_2"][1])],
        "convolution1d_1": [("convolution1d_1_W", conv), ("convolution1d_1_b", conv_b)],
    }
    weights.update({name: [] for name, _ in merges + [("merge_6", "")]})
    path = _write(tmp_path / "merge.h5", config, weights)

    x = keras.Input((6, 5))
    d1, d2 = layers.Dense(4, activation="tanh"), layers.Dense(4)
    c1 = layers.Conv1D(3, 2, padding="same", activation="relu")
    a, b = d1(x), d2(x)
    merged = [
        layers.Concatenate()([a, b]),
        layers.Add()([a, b]),
        layers.Multiply()([a, b]),
        layers.Average()([a, b]),
        layers.Maximum()([a, b]),
    ]
    model = keras.Model(x, [layers.Concatenate()([merged[0], c1(x)]), *merged[1:]])
    d1.set_weights(list(w["dense_1"]))
    d2.set_weights(list(w["dense_2"]))
    c1.set_weights([conv[:, 0], conv_b])
    check_file_port(model, path, tmp_path, inputs=_inputs((6, 5)))


def test_unsupported_keras1_layer_is_named(tmp_path):
    config = {
        "class_name": "Sequential",
        "config": [
            _layer("Highway", "highway_1", batch_input_shape=[None, 4]),
        ],
    }
    path = _write(tmp_path / "highway.h5", config, {"highway_1": []})
    with pytest.raises(codegen.InputError, match="Keras 1 layer class Highway"):
        codegen.convert(path, tmp_path / "out", reader="file", force=True)
    config["config"][0] = _layer("Merge", "merge_1", mode="cos", batch_input_shape=[None, 4])
    path = _write(tmp_path / "cos.h5", config, {"merge_1": []})
    with pytest.raises(codegen.InputError, match="Merge with mode='cos'"):
        codegen.convert(path, tmp_path / "out2", reader="file", force=True)


def test_batch_normalization(tmp_path):
    """Keras 1's running_std holds the moving variance (Keras 2 loaded it as such)."""
    rng = np.random.default_rng(2)
    kernel, bias = _random((5, 4), rng), _random((4,), rng)
    gamma, beta, mean = _random((4,), rng) + 1.0, _random((4,), rng), _random((4,), rng)
    variance = rng.uniform(0.5, 2.0, 4).astype("float32")
    config = {
        "class_name": "Sequential",
        "config": [
            input_dense("dense_1", 4, (5,)),
            _layer(
                "BatchNormalization",
                "batchnormalization_1",
                epsilon=0.001,
                mode=0,
                axis=-1,
                momentum=0.99,
                beta_init="zero",
                gamma_init="one",
                gamma_regularizer=None,
                beta_regularizer=None,
            ),
            _layer("Activation", "activation_1", activation="tanh"),
        ],
    }
    names = ["gamma", "beta", "running_mean", "running_std"]
    weights = {
        "dense_1": [("dense_1_W", kernel), ("dense_1_b", bias)],
        "batchnormalization_1": [
            (f"batchnormalization_1_{n}", a) for n, a in zip(names, (gamma, beta, mean, variance))
        ],
        "activation_1": [],
    }
    path = _write(tmp_path / "bn.h5", config, weights)
    x = keras.Input((5,))
    dense, norm = layers.Dense(4), layers.BatchNormalization(epsilon=0.001)
    model = keras.Model(x, layers.Activation("tanh")(norm(dense(x))))
    dense.set_weights([kernel, bias])
    norm.set_weights([gamma, beta, mean, variance])
    check_file_port(model, path, tmp_path, inputs=_inputs((5,)))


def test_recurrent_layers_with_per_gate_weights(tmp_path):
    """Keras 1 stored an LSTM's weights per gate (i, c, f, o) and a GRU's (z, r, h)."""
    rng = np.random.default_rng(3)
    table = _random((10, 4), rng)
    lstm = {g: [_random(s, rng) for s in ((4, 3), (3, 3), (3,))] for g in "icfo"}
    gru = {g: [_random(s, rng) for s in ((3, 2), (2, 2), (2,))] for g in "zrh"}
    dense, dense_b = _random((2, 1), rng), _random((1,), rng)
    config = {
        "class_name": "Sequential",
        "config": [
            _layer(
                "Embedding",
                "embedding_1",
                input_dim=10,
                output_dim=4,
                mask_zero=True,
                input_length=6,
                dropout=0.0,
                init="uniform",
                W_regularizer=None,
                activity_regularizer=None,
                W_constraint=None,
                batch_input_shape=[None, 6],
                input_dtype="int32",
            ),
            _layer(
                "LSTM",
                "lstm_1",
                output_dim=3,
                return_sequences=True,
                forget_bias_init="one",
                **RECURRENT,
            ),
            _layer("GRU", "gru_1", output_dim=2, return_sequences=False, **RECURRENT),
            _layer("Dense", "dense_1", output_dim=1, activation="linear", bias=True),
        ],
    }
    weights = {
        "embedding_1": [("embedding_1_W", table)],
        "lstm_1": [(f"lstm_1_{p}_{g}", a) for g in "icfo" for p, a in zip("WUb", lstm[g])],
        "gru_1": [(f"gru_1_{p}_{g}", a) for g in "zrh" for p, a in zip("WUb", gru[g])],
        "dense_1": [("dense_1_W", dense), ("dense_1_b", dense_b)],
    }
    path = _write(tmp_path / "rnn.h5", config, weights)

    ids = keras.Input((6,), dtype="int32")
    embedding = layers.Embedding(10, 4, mask_zero=True)
    lstm_layer = layers.LSTM(3, recurrent_activation="sigmoid", return_sequences=True)
    gru_layer = layers.GRU(2, recurrent_activation="sigmoid", reset_after=False)
    head = layers.Dense(1)
    model = keras.Model(ids, head(gru_layer(lstm_layer(embedding(ids)))))
    embedding.set_weights([table])
    fuse = lambda gates, order: [
        np.concatenate([gates[g][part] for g in order], -1) for part in range(3)
    ]
    lstm_layer.set_weights(fuse(lstm, "ifco"))
    gru_layer.set_weights(fuse(gru, "zrh"))
    head.set_weights([dense, dense_b])

    def tokens(batch):
        a = np.random.default_rng(batch).integers(1, 10, size=(batch, 6)).astype("int32")
        a[:, -2:] = 0
        return [a]

    check_file_port(model, path, tmp_path, inputs=tokens)


def test_sequential_of_merged_sequentials(tmp_path):
    """Keras 1's two-input Sequential: ``Sequential([Merge([left, right]), Dense])``; the
    weights file lists the branches' layers by name, flattened."""
    rng = np.random.default_rng(4)
    left, right = (_random((3, 4), rng), _random((4,), rng)), (
        _random((2, 4), rng),
        _random((4,), rng),
    )
    head = (_random((8, 2), rng), _random((2,), rng))

    def branch(name, size):
        return {"class_name": "Sequential", "config": [input_dense(name, 4, (size,), "relu")]}

    config = {
        "class_name": "Sequential",
        "config": [
            _layer(
                "Merge",
                "merge_1",
                layers=[branch("dense_1", 3), branch("dense_2", 2)],
                mode="concat",
                concat_axis=-1,
                mode_type="raw",
                output_shape=None,
            ),
            _layer("Dense", "dense_3", output_dim=2, activation="softmax", bias=True),
        ],
    }
    weights = {
        "dense_1": [("dense_1_W", left[0]), ("dense_1_b", left[1])],
        "dense_2": [("dense_2_W", right[0]), ("dense_2_b", right[1])],
        "dense_3": [("dense_3_W", head[0]), ("dense_3_b", head[1])],
    }
    path = _write(tmp_path / "branches.h5", config, weights)
    a, b = keras.Input((3,)), keras.Input((2,))
    d1, d2 = layers.Dense(4, activation="relu"), layers.Dense(4, activation="relu")
    d3 = layers.Dense(2, activation="softmax")
    model = keras.Model([a, b], d3(layers.Concatenate()([d1(a), d2(b)])))
    for layer, values in ((d1, left), (d2, right), (d3, head)):
        layer.set_weights(list(values))

    def inputs(batch):
        rng = np.random.default_rng(batch)
        return [
            rng.standard_normal((batch, 3)).astype("f4"),
            rng.standard_normal((batch, 2)).astype("f4"),
        ]

    check_file_port(model, path, tmp_path, inputs=inputs)


def test_lambda_and_shared_prelu(tmp_path):
    """A Keras 1 Lambda keeps its Keras 2 form (``function``: the marshalled code as
    raw_unicode_escape text, defaults, closure); a PReLU whose ``<name>_alphas`` is shared
    over the steps (Keras 1 did not save ``shared_axes``: the stored shape says it)."""
    import lambda_payloads

    rng = np.random.default_rng(5)
    kernel, bias = _random((5, 4), rng), _random((4,), rng)
    alphas = _random((1, 4), rng)
    function = [lambda_payloads.PY35_MEAN.decode("raw_unicode_escape"), None, None]
    config = {
        "class_name": "Sequential",
        "config": [
            input_dense("dense_1", 4, (3, 5)),
            _layer("PReLU", "prelu_1", init="zero"),
            _layer(
                "Lambda",
                "lambda_1",
                function=function,
                function_type="lambda",
                output_shape=None,
                output_shape_type="raw",
                arguments={},
            ),
        ],
    }
    weights = {
        "dense_1": [("dense_1_W", kernel), ("dense_1_b", bias)],
        "prelu_1": [("prelu_1_alphas", alphas)],
        "lambda_1": [],
    }
    path = _write(tmp_path / "lambda.h5", config, weights)
    x = keras.Input((3, 5))
    dense, prelu = layers.Dense(4), layers.PReLU(shared_axes=[1])
    mean = layers.Lambda(lambda t: keras.ops.mean(t, axis=1))
    model = keras.Model(x, mean(prelu(dense(x))))
    dense.set_weights([kernel, bias])
    prelu.set_weights([alphas])
    check_file_port(model, path, tmp_path, inputs=_inputs((3, 5)))

"""Keras 1.2 layers beyond Dense/Convolution2D/LSTM, read as Keras 2 read them.

Fixtures as in ``test_keras1_files``: a Keras 1.2.2 ``.h5`` written by hand with h5py (Keras
1 class and option names, ``<layer>_W``-style weight names, kernels in Keras 1's layout), and
a Keras 3 reference built from the same weights moved to Keras 3's layout here, by hand.
"dim_ordering='th'" models are computed channels-last in the reference, between Permutes.
"""

import keras
import numpy as np
import pytest
from keras import layers
from legacy import check_file_port
from test_keras1_files import RECURRENT, _inputs, _layer, _random, _write

import codegen


def _sequential(*entries):
    return {"class_name": "Sequential", "config": list(entries)}


def _flip(kernel, backend):
    """Theano convolves: Keras 2 flipped the spatial axes of its kernels."""
    if backend != "theano":
        return kernel
    spatial = tuple(slice(None, None, -1) for _ in range(kernel.ndim - 2))
    return kernel[spatial]


def _wb(name, kernel, bias):
    return [(f"{name}_W", kernel), (f"{name}_b", bias)]


@pytest.mark.parametrize("ordering,backend", [("th", "tensorflow"), ("tf", "theano")])
def test_convolution3d_pooling_and_volumes(ordering, backend, tmp_path):
    """Convolution3D (th kernel ``(filters, channels, d1, d2, d3)``), BatchNormalization on
    the channel axis, 3D pooling, UpSampling3D/ZeroPadding3D/Cropping3D (which never saved
    their dim_ordering: they take the model's) and global pooling."""
    rng = np.random.default_rng(10)
    th = ordering == "th"
    kernel = _random((4, 2, 3, 2, 3) if th else (3, 2, 3, 2, 4), rng)
    bias = _random((4,), rng)
    gamma, beta, mean = _random((4,), rng) + 1.0, _random((4,), rng), _random((4,), rng)
    variance = rng.uniform(0.5, 2.0, 4).astype("float32")
    shape = (2, 7, 5, 6) if th else (7, 5, 6, 2)
    config = _sequential(
        _layer(
            "Convolution3D",
            "convolution3d_1",
            nb_filter=4,
            kernel_dim1=3,
            kernel_dim2=2,
            kernel_dim3=3,
            init="glorot_uniform",
            activation="relu",
            border_mode="same",
            subsample=[1, 1, 1],
            dim_ordering=ordering,
            W_regularizer=None,
            b_regularizer=None,
            activity_regularizer=None,
            W_constraint=None,
            b_constraint=None,
            bias=True,
            batch_input_shape=[None, *shape],
            input_dtype="float32",
        ),
        _layer(
            "BatchNormalization",
            "batchnormalization_1",
            epsilon=0.001,
            mode=0,
            axis=1 if th else -1,
            momentum=0.99,
            beta_init="zero",
            gamma_init="one",
            gamma_regularizer=None,
            beta_regularizer=None,
        ),
        _layer(
            "MaxPooling3D",
            "maxpooling3d_1",
            pool_size=[2, 2, 2],
            strides=[1, 2, 2],
            border_mode="valid",
            dim_ordering=ordering,
        ),
        _layer("UpSampling3D", "upsampling3d_1", size=[1, 2, 3]),
        _layer("ZeroPadding3D", "zeropadding3d_1", padding=[1, 0, 2]),
        _layer("Cropping3D", "cropping3d_1", cropping=[[1, 0], [0, 1], [2, 1]]),
        _layer(
            "AveragePooling3D",
            "averagepooling3d_1",
            pool_size=[2, 1, 2],
            strides=None,
            border_mode="same",
            dim_ordering=ordering,
        ),
        _layer("GlobalMaxPooling3D", "globalmaxpooling3d_1", dim_ordering=ordering),
    )
    names = ["gamma", "beta", "running_mean", "running_std"]
    bn_name = "batchnormalization_1"
    weights = {
        "convolution3d_1": _wb("convolution3d_1", kernel, bias),
        bn_name: [(f"{bn_name}_{n}", a) for n, a in zip(names, (gamma, beta, mean, variance))],
    }
    for entry in config["config"][2:]:
        weights[entry["config"]["name"]] = []
    path = _write(tmp_path / "conv3d.h5", config, weights, backend)

    x = keras.Input(shape)
    y = layers.Permute((2, 3, 4, 1))(x) if th else x
    conv = layers.Conv3D(4, (3, 2, 3), padding="same", activation="relu")
    norm = layers.BatchNormalization(epsilon=0.001)
    y = layers.MaxPooling3D((2, 2, 2), strides=(1, 2, 2))(norm(conv(y)))
    y = layers.UpSampling3D((1, 2, 3))(y)
    y = layers.ZeroPadding3D(((1, 1), (0, 0), (2, 2)))(y)
    y = layers.Cropping3D(((1, 0), (0, 1), (2, 1)))(y)
    y = layers.AveragePooling3D((2, 1, 2), padding="same")(y)
    model = keras.Model(x, layers.GlobalMaxPooling3D()(y))
    conv.set_weights(
        [_flip(np.transpose(kernel, (2, 3, 4, 1, 0)) if th else kernel, backend), bias]
    )
    norm.set_weights([gamma, beta, mean, variance])
    check_file_port(model, path, tmp_path, inputs=_inputs(shape))


@pytest.mark.parametrize(
    "ordering,backend", [("th", "tensorflow"), ("th", "theano"), ("tf", "tensorflow")]
)
def test_atrous_and_deconvolution_2d(ordering, backend, tmp_path):
    """AtrousConvolution2D (atrous_rate -> dilation_rate), Deconvolution2D (Conv2DTranspose:
    Keras 1's ``(filters, channels, r, c)``/``(r, c, channels, filters)`` kernel, output_shape
    dropped), ZeroPadding2D's dict padding, Cropping2D, UpSampling2D, global pooling."""
    rng = np.random.default_rng(11)
    th = ordering == "th"
    atrous = _random((4, 3, 3, 2) if th else (3, 2, 3, 4), rng)  # 3x2 kernel, 3 -> 4
    deconv = _random((5, 4, 3, 3) if th else (3, 3, 4, 5), rng)  # 4 -> 5 channels
    b1, b2 = _random((4,), rng), _random((5,), rng)
    shape = (3, 9, 7) if th else (9, 7, 3)
    common = {"init": "glorot_uniform", "W_regularizer": None, "b_regularizer": None, "bias": True}
    config = _sequential(
        _layer(
            "AtrousConvolution2D",
            "atrousconvolution2d_1",
            nb_filter=4,
            nb_row=3,
            nb_col=2,
            atrous_rate=[2, 1],
            activation="tanh",
            border_mode="valid",
            subsample=[1, 1],
            dim_ordering=ordering,
            batch_input_shape=[None, *shape],
            input_dtype="float32",
            **common,
        ),
        _layer(
            "Deconvolution2D",
            "deconvolution2d_1",
            nb_filter=5,
            nb_row=3,
            nb_col=3,
            output_shape=[None, 5, 11, 13] if th else [None, 11, 13, 5],
            activation="linear",
            border_mode="valid",
            subsample=[2, 2],
            dim_ordering=ordering,
            **common,
        ),
        _layer("ZeroPadding2D", "zeropadding2d_1", padding={"top_pad": 2, "right_pad": 1}),
        _layer("Cropping2D", "cropping2d_1", cropping=[[1, 2], [0, 3]]),
        _layer("UpSampling2D", "upsampling2d_1", size=[1, 2]),
        _layer("GlobalAveragePooling2D", "globalaveragepooling2d_1", dim_ordering=ordering),
    )
    weights = {
        "atrousconvolution2d_1": _wb("atrousconvolution2d_1", atrous, b1),
        "deconvolution2d_1": _wb("deconvolution2d_1", deconv, b2),
    }
    for entry in config["config"][2:]:
        weights[entry["config"]["name"]] = []
    path = _write(tmp_path / "atrous.h5", config, weights, backend)

    x = keras.Input(shape)
    y = layers.Permute((2, 3, 1))(x) if th else x
    conv = layers.Conv2D(4, (3, 2), dilation_rate=(2, 1), activation="tanh")
    up = layers.Conv2DTranspose(5, 3, strides=2)
    y = up(conv(y))
    y = layers.ZeroPadding2D(((2, 0), (0, 1)))(y)
    y = layers.Cropping2D(((1, 2), (0, 3)))(y)
    y = layers.UpSampling2D((1, 2))(y)
    model = keras.Model(x, layers.GlobalAveragePooling2D()(y))
    conv.set_weights([_flip(np.transpose(atrous, (2, 3, 1, 0)) if th else atrous, backend), b1])
    # Conv2DTranspose holds (rows, cols, filters, channels).
    up_kernel = np.transpose(deconv, (2, 3, 0, 1) if th else (0, 1, 3, 2))
    up.set_weights([_flip(up_kernel, backend), b2])
    check_file_port(model, path, tmp_path, inputs=_inputs(shape))


@pytest.mark.parametrize("ordering", ["th", "tf"])
def test_separable_convolution_2d(ordering, tmp_path):
    """SeparableConvolution2D: depthwise ``(multiplier, channels, r, c)`` and pointwise
    ``(filters, channels * multiplier, 1, 1)`` kernels in "th" (TensorFlow's layout in "tf")."""
    rng = np.random.default_rng(12)
    th = ordering == "th"
    depthwise = _random((2, 3, 3, 2) if th else (3, 2, 3, 2), rng)  # multiplier 2, 3 channels
    pointwise = _random((5, 6, 1, 1) if th else (1, 1, 6, 5), rng)
    bias = _random((5,), rng)
    shape = (3, 8, 7) if th else (8, 7, 3)
    config = _sequential(
        _layer(
            "SeparableConvolution2D",
            "separableconvolution2d_1",
            nb_filter=5,
            nb_row=3,
            nb_col=2,
            init="glorot_uniform",
            activation="relu",
            border_mode="same",
            subsample=[2, 1],
            depth_multiplier=2,
            dim_ordering=ordering,
            depthwise_regularizer=None,
            pointwise_regularizer=None,
            b_regularizer=None,
            activity_regularizer=None,
            depthwise_constraint=None,
            pointwise_constraint=None,
            b_constraint=None,
            bias=True,
            batch_input_shape=[None, *shape],
            input_dtype="float32",
        ),
        _layer("Flatten", "flatten_1"),
    )
    name = "separableconvolution2d_1"
    weights = {
        name: [
            (f"{name}_depthwise_kernel", depthwise),
            (f"{name}_pointwise_kernel", pointwise),
            (f"{name}_b", bias),
        ],
        "flatten_1": [],
    }
    path = _write(tmp_path / "separable.h5", config, weights)
    x = keras.Input(shape)
    y = layers.Permute((2, 3, 1))(x) if th else x
    conv = layers.SeparableConv2D(
        5, (3, 2), strides=(2, 1), padding="same", depth_multiplier=2, activation="relu"
    )
    y = conv(y)
    y = layers.Permute((3, 1, 2))(y) if th else y  # Keras 1 flattens (channels, rows, cols)
    model = keras.Model(x, layers.Flatten()(y))
    to_tf = (lambda k: np.transpose(k, (2, 3, 1, 0))) if th else (lambda k: k)
    conv.set_weights([to_tf(depthwise), to_tf(pointwise), bias])
    check_file_port(model, path, tmp_path, inputs=_inputs(shape))


@pytest.mark.parametrize("backend", ["tensorflow", "theano"])
def test_convolution1d_layouts_and_sequence_layers(backend, tmp_path):
    """Convolution1D as Keras 1.0/1.1 stored it ``(filters, channels, length, 1)``,
    AtrousConvolution1D as Keras 1.2 did ``(length, 1, channels, filters)``, UpSampling1D
    (length), ZeroPadding1D (dict), Cropping1D, 1D pooling and global pooling."""
    rng = np.random.default_rng(13)
    old, old_b = _random((4, 3, 3, 1), rng), _random((4,), rng)
    atrous, atrous_b = _random((2, 1, 4, 5), rng), _random((5,), rng)
    config = _sequential(
        _layer(
            "Convolution1D",
            "convolution1d_1",
            nb_filter=4,
            filter_length=3,
            activation="relu",
            border_mode="same",
            subsample_length=1,
            bias=True,
            input_dim=3,
            input_length=9,
            batch_input_shape=[None, 9, 3],
            input_dtype="float32",
        ),
        _layer("UpSampling1D", "upsampling1d_1", length=2),
        _layer("ZeroPadding1D", "zeropadding1d_1", padding={"left_pad": 2}),
        _layer("Cropping1D", "cropping1d_1", cropping=[1, 2]),
        _layer(
            "AtrousConvolution1D",
            "atrousconvolution1d_1",
            nb_filter=5,
            filter_length=2,
            atrous_rate=3,
            activation="linear",
            border_mode="valid",
            subsample_length=1,
            bias=True,
        ),
        _layer("MaxPooling1D", "maxpooling1d_1", pool_length=3, stride=2, border_mode="valid"),
        _layer("GlobalAveragePooling1D", "globalaveragepooling1d_1"),
    )
    weights = {
        "convolution1d_1": _wb("convolution1d_1", old, old_b),
        "atrousconvolution1d_1": _wb("atrousconvolution1d_1", atrous, atrous_b),
    }
    for entry in config["config"]:
        weights.setdefault(entry["config"]["name"], [])
    path = _write(tmp_path / "conv1d.h5", config, weights, backend)
    x = keras.Input((9, 3))
    c1 = layers.Conv1D(4, 3, padding="same", activation="relu")
    c2 = layers.Conv1D(5, 2, dilation_rate=3)
    y = layers.UpSampling1D(2)(c1(x))
    y = layers.Cropping1D((1, 2))(layers.ZeroPadding1D((2, 0))(y))
    y = layers.MaxPooling1D(3, strides=2)(c2(y))
    model = keras.Model(x, layers.GlobalAveragePooling1D()(y))
    c1.set_weights([_flip(np.transpose(old, (2, 3, 1, 0))[:, 0], backend), old_b])
    c2.set_weights([_flip(atrous[:, 0], backend), atrous_b])
    check_file_port(model, path, tmp_path, inputs=_inputs((9, 3)))


def _lstm_gates(rng, inputs, units, gates="icfo"):
    return {
        g: [_random(s, rng) for s in ((inputs, units), (units, units), (units,))] for g in gates
    }


def _fuse(gates, order):
    return [np.concatenate([gates[g][part] for g in order], -1) for part in range(3)]


_RECURRENT = {**RECURRENT, "input_dim": None, "input_length": None}


def test_wrappers_core_and_advanced_activations(tmp_path):
    """Masking, TimeDistributedDense (TimeDistributed(Dense)), TimeDistributed(Dense),
    LeakyReLU/ELU/PReLU (``<name>_alphas``), Bidirectional LSTM (forward_/backward_ per-gate
    weights, concat) and GRU (sum), RepeatVector, Reshape, Permute, the noise layers."""
    rng = np.random.default_rng(14)
    td1, td1_b = _random((4, 5), rng), _random((5,), rng)
    td2, td2_b = _random((5, 3), rng), _random((3,), rng)
    forward, backward = _lstm_gates(rng, 3, 2), _lstm_gates(rng, 3, 2)
    gru_f, gru_b = _lstm_gates(rng, 4, 3, "zrh"), _lstm_gates(rng, 4, 3, "zrh")
    alphas = _random((3, 2), rng)
    head, head_b = _random((6, 2), rng), _random((2,), rng)
    lstm = _layer("LSTM", "lstm_1", output_dim=2, return_sequences=True, **_RECURRENT)
    lstm["config"]["forget_bias_init"] = "one"
    gru = _layer("GRU", "gru_1", output_dim=3, return_sequences=False, **_RECURRENT)
    config = _sequential(
        _layer(
            "Masking",
            "masking_1",
            mask_value=0.0,
            batch_input_shape=[None, 6, 4],
            input_dtype="float32",
        ),
        _layer(
            "TimeDistributedDense",
            "timedistributeddense_1",
            output_dim=5,
            init="glorot_uniform",
            activation="linear",
            W_regularizer=None,
            b_regularizer=None,
            activity_regularizer=None,
            W_constraint=None,
            b_constraint=None,
            bias=True,
            input_dim=4,
            input_length=6,
        ),
        _layer("LeakyReLU", "leakyrelu_1", alpha=0.2),
        _layer(
            "TimeDistributed",
            "timedistributed_1",
            layer={
                "class_name": "Dense",
                "config": {
                    "name": "dense_1",
                    "trainable": True,
                    "output_dim": 3,
                    "activation": "linear",
                    "bias": True,
                    "init": "glorot_uniform",
                    "input_dim": None,
                },
            },
        ),
        _layer("ELU", "elu_1", alpha=0.7),
        _layer("Bidirectional", "bidirectional_1", layer=lstm, merge_mode="concat"),
        _layer("Bidirectional", "bidirectional_2", layer=gru, merge_mode="sum"),
        _layer("RepeatVector", "repeatvector_1", n=2),
        _layer("Reshape", "reshape_1", target_shape=[2, 3]),
        _layer("Permute", "permute_1", dims=[2, 1]),
        _layer("PReLU", "prelu_1", init="zero"),
        _layer("GaussianNoise", "gaussiannoise_1", sigma=0.5),
        _layer("GaussianDropout", "gaussiandropout_1", p=0.3),
        _layer("SpatialDropout1D", "spatialdropout1d_1", p=0.4),
        _layer("Flatten", "flatten_1"),
        _layer("Dropout", "dropout_1", p=0.5),
        _layer("ActivityRegularization", "activityregularization_1", l1=0.01, l2=0.0),
        _layer("Dense", "dense_2", output_dim=2, activation="softmax", bias=True),
    )

    def per_gate(prefix, gates):
        return [(f"{prefix}_{p}_{g}", a) for g in gates for p, a in zip("WUb", gates[g])]

    weights = {e["config"]["name"]: [] for e in config["config"]}
    weights["timedistributeddense_1"] = _wb("timedistributeddense_1", td1, td1_b)
    weights["timedistributed_1"] = _wb("dense_1", td2, td2_b)
    weights["bidirectional_1"] = per_gate("forward_lstm_1", forward) + per_gate(
        "backward_lstm_1", backward
    )
    weights["bidirectional_2"] = per_gate("forward_gru_1", gru_f) + per_gate(
        "backward_gru_1", gru_b
    )
    weights["prelu_1"] = [("prelu_1_alphas", alphas)]
    weights["dense_2"] = _wb("dense_2", head, head_b)
    path = _write(tmp_path / "wrappers.h5", config, weights)

    x = keras.Input((6, 4))
    dense1, dense2 = layers.Dense(5), layers.Dense(3)
    y = layers.TimeDistributed(dense1)(layers.Masking(0.0)(x))
    y = layers.TimeDistributed(dense2)(layers.LeakyReLU(negative_slope=0.2)(y))
    y = layers.ELU(alpha=0.7)(y)
    bi_lstm = layers.Bidirectional(
        layers.LSTM(2, recurrent_activation="sigmoid", return_sequences=True)
    )
    bi_gru = layers.Bidirectional(
        layers.GRU(3, recurrent_activation="sigmoid", reset_after=False), merge_mode="sum"
    )
    y = layers.RepeatVector(2)(bi_gru(bi_lstm(y)))
    prelu = layers.PReLU()
    y = prelu(layers.Permute((2, 1))(layers.Reshape((2, 3))(y)))
    final = layers.Dense(2, activation="softmax")
    model = keras.Model(x, final(layers.Flatten()(y)))
    dense1.set_weights([td1, td1_b])
    dense2.set_weights([td2, td2_b])
    bi_lstm.set_weights(_fuse(forward, "ifco") + _fuse(backward, "ifco"))
    bi_gru.set_weights(_fuse(gru_f, "zrh") + _fuse(gru_b, "zrh"))
    prelu.set_weights([alphas])
    final.set_weights([head, head_b])

    def inputs(batch):
        a = np.random.default_rng(batch).standard_normal((batch, 6, 4)).astype("f4")
        a[:, -2:] = 0.0  # masked steps
        return [a]

    check_file_port(model, path, tmp_path, inputs=inputs)


@pytest.mark.parametrize("backend", ["tensorflow", "theano"])
def test_time_distributed_th_convolution(backend, tmp_path):
    """TimeDistributed(Convolution2D) in "th": the wrapped kernel transposed (and flipped
    from Theano, as Keras 2 flipped the kernels of wrapped convolutions)."""
    rng = np.random.default_rng(15)
    kernel, bias = _random((4, 2, 3, 2), rng), _random((4,), rng)
    conv = {
        "class_name": "Convolution2D",
        "config": {
            "name": "convolution2d_1",
            "trainable": True,
            "nb_filter": 4,
            "nb_row": 3,
            "nb_col": 2,
            "activation": "relu",
            "border_mode": "valid",
            "subsample": [1, 2],
            "dim_ordering": "th",
            "bias": True,
        },
    }
    config = _sequential(
        _layer(
            "TimeDistributed",
            "timedistributed_1",
            layer=conv,
            batch_input_shape=[None, 3, 2, 5, 7],
            input_dtype="float32",
        )
    )
    path = _write(
        tmp_path / "td_conv.h5",
        config,
        {"timedistributed_1": _wb("convolution2d_1", kernel, bias)},
        backend,
    )
    x = keras.Input((3, 2, 5, 7))
    layer = layers.Conv2D(4, (3, 2), strides=(1, 2), activation="relu")
    y = layers.TimeDistributed(layer)(layers.Permute((1, 3, 4, 2))(x))
    model = keras.Model(x, layers.Permute((1, 4, 2, 3))(y))
    layer.set_weights([_flip(np.transpose(kernel, (2, 3, 1, 0)), backend), bias])
    check_file_port(model, path, tmp_path, inputs=_inputs((3, 2, 5, 7)))


def _convert(tmp_path, entries, weights=None):
    path = _write(tmp_path / "refused.h5", _sequential(*entries), weights or {})
    codegen.convert(path, tmp_path / "out", reader="file", force=True)


_INPUT = {"batch_input_shape": [None, 6, 6, 3], "input_dtype": "float32"}


@pytest.mark.parametrize(
    "class_name", ["Highway", "MaxoutDense", "SReLU", "ParametricSoftplus", "LocallyConnected2D"]
)
def test_keras1_classes_without_equivalent_are_named(class_name, tmp_path):
    with pytest.raises(codegen.InputError, match=f"Keras 1 layer class {class_name}: "):
        _convert(tmp_path, [_layer(class_name, "layer_1", **_INPUT)], {"layer_1": []})


@pytest.mark.parametrize(
    "entry,message",
    [
        (
            _layer(
                "Convolution3D",
                "c",
                nb_filter=2,
                kernel_dim1=1,
                kernel_dim2=1,
                kernel_dim3=1,
                border_mode="full",
                **_INPUT,
            ),
            "Convolution3D with border_mode='full'",
        ),
        (
            _layer(
                "Convolution2D", "c", nb_filter=2, nb_row=1, nb_col=1, atrous_rate=[2, 2], **_INPUT
            ),
            r"Convolution2D with option\(s\) \['atrous_rate'\]",
        ),
        (
            _layer(
                "Deconvolution2D",
                "c",
                nb_filter=2,
                nb_row=1,
                nb_col=1,
                output_shape=None,
                output_padding=1,
                **_INPUT,
            ),
            r"Deconvolution2D with option\(s\) \['output_padding'\]",
        ),
        (
            _layer("SeparableConvolution2D", "c", nb_row=1, nb_col=1, **_INPUT),
            "SeparableConvolution2D with no 'nb_filter'",
        ),
        (_layer("ZeroPadding2D", "c", padding=[1, 2, 3], **_INPUT), "ZeroPadding2D with padding"),
        (
            _layer("Cropping2D", "c", cropping=[[1, 2, 3], [0, 0]], **_INPUT),
            "Cropping2D with cropping",
        ),
        (_layer("UpSampling1D", "c", length=[2, 2], **_INPUT), "UpSampling1D with length"),
        (
            _layer("Bidirectional", "c", layer=_layer("Dense", "d", output_dim=2), **_INPUT),
            "Bidirectional with a wrapped Dense",
        ),
        (
            _layer(
                "TimeDistributed",
                "c",
                layer=_layer("LSTM", "l", output_dim=2, stateful=True),
                **_INPUT,
            ),
            "LSTM with stateful=True",
        ),
        (_layer("GaussianNoise", "c", sigma=0.1, seed=3, **_INPUT), r"\['seed'\]"),
        (_layer("Reshape", "c", **_INPUT), "Reshape with no 'target_shape'"),
    ],
)
def test_keras1_options_outside_the_table_are_named(entry, message, tmp_path):
    with pytest.raises(codegen.InputError, match=message):
        _convert(tmp_path, [entry], {"c": []})


def test_layer_without_dim_ordering_in_a_mixed_model_is_refused(tmp_path):
    entries = [
        _layer("MaxPooling2D", "p1", dim_ordering="th", **_INPUT),
        _layer("MaxPooling2D", "p2", pool_size=[1, 1], dim_ordering="tf"),
        _layer("UpSampling2D", "u1", size=[2, 2]),
    ]
    with pytest.raises(codegen.InputError, match="'u1' did not save its dim_ordering"):
        _convert(tmp_path, entries, {"p1": [], "p2": [], "u1": []})

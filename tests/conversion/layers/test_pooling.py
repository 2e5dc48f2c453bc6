"""Max/average pooling (1D/2D/3D, valid/same, strides, data_format) and global pooling."""

import keras
import numpy as np
import pytest
from keras import layers
from parity import check_parity

# (pool_size, strides, padding): odd and even windows, strides smaller than, equal to and
# larger than the window, TensorFlow's asymmetric 'same' padding.
CONFIGS_2D = [
    ((2, 2), None, "valid"),
    ((3, 3), (2, 2), "valid"),
    ((2, 3), (3, 1), "valid"),
    ((2, 2), None, "same"),
    ((3, 3), (2, 2), "same"),
    ((3, 2), (1, 1), "same"),
    ((2, 3), (3, 2), "same"),
    ((4, 4), (3, 3), "same"),
]


def _branches(x, configs, max_cls, avg_cls, **kw):
    outs = []
    for pool, strides, padding in configs:
        for cls in (max_cls, avg_cls):
            outs.append(cls(pool, strides, padding=padding, **kw)(x))
    return outs


@pytest.mark.parametrize("channels_first", [False, True])
def test_pooling2d(tmp_path, channels_first):
    inp = keras.Input((17, 14, 3))
    x = layers.Conv2D(4, 1)(inp)
    outs = _branches(x, CONFIGS_2D, layers.MaxPooling2D, layers.AveragePooling2D)
    _, _, result = check_parity(keras.Model(inp, outs), tmp_path, channels_first=channels_first)
    source = result.module_path.read_text()
    # Channels-first inside: only the interface permutes.
    assert source.count(".permute(") == (0 if channels_first else 1 + len(outs))


@pytest.mark.parametrize("spatial", [17, 16])
def test_pooling2d_unknown_size(tmp_path, spatial):
    inp = keras.Input((None, None, 3))
    outs = _branches(
        inp,
        [c for c in CONFIGS_2D if c[2] == "same"] + [((3, 3), (2, 2), "valid")],
        layers.MaxPooling2D,
        layers.AveragePooling2D,
    )
    _, _, result = check_parity(keras.Model(inp, outs), tmp_path, spatial=spatial)
    source = result.module_path.read_text()
    assert "same_padding(" in source and "avg_pool_same(" in source


def test_pooling2d_channels_first_format(tmp_path):
    inp = keras.Input((3, 15, 12))
    outs = _branches(
        inp, CONFIGS_2D, layers.MaxPooling2D, layers.AveragePooling2D, data_format="channels_first"
    )
    outs.append(layers.GlobalAveragePooling2D(data_format="channels_first")(outs[-1]))
    outs.append(layers.GlobalMaxPooling2D(data_format="channels_first", keepdims=True)(outs[-2]))
    _, _, result = check_parity(keras.Model(inp, outs), tmp_path)
    assert ".permute(" not in result.module_path.read_text()


@pytest.mark.parametrize("channels_first", [False, True])
def test_pooling1d(tmp_path, channels_first):
    inp = keras.Input((19, 4))
    configs = [
        (2, None, "valid"),
        (3, 2, "valid"),
        (2, 3, "valid"),
        (2, None, "same"),
        (3, 2, "same"),
        (4, 1, "same"),
        (5, 3, "same"),
    ]
    outs = _branches(inp, configs, layers.MaxPooling1D, layers.AveragePooling1D)
    cf = layers.Permute((2, 1))(inp)
    outs += _branches(
        cf, configs[-3:], layers.MaxPooling1D, layers.AveragePooling1D, data_format="channels_first"
    )
    check_parity(keras.Model(inp, outs), tmp_path, channels_first=channels_first)


def test_pooling1d_unknown_length(tmp_path):
    inp = keras.Input((None, 4))
    configs = [(2, None, "valid"), (2, None, "same"), (3, 2, "same"), (4, 3, "same")]
    outs = _branches(inp, configs, layers.MaxPooling1D, layers.AveragePooling1D)
    check_parity(keras.Model(inp, outs), tmp_path, spatial=13)


@pytest.mark.parametrize("channels_first", [False, True])
def test_pooling3d(tmp_path, channels_first):
    inp = keras.Input((7, 9, 6, 2))
    configs = [
        ((2, 2, 2), None, "valid"),
        ((3, 2, 3), (2, 1, 2), "valid"),
        ((2, 2, 2), None, "same"),
        ((3, 3, 2), (2, 2, 3), "same"),
        ((2, 3, 3), (1, 1, 1), "same"),
    ]
    outs = _branches(inp, configs, layers.MaxPooling3D, layers.AveragePooling3D)
    cf = layers.Permute((4, 1, 2, 3))(inp)  # (N, C, D, H, W) in Keras
    outs += _branches(
        cf, configs[1:4], layers.MaxPooling3D, layers.AveragePooling3D, data_format="channels_first"
    )
    check_parity(keras.Model(inp, outs), tmp_path, channels_first=channels_first)


def test_pooling3d_unknown_size(tmp_path):
    inp = keras.Input((None, None, None, 2))
    configs = [((3, 3, 2), (2, 2, 3), "same"), ((2, 2, 2), None, "valid")]
    outs = _branches(inp, configs, layers.MaxPooling3D, layers.AveragePooling3D)
    check_parity(keras.Model(inp, outs), tmp_path, spatial=7)


@pytest.mark.parametrize("channels_first", [False, True])
def test_global_pooling(tmp_path, channels_first):
    in1, in2, in3 = keras.Input((11, 3)), keras.Input((9, 8, 3)), keras.Input((5, 6, 7, 3))
    outs = []
    for x, (gmax, gavg) in zip(
        (in1, in2, in3),
        [
            (layers.GlobalMaxPooling1D, layers.GlobalAveragePooling1D),
            (layers.GlobalMaxPooling2D, layers.GlobalAveragePooling2D),
            (layers.GlobalMaxPooling3D, layers.GlobalAveragePooling3D),
        ],
    ):
        x = layers.Dense(4)(x)
        for cls in (gmax, gavg):
            outs.append(cls()(x))
            outs.append(cls(keepdims=True)(x))
            outs.append(cls(data_format="channels_first")(x))
            outs.append(cls(data_format="channels_first", keepdims=True)(x))
    check_parity(keras.Model([in1, in2, in3], outs), tmp_path, channels_first=channels_first)


def test_global_pooling_follows_layout(tmp_path):
    # A sequence that never meets a spatial layer stays in Keras order: no permute at all.
    inp = keras.Input((12, 5))
    x = layers.Dense(6)(inp)
    out = layers.Concatenate()([layers.GlobalAveragePooling1D()(x), layers.GlobalMaxPooling1D()(x)])
    _, _, result = check_parity(keras.Model(inp, out), tmp_path)
    assert ".permute(" not in result.module_path.read_text()
    # After a convolution it reduces the channels-first tensor where it is.
    inp = keras.Input((13, 11, 3))
    x = layers.Conv2D(5, 3, padding="same")(inp)
    out = layers.Dense(2)(layers.GlobalAveragePooling2D(keepdims=True)(x))
    _, _, result = check_parity(keras.Model(inp, out), tmp_path)
    source = result.module_path.read_text()
    assert source.count(".permute(") == 2, source  # the input, and the rank-4 output


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_global_average_pooling1d_mask(tmp_path, data_format):
    # Keras hands the mask to GlobalAveragePooling1D, which averages unmasked steps only.
    inp = keras.Input((9, 4))
    mask = keras.Input((9,), dtype="bool")  # one flag per step
    x = layers.Conv1D(6, 3, padding="same")(inp)
    if data_format == "channels_first":
        x = layers.Permute((2, 1))(x)
    outs = [
        layers.GlobalAveragePooling1D(data_format=data_format)(x, mask=mask),
        layers.GlobalAveragePooling1D(data_format=data_format, keepdims=True)(x, mask=mask),
    ]
    model = keras.Model([inp, mask], outs)
    rng = np.random.default_rng(3)
    for batch in (1, 3):
        arrays = [
            rng.standard_normal((batch, 9, 4)).astype("float32"),
            rng.random((batch, mask.shape[1])) < 0.6,
        ]
        arrays[1][:, 0] = True  # no fully masked sample (0/0)
        check_parity(model, tmp_path, inputs=arrays, seed=batch)


def test_shared_pooling_on_different_sizes(tmp_path):
    # 17 pads (1, 1) and 16 pads (0, 1): one module without padding serves both calls.
    a, b = keras.Input((17, 17, 3)), keras.Input((16, 15, 3))
    max_pool = layers.MaxPooling2D(3, 2, padding="same")
    avg_pool = layers.AveragePooling2D(3, 2, padding="same")
    outs = [max_pool(a), max_pool(b), avg_pool(a), avg_pool(b)]
    check_parity(keras.Model([a, b], outs), tmp_path)

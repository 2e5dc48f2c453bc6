"""Adaptive max/average pooling (1D/2D/3D): bins that divide, that do not, and that overlap."""

import keras
import pytest
from keras import layers
from parity import check_parity

import codegen
from codegen.api import generate

# (input size, output size): dividing, not dividing (bins of two widths), larger than the
# input (bins overlap), equal. (One bin crashes TensorFlow 2.21 in Keras 3.15: its second
# pooling window is longer than the input.)
SIZES_1D = [(12, 4), (10, 4), (7, 3), (5, 8), (6, 6)]


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_adaptive_pooling1d(tmp_path, data_format):
    inputs, outs = [], []
    for length, size in SIZES_1D:
        shape = (length, 3) if data_format == "channels_last" else (3, length)
        inp = keras.Input(shape)
        inputs.append(inp)
        for cls in (layers.AdaptiveMaxPooling1D, layers.AdaptiveAveragePooling1D):
            outs.append(cls(size, data_format=data_format)(inp))
    _, _, result = check_parity(keras.Model(inputs, outs), tmp_path)
    assert "nn.AdaptiveAvgPool1d(4)" in result.module_path.read_text()


@pytest.mark.parametrize("channels_first", [False, True])
def test_adaptive_pooling2d(tmp_path, channels_first):
    inp = keras.Input((17, 11, 3))
    x = layers.Conv2D(4, 1)(inp)
    outs = []
    for size in [(5, 3), 4, (2, 11), (20, 6)]:
        outs.append(layers.AdaptiveMaxPooling2D(size)(x))
        outs.append(layers.AdaptiveAveragePooling2D(size)(x))
    _, _, result = check_parity(keras.Model(inp, outs), tmp_path, channels_first=channels_first)
    source = result.module_path.read_text()
    assert "nn.AdaptiveMaxPool2d((5, 3))" in source
    # Channels-first inside: only the interface permutes.
    assert source.count(".permute(") == (0 if channels_first else 1 + len(outs))


def test_adaptive_pooling2d_channels_first_format(tmp_path):
    inp = keras.Input((3, 9, 10))
    outs = [
        layers.AdaptiveMaxPooling2D((4, 3), data_format="channels_first")(inp),
        layers.AdaptiveAveragePooling2D((4, 3), data_format="channels_first")(inp),
    ]
    _, _, result = check_parity(keras.Model(inp, outs), tmp_path)
    assert ".permute(" not in result.module_path.read_text()


def test_adaptive_pooling3d(tmp_path):
    inp = keras.Input((7, 6, 5, 2))
    outs = []
    for size in [(3, 4, 2), 2, (7, 6, 5)]:
        outs.append(layers.AdaptiveMaxPooling3D(size)(inp))
        outs.append(layers.AdaptiveAveragePooling3D(size)(inp))
    outs.append(layers.AdaptiveAveragePooling3D((2, 3, 4), data_format="channels_first")(inp))
    check_parity(keras.Model(inp, outs), tmp_path)


def test_unknown_size_is_refused():
    inp = keras.Input((None, 3))
    out = layers.AdaptiveAveragePooling1D(2)(inp)
    with pytest.raises(codegen.UnsupportedError, match="unknown spatial size"):
        generate(keras.Model(inp, out), command="x")

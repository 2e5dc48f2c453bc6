"""A stage table holds only what its rows do not say otherwise (an EfficientNet-like stack
built by a helper function, with Keras's automatic names), checked against Keras."""

from __future__ import annotations

import re

import keras
from applications import randomize_scaled
from keras import layers
from parity import check_parity

STAGES = ((1, 8, 1, 3, 1), (6, 12, 2, 3, 2), (6, 16, 2, 5, 2), (6, 20, 3, 3, 2), (6, 24, 2, 5, 1))


def inverted_residual(x, filters_in, filters_out, expand, kernel, stride, rate):
    """EfficientNet's block: expansion (some blocks), TensorFlow-style padding before a
    stride-2 depthwise convolution, squeeze-excite, projection, and a residual with
    stochastic depth where the shape allows."""
    width = filters_in * expand
    y = x
    if expand != 1:
        y = layers.Conv2D(width, 1, use_bias=False)(y)
        y = layers.Activation("swish")(layers.BatchNormalization()(y))
    padding = "same"
    if stride == 2:
        low, high = kernel // 2 - 1, kernel // 2  # keras.applications' correct_pad, even sizes
        y = layers.ZeroPadding2D(((low, high), (low, high)))(y)
        padding = "valid"
    y = layers.DepthwiseConv2D(kernel, strides=stride, padding=padding, use_bias=False)(y)
    y = layers.Activation("swish")(layers.BatchNormalization()(y))
    s = layers.GlobalAveragePooling2D(keepdims=True)(y)
    s = layers.Conv2D(max(1, filters_in // 4), 1, activation="swish")(s)
    s = layers.Conv2D(width, 1, activation="sigmoid")(s)
    y = layers.Multiply()([y, s])
    y = layers.BatchNormalization()(layers.Conv2D(filters_out, 1, use_bias=False)(y))
    if stride == 1 and filters_in == filters_out:
        y = layers.Dropout(rate, noise_shape=(None, 1, 1, 1))(y)
        y = layers.Add()([y, x])
    return y


def efficient_stack():
    inputs = keras.Input((32, 32, 3))
    x = layers.Conv2D(8, 3, strides=2, padding="same", use_bias=False)(inputs)
    x = layers.Activation("swish")(layers.BatchNormalization()(x))
    total = sum(repeats for _, _, repeats, _, _ in STAGES)
    index, filters = 0, 8
    for expand, filters_out, repeats, kernel, stride in STAGES:
        for i in range(repeats):
            first = i == 0
            x = inverted_residual(
                x, filters, filters_out, expand, kernel, stride if first else 1, 0.2 * index / total
            )
            filters, index = filters_out, index + 1
    return keras.Model(inputs, layers.GlobalAveragePooling2D()(x))


def test_table_flags_widths_and_unread_arguments_come_from_the_rows(tmp_path):
    model = efficient_stack()
    randomize_scaled(model)  # weights scaled by fan-in: a deep stack keeps its scale
    _, _, result = check_parity(model, tmp_path, spatial=32, randomize_weights=False)
    source = result.module_path.read_text()
    table = source[source.index("STAGES = (") : source.index("\n)\n", source.index("STAGES = ("))]
    # flags a comparison of the block's arguments gives are computed, not tabled
    assert re.search(r"self\.use_\w+ = in_channels == out_channels\n", source)
    assert re.search(r"self\.use_\w+ = in_channels != channels\n", source)
    assert re.search(r"self\.use_\w+ = stride != 1\n", source)
    assert "True" not in table and "False" not in table
    # the squeeze-excite's width is the block's input width over 4
    assert re.search(r"= Gate\(channels, in_channels // 4\)", source)
    # the padding that varies is one tuple, and blocks without the step hold None there
    assert re.search(r"nn\.ZeroPad2d\((\w+)\) if self\.use_\w+ else None", source)
    assert "(0, 1, 0, 1)" in table and "(1, 2, 1, 2)" in table and "None" in table
    # the expansion's two modules are built under one if
    assert re.search(r"if self\.use_\w+:\n( +self\.\w+ = nn\.\w+\([^\n]*\n){2}", source)

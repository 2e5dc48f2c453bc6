"""The custom layers of keras.applications (LayerScale), and small builds of the models using them."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
import keras
import pytest
import torch
from keras import layers

from parity import check_parity, randomize


def layer_scale(dim, name):
    from keras.src.applications.convnext import LayerScale

    return LayerScale(1e-6, dim, name=name)


def test_layer_scale_in_convnext_block(tmp_path):
    inp = keras.Input((6, 6, 8))
    x = layers.DepthwiseConv2D(3, padding="same", name="dw")(inp)
    x = layers.LayerNormalization(epsilon=1e-6, name="ln")(x)
    x = layers.Dense(16, activation="gelu", name="pw1")(x)
    x = layers.Dense(8, name="pw2")(x)
    x = layer_scale(8, "scale")(x)
    _, _, result = check_parity(keras.Model(inp, inp + x, name="block"), tmp_path)
    source = result.module_path.read_text()
    assert "self.scale = nn.Parameter(torch.ones(8, 1, 1))" in source
    assert "* self.scale" in source
    assert "scale" in torch.load(result.weights_path, weights_only=True)


def test_layer_scale_on_vectors(tmp_path):
    inp = keras.Input((5,))
    x = layer_scale(5, "scale")(layers.Dense(5, name="proj")(inp))
    _, _, result = check_parity(keras.Model(inp, x), tmp_path)
    assert "nn.Parameter(torch.ones(5))" in result.module_path.read_text()


def test_layer_scale_between_flatten_and_dense(tmp_path):
    # The flattened features stay in torch's C·H·W order: gamma is reordered once.
    inp = keras.Input((4, 3, 2))
    x = layers.Conv2D(2, 1, name="conv")(inp)
    x = layers.Flatten()(x)
    x = layer_scale(24, "scale")(x)
    check_parity(keras.Model(inp, layers.Dense(3, name="head")(x)), tmp_path)


def app_parity(tmp_path, model):
    randomize(model, scale=0.05)  # deep stacks of random weights at 0.5 overflow float32
    return check_parity(model, tmp_path, batch_sizes=(2,), randomize_weights=False, tol=1e-4)


@pytest.mark.parametrize("minimalistic", [False, True])
def test_mobilenet_v3_small(tmp_path, minimalistic):
    model = keras.applications.MobileNetV3Small(
        weights=None, input_shape=(32, 32, 3), classes=5, minimalistic=minimalistic
    )
    _, _, result = app_parity(tmp_path, model)
    if not minimalistic:
        assert "F.relu6(x + 3.0) * 0.16666666666666666" in result.module_path.read_text()


def test_convnext_tiny(tmp_path):
    model = keras.applications.ConvNeXtTiny(weights=None, input_shape=(32, 32, 3), classes=5)
    _, net, result = app_parity(tmp_path, model)
    source = result.module_path.read_text()
    assert "class Stem(nn.Module)" in source  # the model's name left out of class names
    assert "stage1.0.layer_scale" in dict(net.named_parameters())

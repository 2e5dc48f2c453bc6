"""Activation functions and activation layers against Keras 3."""

import keras
import numpy as np
import pytest
import torch
from keras import layers
from parity import check_parity

import codegen
from codegen.api import generate
from codegen.conversion.layers.activations import ACTIVATIONS

NAMES = sorted(ACTIVATIONS)


def test_table_covers_keras():
    from keras.src.activations import ALL_OBJECTS_DICT

    # ``threshold`` needs arguments a config string cannot give, so it cannot be an activation=.
    assert set(ALL_OBJECTS_DICT) - {"threshold"} <= set(ACTIVATIONS)


@pytest.mark.parametrize("name", NAMES)
def test_dense_activation(tmp_path, name):
    inp = keras.Input((6,))
    out = layers.Dense(8, activation=name)(inp)
    check_parity(keras.Model(inp, out, name="m"), tmp_path)


@pytest.mark.parametrize("name", NAMES)
def test_activation_layer_on_image(tmp_path, name):
    # Inside the port the tensor is channels-first: axis-dependent activations (softmax,
    # log_softmax, glu, sparsemax) must act on torch dim 1.
    inp = keras.Input((9, 7, 3))
    x = layers.Conv2D(6, 3)(inp)
    out = layers.Activation(name)(x)
    _, _, result = check_parity(keras.Model(inp, out, name="m"), tmp_path, spatial=9)
    source = result.module_path.read_text()
    assert source.count("permute") == 2  # only at the interface


@pytest.mark.parametrize("name", ["softmax", "log_softmax", "sparsemax", "relu"])
def test_activation_on_sequence(tmp_path, name):
    inp = keras.Input((5, 4))
    out = layers.Activation(name)(inp)
    check_parity(keras.Model(inp, out, name="m"), tmp_path)


def test_helper_activation_called_once(tmp_path):
    inp = keras.Input((4,))
    out = layers.Dense(5, activation="squareplus", name="dense")(inp)
    source = generate(keras.Model(inp, out), command="x").source
    assert source.count("self.dense(") == 1


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"max_value": 6.0},
        {"max_value": 2.5},
        {"max_value": 0.0},
        {"negative_slope": 0.1},
        {"threshold": 0.5},
        {"negative_slope": 0.1, "max_value": 6.0},
        {"negative_slope": 0.2, "threshold": 0.3},
        {"threshold": 0.4, "max_value": 1.0},
        {"negative_slope": 0.05, "threshold": 0.25, "max_value": 1.5},
    ],
)
def test_relu_layer(tmp_path, kwargs):
    inp = keras.Input((9, 9, 3))
    x = layers.Conv2D(4, 3)(inp)
    out = layers.ReLU(**kwargs)(x)
    check_parity(keras.Model(inp, out, name="m"), tmp_path, spatial=9)


@pytest.mark.parametrize(
    "threshold, slope, max_value",
    [(-0.5, 0.0, None), (-0.5, 0.1, None), (-0.5, 0.0, 2.0), (-0.3, 0.2, 1.0)],
)
def test_relu_negative_threshold(tmp_path, threshold, slope, max_value):
    # The ReLU constructor refuses a negative threshold, keras.activations.relu does not.
    layer = layers.ReLU(max_value=max_value, negative_slope=slope)
    layer.threshold = threshold
    inp = keras.Input((12,))
    out = layer(inp)
    assert layer.get_config()["threshold"] == threshold
    check_parity(keras.Model(inp, out, name="m"), tmp_path)


@pytest.mark.parametrize(
    "kwargs", [{"threshold": 0.5}, {"negative_slope": 0.1, "threshold": 0.5, "max_value": 3.0}]
)
def test_keras_relu_handles_infinities(tmp_path, kwargs):
    inp = keras.Input((4,))
    out = layers.ReLU(**kwargs)(inp)
    model = keras.Model(inp, out, name="m")
    _, torch_model, _ = check_parity(model, tmp_path)
    x = np.array([[-np.inf, np.inf, 0.2, 4.0]], np.float32)
    expected = np.asarray(model(x))
    got = torch_model(torch.from_numpy(x)).numpy()
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("slope", [0.3, 0.01, 0.0])
def test_leaky_relu(tmp_path, slope):
    inp = keras.Input((6,))
    out = layers.LeakyReLU(negative_slope=slope)(inp)
    check_parity(keras.Model(inp, out, name="m"), tmp_path)


@pytest.mark.parametrize("alpha", [1.0, 0.5])
def test_elu(tmp_path, alpha):
    inp = keras.Input((9, 9, 3))
    out = layers.ELU(alpha=alpha)(layers.Conv2D(4, 3)(inp))
    check_parity(keras.Model(inp, out, name="m"), tmp_path, spatial=9)


@pytest.mark.parametrize(
    "shape, shared_axes",
    [
        ((6,), None),
        ((6,), [1]),
        ((5, 4), None),
        ((5, 4), [1]),
        ((5, 4), [2]),
        (None, None),
        (None, [1, 2]),
        (None, [1]),
        (None, [2]),
        (None, [3]),
        (None, [1, 2, 3]),
    ],
)
def test_prelu(tmp_path, shape, shared_axes):
    if shape is None:  # image: a Conv2D first, so the PReLU sees a channels-first tensor
        inp = keras.Input((8, 7, 3))
        x = layers.Conv2D(5, 3)(inp)
    else:
        inp = keras.Input(shape)
        x = inp
    out = layers.PReLU(shared_axes=shared_axes)(x)
    _, _, result = check_parity(keras.Model(inp, out, name="m"), tmp_path)
    source = result.module_path.read_text()
    if shape is None and shared_axes == [1, 2]:
        assert "nn.PReLU(5)" in source


@pytest.mark.parametrize("axis", [-1, 1, 2, 3, [1, 2], [-1, 1], [3]])
def test_softmax_on_image(tmp_path, axis):
    inp = keras.Input((6, 5, 3))
    x = layers.Conv2D(4, 3, padding="same")(inp)
    out = layers.Softmax(axis=axis)(x)
    _, _, result = check_parity(keras.Model(inp, out, name="m"), tmp_path)
    assert result.module_path.read_text().count("permute") == 2  # the axis is remapped


@pytest.mark.parametrize("axis", [-1, 1, [1, 2]])
def test_softmax_on_sequence(tmp_path, axis):
    inp = keras.Input((5, 4))
    out = layers.Softmax(axis=axis)(inp)
    check_parity(keras.Model(inp, out, name="m"), tmp_path)


@pytest.mark.parametrize("mask_shape", [(5, 4), (1, 4), (5, 1)])
def test_softmax_with_mask(tmp_path, mask_shape):
    inp = keras.Input((5, 4))
    mask = keras.Input(mask_shape)
    out = layers.Softmax()(inp, mask=mask)
    model = keras.Model([inp, mask], out, name="m")
    rng = np.random.default_rng(0)
    for batch in (1, 3):
        arrays = [
            rng.standard_normal((batch, 5, 4)).astype(np.float32),
            (rng.random((batch, *mask_shape)) > 0.4).astype(np.float32),
        ]
        check_parity(model, tmp_path, inputs=arrays)


def test_softmax_with_mask_on_image(tmp_path):
    inp = keras.Input((6, 5, 3))
    mask = keras.Input((6, 5, 4), dtype="bool")
    x = layers.Conv2D(4, 3, padding="same")(inp)
    out = layers.Softmax(axis=[1, 2])(x, mask=mask)
    model = keras.Model([inp, mask], out, name="m")
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal((2, 6, 5, 3)).astype(np.float32), rng.random((2, 6, 5, 4)) > 0.3]
    check_parity(model, tmp_path, inputs=arrays)


@pytest.mark.parametrize(
    "activation",
    [
        layers.LeakyReLU(negative_slope=0.1),
        layers.ReLU(max_value=6.0),
        layers.ReLU(negative_slope=0.1, threshold=0.2),
        layers.ELU(alpha=0.7),
        layers.Softmax(),
    ],
    ids=["leaky", "relu6", "relu_general", "elu", "softmax"],
)
def test_activation_layer_as_argument(tmp_path, activation):
    inp = keras.Input((9, 9, 3))
    out = layers.Conv2D(4, 3, activation=activation)(inp)
    check_parity(keras.Model(inp, out, name="m"), tmp_path, spatial=9)


@pytest.mark.parametrize("name", ["softmax", "relu", "sparsemax", "log_softmax"])
def test_activation_between_flatten_and_dense(tmp_path, name):
    inp = keras.Input((6, 5, 3))
    x = layers.Conv2D(4, 3)(inp)
    x = layers.Flatten()(x)
    x = layers.Activation(name)(x)
    x = layers.PReLU()(x)
    out = layers.Dense(3)(x)
    _, _, result = check_parity(keras.Model(inp, out, name="m"), tmp_path)
    assert result.module_path.read_text().count("permute") == 1  # kernel rows reordered instead


def test_custom_activation_is_unsupported(tmp_path):
    @keras.saving.register_keras_serializable(package="test")
    def relu(x):  # a custom function that happens to be called "relu"
        return x * 2.0

    inp = keras.Input((4,))
    out = layers.Dense(3, activation=relu)(inp)
    with pytest.raises(codegen.UnsupportedError, match="activation"):
        generate(keras.Model(inp, out), command="x")


def test_prelu_module_is_trainable(tmp_path):
    inp = keras.Input((5, 4))
    out = layers.PReLU(shared_axes=[1])(inp)
    _, torch_model, _ = check_parity(keras.Model(inp, out, name="m"), tmp_path)
    assert all(p.requires_grad for p in torch_model.parameters())
    assert torch.is_tensor(next(iter(torch_model.parameters())))


def test_serialized_activation_values():
    from codegen.conversion.context import Unsupported
    from codegen.conversion.layers.activations import activation_name

    assert activation_name(None) == "linear"
    assert activation_name("gelu") == "gelu"
    old = {"module": "keras.activations", "class_name": "function", "config": "relu"}
    assert activation_name({**old, "registered_name": "relu"}) == "relu"
    for custom in (
        {**old, "registered_name": "Custom>relu"},
        {"module": "my_package", "class_name": "function", "config": "relu"},
    ):
        with pytest.raises(Unsupported):
            activation_name(custom)

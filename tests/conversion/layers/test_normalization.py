"""Normalization layers against Keras 3, at inference and in training mode."""

import keras
import numpy as np
import pytest
import torch
from keras import layers
from parity import check_parity


def image_model(layer, shape=(8, 7, 3), channels=6, name="m"):
    """A Conv2D first, so that the layer sees a channels-first tensor inside the port."""
    inp = keras.Input(shape)
    x = layers.Conv2D(channels, 3, padding="same")(inp)
    return keras.Model(inp, layer(x), name=name)


def seq_model(layer, shape=(5, 6), name="m"):
    inp = keras.Input(shape)
    return keras.Model(inp, layer(inp), name=name)


# -- BatchNormalization ---------------------------------------------------------------------
BN_OPTIONS = [
    {},
    {"epsilon": 1.001e-5, "momentum": 0.9},
    {"center": False},
    {"scale": False},
    {"center": False, "scale": False},
]


@pytest.mark.parametrize("kwargs", BN_OPTIONS)
def test_batch_norm_image(tmp_path, kwargs):
    _, _, result = check_parity(image_model(layers.BatchNormalization(**kwargs)), tmp_path)
    assert result.module_path.read_text().count("permute") == 2


@pytest.mark.parametrize("kwargs", BN_OPTIONS)
def test_batch_norm_vector(tmp_path, kwargs):
    check_parity(seq_model(layers.BatchNormalization(**kwargs), shape=(6,)), tmp_path)


@pytest.mark.parametrize("axis", [-1, 1, 2])
def test_batch_norm_sequence(tmp_path, axis):
    check_parity(seq_model(layers.BatchNormalization(axis=axis)), tmp_path)


@pytest.mark.parametrize("axis", [1, 2, 3, -1])
def test_batch_norm_image_axes(tmp_path, axis):
    check_parity(image_model(layers.BatchNormalization(axis=axis)), tmp_path)


def test_batch_norm_channels_first(tmp_path):
    # TensorFlow's CPU Conv2D cannot run channels_first; pooling can (Keras transposes).
    inp = keras.Input((3, 8, 7))
    x = layers.AveragePooling2D(2, data_format="channels_first")(inp)
    out = layers.BatchNormalization(axis=1)(x)
    _, _, result = check_parity(keras.Model(inp, out, name="m"), tmp_path)
    source = result.module_path.read_text()
    assert "permute" not in source and "movedim" not in source


def test_batch_norm_3d(tmp_path):
    inp = keras.Input((5, 6, 4, 2))
    x = layers.Conv3D(3, 3, padding="same")(inp)
    out = layers.BatchNormalization()(x)
    check_parity(keras.Model(inp, out, name="m"), tmp_path)


def test_batch_norm_after_flatten(tmp_path):
    inp = keras.Input((6, 5, 3))
    x = layers.Flatten()(layers.Conv2D(4, 3)(inp))
    x = layers.BatchNormalization()(x)
    x = layers.LayerNormalization()(x)
    x = layers.UnitNormalization()(x)
    x = layers.RMSNormalization()(x)
    out = layers.Dense(3)(x)
    _, _, result = check_parity(keras.Model(inp, out, name="m"), tmp_path)
    assert result.module_path.read_text().count("permute") == 1  # no permute before flatten


@pytest.mark.parametrize(
    "kwargs", [{}, {"momentum": 0.9, "epsilon": 1e-5}, {"center": False}, {"scale": False}]
)
@pytest.mark.parametrize("kind", ["image", "vector", "sequence"])
def test_batch_norm_training(tmp_path, kind, kwargs):
    """torch train() vs keras training=True: batch statistics, same output and moving mean."""
    layer = layers.BatchNormalization(**kwargs)
    model = {
        "image": lambda: image_model(layer),
        "vector": lambda: seq_model(layer, shape=(6,)),
        "sequence": lambda: seq_model(layer, shape=(5, 6)),
    }[kind]()
    # torch refuses batch statistics of a single value per channel (batch 1 on (N, C)).
    sizes = (2, 3) if kind == "vector" else (1, 3)
    _, torch_model, result = check_parity(model, tmp_path, training=True, batch_sizes=sizes)
    source = result.module_path.read_text()
    assert "unbiased batch" in source  # the documented difference
    # Both updated their moving statistics with the same batches: the means agree exactly.
    bn = next(m for m in torch_model.modules() if hasattr(m, "running_mean"))
    np.testing.assert_allclose(
        bn.running_mean.numpy(), layer.moving_mean.numpy(), rtol=1e-5, atol=1e-6
    )


def test_batch_norm_training_variance_update(tmp_path):
    """Keras updates the moving variance with the biased batch variance, torch the unbiased."""
    layer = layers.BatchNormalization(momentum=0.5)
    model = seq_model(layer, shape=(4,))
    _, torch_model, _ = check_parity(model, tmp_path)
    var0 = layer.moving_variance.numpy().copy()
    x = np.random.default_rng(5).standard_normal((8, 4)).astype(np.float32)
    model(x, training=True)
    torch_model.train()
    with torch.no_grad():
        torch_model(torch.from_numpy(x))
    bn = next(m for m in torch_model.modules() if hasattr(m, "running_var"))
    biased = x.var(axis=0)
    np.testing.assert_allclose(layer.moving_variance.numpy(), 0.5 * var0 + 0.5 * biased, rtol=1e-5)
    np.testing.assert_allclose(bn.running_var.numpy(), 0.5 * var0 + 0.5 * biased * 8 / 7, rtol=1e-5)


@pytest.mark.parametrize("kwargs", [{}, {"center": False}])
def test_batch_norm_frozen_uses_moving_statistics(tmp_path, kwargs):
    layer = layers.BatchNormalization(**kwargs)
    model = image_model(layer)
    layer.trainable = False
    _, torch_model, result = check_parity(model, tmp_path, training=True)
    assert "frozen=True" in result.module_path.read_text()
    bn = next(m for m in torch_model.modules() if hasattr(m, "running_mean"))
    before = bn.running_mean.clone()
    torch_model.train()
    with torch.no_grad():
        torch_model(torch.randn(2, 8, 7, 3))
    assert torch.equal(bn.running_mean, before)


def test_batch_norm_shared_layer(tmp_path):
    bn = layers.BatchNormalization()
    a, b = keras.Input((6,)), keras.Input((6,))
    model = keras.Model([a, b], [bn(a), bn(b)], name="m")
    check_parity(model, tmp_path)


# -- LayerNormalization ---------------------------------------------------------------------
LN_OPTIONS = [
    {},
    {"epsilon": 1e-6},
    {"center": False},
    {"scale": False},
    {"center": False, "scale": False},
    {"rms_scaling": True},
]


@pytest.mark.parametrize("kwargs", LN_OPTIONS)
def test_layer_norm_image_channels(tmp_path, kwargs):
    # On a channels-last image Keras normalizes over C only: torch dim 1 inside the port.
    _, _, result = check_parity(image_model(layers.LayerNormalization(**kwargs)), tmp_path)
    assert result.module_path.read_text().count("permute") == 2


@pytest.mark.parametrize("axis", [[1, 2, 3], [1, 2], [2, 3], [-3, -2, -1], 1, 2, [1, 3], [-1, 1]])
@pytest.mark.parametrize("kwargs", [{}, {"rms_scaling": True}])
def test_layer_norm_image_axes(tmp_path, axis, kwargs):
    layer = layers.LayerNormalization(axis=axis, **kwargs)
    check_parity(image_model(layer, shape=(7, 5, 3), channels=4), tmp_path)


@pytest.mark.parametrize("kwargs", LN_OPTIONS)
@pytest.mark.parametrize("axis", [-1, 1, [1, 2]])
def test_layer_norm_sequence(tmp_path, axis, kwargs):
    check_parity(seq_model(layers.LayerNormalization(axis=axis, **kwargs)), tmp_path)


def test_layer_norm_training_matches(tmp_path):
    check_parity(image_model(layers.LayerNormalization()), tmp_path, training=True)


def test_layer_norm_dynamic_axis_without_weights(tmp_path):
    inp = keras.Input((None, 4))
    out = layers.LayerNormalization(axis=1, center=False, scale=False)(inp)
    check_parity(keras.Model(inp, out, name="m"), tmp_path, spatial=6)


# -- RMSNormalization -------------------------------------------------------------------------
@pytest.mark.parametrize("axis", [-1, [2, 3], [1, 2, 3]])
def test_rms_norm_image(tmp_path, axis):
    check_parity(image_model(layers.RMSNormalization(axis=axis)), tmp_path)


@pytest.mark.parametrize("kwargs", [{}, {"epsilon": 1e-3}, {"axis": [1, 2]}])
def test_rms_norm_sequence(tmp_path, kwargs):
    check_parity(seq_model(layers.RMSNormalization(**kwargs)), tmp_path)


# -- GroupNormalization -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs",
    [
        {"groups": 2},
        {"groups": 3, "epsilon": 1e-5},
        {"groups": 1},
        {"groups": -1},
        {"groups": 6},
        {"groups": 2, "center": False},
        {"groups": 2, "scale": False},
        {"groups": 3, "center": False, "scale": False},
    ],
)
def test_group_norm_image(tmp_path, kwargs):
    _, _, result = check_parity(image_model(layers.GroupNormalization(**kwargs)), tmp_path)
    assert result.module_path.read_text().count("permute") == 2


@pytest.mark.parametrize("axis", [-1, 1, 2])
def test_group_norm_sequence(tmp_path, axis):
    layer = layers.GroupNormalization(groups={-1: 3, 1: 5, 2: 2}[axis], axis=axis)
    check_parity(seq_model(layer, shape=(5, 6)), tmp_path)


@pytest.mark.parametrize("axis", [1, 2])
def test_group_norm_image_axes(tmp_path, axis):
    layer = layers.GroupNormalization(groups=2, axis=axis)
    check_parity(image_model(layer, shape=(8, 6, 3)), tmp_path)


def test_group_norm_vector(tmp_path):
    check_parity(seq_model(layers.GroupNormalization(groups=3), shape=(6,)), tmp_path)


def test_group_norm_channels_first(tmp_path):
    inp = keras.Input((6, 8, 7))
    x = layers.AveragePooling2D(2, data_format="channels_first")(inp)
    out = layers.GroupNormalization(groups=3, axis=1)(x)
    check_parity(keras.Model(inp, out, name="m"), tmp_path)


def test_group_norm_training_matches(tmp_path):
    check_parity(image_model(layers.GroupNormalization(groups=2)), tmp_path, training=True)


# -- UnitNormalization --------------------------------------------------------------------------
@pytest.mark.parametrize("axis", [-1, 1, 2, [1, 2], [1, 2, 3]])
def test_unit_norm_image(tmp_path, axis):
    check_parity(image_model(layers.UnitNormalization(axis=axis)), tmp_path)


@pytest.mark.parametrize("axis", [-1, 1, [1, 2]])
def test_unit_norm_sequence(tmp_path, axis):
    check_parity(seq_model(layers.UnitNormalization(axis=axis)), tmp_path)


def test_unit_norm_zero_vector(tmp_path):
    model = seq_model(layers.UnitNormalization(), shape=(4,))
    _, torch_model, _ = check_parity(model, tmp_path)
    x = np.zeros((2, 4), np.float32)
    np.testing.assert_array_equal(torch_model(torch.from_numpy(x)).numpy(), np.asarray(model(x)))

"""Preprocessing layers against Keras 3: Rescaling, Normalization, augmentation."""

import keras
import numpy as np
import pytest
import torch
from keras import layers
from parity import check_parity, randomize

from codegen.conversion.layers.preprocessing import AUGMENTATION_LAYERS


def with_conv(layer, shape=(9, 8, 3), after=True):
    """Preprocessing layer then a Conv2D: the input is permuted to channels-first first."""
    inp = keras.Input(shape)
    x = layer(inp)
    out = layers.Conv2D(4, 3)(x) if after else x
    return keras.Model(inp, out, name="m")


# -- Rescaling -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "scale, offset",
    [
        (1 / 255, 0.0),
        (1 / 127.5, -1.0),
        (1.0, 0.5),
        (2.0, 0),
        ([0.5, 2.0, 3.0], 0.0),
        ([0.5, 2.0, 3.0], [0.1, -0.2, 0.3]),
        (0.5, [0.1, -0.2, 0.3]),
        (np.array([0.5, 2.0, 3.0], "float32"), np.float32(0.25)),
        (np.full((9, 8, 1), 0.5, "float32"), 0.0),
    ],
)
@pytest.mark.parametrize("after", [True, False])
def test_rescaling(tmp_path, scale, offset, after):
    model = with_conv(layers.Rescaling(scale, offset=offset), after=after)
    _, torch_model, result = check_parity(model, tmp_path)
    source = result.module_path.read_text()
    assert source.count("permute") == (2 if after else 0)
    # Nothing from the configuration is in the state_dict (Keras has no weights here).
    assert not any(k.startswith("rescaling") for k in torch_model.state_dict())


def test_rescaling_identity_and_uint8_input(tmp_path):
    inp = keras.Input((6, 5, 3), dtype="uint8")
    x = layers.Rescaling(1.0)(inp)
    y = layers.Rescaling(1 / 255)(inp)
    model = keras.Model(inp, [x, y], name="m")
    rng = np.random.default_rng(0)
    arrays = [rng.integers(0, 256, (2, 6, 5, 3)).astype("uint8")]
    _, torch_model, _ = check_parity(model, tmp_path, inputs=arrays)
    outs = torch_model(torch.from_numpy(arrays[0]))
    assert all(o.dtype == torch.float32 for o in outs)


def test_rescaling_on_vector(tmp_path):
    inp = keras.Input((3,))
    out = layers.Rescaling([1.0, 2.0, 3.0], offset=-1.0)(inp)
    check_parity(keras.Model(inp, out, name="m"), tmp_path)


# -- Normalization ---------------------------------------------------------------------------
@pytest.mark.parametrize("invert", [False, True])
@pytest.mark.parametrize("axis", [-1, None, (1, 2), (1, 2, 3), 2])
def test_normalization_adapted(tmp_path, axis, invert):
    layer = layers.Normalization(axis=axis, invert=invert)
    layer.adapt(np.random.default_rng(0).standard_normal((16, 9, 8, 3)).astype("float32") * 2 + 1)
    model = with_conv(layer)
    _, torch_model, _ = check_parity(model, tmp_path, randomize_weights=False)
    assert any(k.endswith(".count") for k in torch_model.state_dict())
    # Other statistics too. Keras reads its variables into tensors when it is built, adapted
    # or loaded (finalize_state), not when they are assigned.
    randomize(model)
    layer.finalize_state()
    check_parity(model, tmp_path, randomize_weights=False)


@pytest.mark.parametrize("axis", [-1, (1, 2)])
def test_normalization_variables_assigned_after_finalize(tmp_path, axis):
    # Keras keeps computing with the constants of its last finalize_state(); so does the port,
    # and it says so.
    layer = layers.Normalization(axis=axis)
    layer.adapt(np.random.default_rng(0).standard_normal((16, 9, 8, 3)).astype("float32") * 2 + 1)
    model = with_conv(layer)
    randomize(model)  # assigns mean and variance too, without finalize_state()
    assert not np.allclose(np.asarray(layer.mean).ravel(), layer.adapt_mean.numpy().ravel())
    _, torch_model, result = check_parity(model, tmp_path, randomize_weights=False)
    state = torch_model.state_dict()
    (key,) = [k for k in state if k.endswith(".mean")]
    assert np.allclose(state[key].numpy().ravel(), np.asarray(layer.mean).ravel())
    source = result.module_path.read_text()
    assert "Keras computes with the mean and variance it snapshotted" in " ".join(source.split())


@pytest.mark.parametrize("invert", [False, True])
@pytest.mark.parametrize(
    "axis, mean, variance",
    [
        (-1, [0.485, 0.456, 0.406], [0.229**2, 0.224**2, 0.225**2]),
        (None, 0.5, 0.25),
        (-1, 0.5, 2.0),
        ((1, 2, 3), np.full((8, 3), 0.1), np.full((8, 3), 4.0)),
        ((1, 2), np.arange(72).reshape(9, 8) / 72, np.ones((9, 8))),
    ],
)
def test_normalization_given(tmp_path, axis, mean, variance, invert):
    layer = layers.Normalization(axis=axis, mean=mean, variance=variance, invert=invert)
    model = with_conv(layer)
    _, torch_model, _ = check_parity(model, tmp_path)
    assert not any("normalization" in k for k in torch_model.state_dict())


def test_normalization_zero_variance(tmp_path):
    # Keras divides by max(sqrt(variance), 1e-7).
    layer = layers.Normalization(mean=[0.0, 1.0, 2.0], variance=[0.0, 1e-20, 4.0])
    inp = keras.Input((3,))
    check_parity(keras.Model(inp, layer(inp), name="m"), tmp_path)


def test_normalization_sequence(tmp_path):
    layer = layers.Normalization(axis=-1)
    layer.adapt(np.random.default_rng(0).standard_normal((8, 5, 4)).astype("float32"))
    inp = keras.Input((5, 4))
    check_parity(keras.Model(inp, layer(inp), name="m"), tmp_path, randomize_weights=False)


# -- augmentation ------------------------------------------------------------------------------
def _augmentations():
    made = {
        "RandomFlip": [layers.RandomFlip("horizontal"), layers.RandomFlip()],
        "RandomRotation": [
            layers.RandomRotation(0.2, fill_mode="nearest", interpolation="nearest")
        ],
        "RandomZoom": [layers.RandomZoom(0.2, 0.3, fill_mode="constant", fill_value=1.0)],
        "RandomTranslation": [layers.RandomTranslation(0.1, 0.2)],
        "RandomContrast": [layers.RandomContrast(0.3)],
        "RandomBrightness": [layers.RandomBrightness(0.2, value_range=(0, 1))],
        "RandomCrop": [layers.RandomCrop(9, 8), layers.RandomCrop(5, 4)],
        "RandomHue": [layers.RandomHue(0.2)],
        "RandomSaturation": [layers.RandomSaturation(0.2)],
        "RandomSharpness": [layers.RandomSharpness(0.2)],
        "RandomPosterization": [layers.RandomPosterization(4)],
        "RandomColorDegeneration": [layers.RandomColorDegeneration(0.2)],
        "RandomShear": [layers.RandomShear(0.1, 0.2)],
    }
    for name in AUGMENTATION_LAYERS:
        if name not in made and hasattr(layers, name):
            made[name] = [getattr(layers, name)()]
    return [
        (f"{name}{i}", layer)
        for name, group in sorted(made.items())
        for i, layer in enumerate(group)
    ]


AUGMENTATIONS = _augmentations()


@pytest.mark.parametrize("layer", [a[1] for a in AUGMENTATIONS], ids=[a[0] for a in AUGMENTATIONS])
def test_augmentation_is_identity_at_inference(tmp_path, layer):
    model = with_conv(layer)
    _, torch_model, result = check_parity(model, tmp_path)
    source = result.module_path.read_text()
    assert "nn.Identity()" in source and "data pipeline" in source
    assert source.count("permute") == 2
    # Still the identity in training mode: the augmentation is left to the data pipeline.
    x = torch.randn(2, 9, 8, 3)
    with torch.no_grad():
        expected = torch_model(x)
        torch_model.train()
        assert torch.equal(torch_model(x), expected)


def test_every_keras_augmentation_layer_is_registered():
    from codegen.conversion.pipeline import converter_registry

    registry = converter_registry(entry_points=False)

    names = [n for n in dir(layers) if n.startswith("Random")]
    assert names and all(registry.lookup(n) is not None for n in names)


def test_augmentation_stack_in_sequential(tmp_path):
    model = keras.Sequential(
        [
            keras.Input((9, 8, 3)),
            layers.RandomFlip("horizontal"),
            layers.RandomRotation(0.1),
            layers.RandomZoom(0.1),
            layers.Rescaling(1 / 255),
            layers.Conv2D(4, 3, activation="relu"),
            layers.GlobalAveragePooling2D(),
            layers.Dropout(0.2),
            layers.Dense(2, activation="softmax"),
        ],
        name="augmented",
    )
    check_parity(model, tmp_path)


def test_augmentation_uint8_input(tmp_path):
    inp = keras.Input((6, 5, 3), dtype="uint8")
    out = layers.RandomFlip()(inp)
    model = keras.Model(inp, out, name="m")
    arrays = [np.random.default_rng(0).integers(0, 256, (2, 6, 5, 3)).astype("uint8")]
    check_parity(model, tmp_path, inputs=arrays)

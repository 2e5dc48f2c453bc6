"""Dense, Identity and the regularization layers against Keras 3."""

import keras
import numpy as np
import pytest
import torch
from keras import layers
from parity import check_parity, check_source, from_torch, random_inputs, randomize, to_torch

import codegen
from codegen.api import generate
from codegen.check.compare import keras_outputs, load_module_from_file


def image_input(shape=(8, 7, 3), channels=6):
    inp = keras.Input(shape)
    return inp, layers.Conv2D(channels, 3, padding="same")(inp)


# -- Dense -------------------------------------------------------------------------------------
@pytest.mark.parametrize("use_bias", [True, False])
@pytest.mark.parametrize("shape", [(6,), (5, 6), (4, 5, 6)])
def test_dense_ranks(tmp_path, shape, use_bias):
    inp = keras.Input(shape)
    out = layers.Dense(7, use_bias=use_bias, activation="tanh")(inp)
    check_parity(keras.Model(inp, out, name="m"), tmp_path)


@pytest.mark.parametrize("use_bias", [True, False])
def test_dense_on_channels_first_image_is_1x1_conv(tmp_path, use_bias):
    inp, x = image_input()
    out = layers.Dense(5, use_bias=use_bias, activation="softmax")(x)
    _, _, result = check_parity(keras.Model(inp, out, name="m"), tmp_path)
    source = result.module_path.read_text()
    assert "nn.Conv2d(6, 5, kernel_size=1" in source and source.count("permute") == 2


def test_dense_on_channels_first_sequence_and_volume(tmp_path):
    inp = keras.Input((9, 3))
    x = layers.Dense(4)(layers.Conv1D(5, 3)(inp))
    check_parity(keras.Model(inp, x, name="m1"), tmp_path)
    inp = keras.Input((5, 6, 4, 2))
    x = layers.Dense(4)(layers.Conv3D(3, 3)(inp))
    check_parity(keras.Model(inp, x, name="m2"), tmp_path)


def check_without_param_count(model, tmp_path):
    """check_parity's comparison for ports with fewer parameters than Keras counts (LoRA is
    merged into the kernel, so the factors are not parameters of the port)."""
    randomize(model)
    result = codegen.convert(model, tmp_path / "port", force=True)
    source = result.module_path.read_text()
    check_source(source, result.module_path)
    torch_model = getattr(load_module_from_file(result.module_path), result.class_name)()
    torch_model.load_state_dict(torch.load(result.weights_path, weights_only=True), strict=True)
    torch_model.eval()
    for batch in (1, 3):
        arrays = random_inputs(model, batch, seed=batch)
        (ref,) = keras_outputs(model, arrays)
        with torch.no_grad():
            out = torch_model(*[to_torch(a, p) for a, p in zip(arrays, result.input_perms)])
        out = from_torch(out, result.output_perms[0])
        assert out.shape == ref.shape
        assert np.abs(out - ref).max() <= 1e-5 * max(1.0, np.abs(ref).max())
    return source


@pytest.mark.parametrize("lora_alpha", [None, 8])
@pytest.mark.parametrize("where", ["vector", "sequence", "image", "flatten"])
def test_dense_lora_is_merged(tmp_path, where, lora_alpha):
    layer = layers.Dense(5, lora_rank=2, lora_alpha=lora_alpha, activation="relu")
    if where == "vector":
        inp = keras.Input((6,))
        out = layer(inp)
    elif where == "sequence":
        inp = keras.Input((4, 6))
        out = layer(inp)
    elif where == "image":
        inp, x = image_input()
        out = layer(x)
    else:
        inp, x = image_input((5, 4, 3), 2)
        out = layer(layers.Flatten()(x))
    model = keras.Model(inp, out, name="m")
    source = check_without_param_count(model, tmp_path)
    assert float(np.abs(layer.lora_kernel_b.numpy()).max()) > 0  # the update is not zero
    assert "lora" not in source.split('"""', 2)[2].lower()  # below the module docstring


def test_dense_after_flatten_reorders_rows(tmp_path):
    inp, x = image_input((5, 4, 3), 2)
    out = layers.Dense(3)(layers.Flatten()(x))
    _, _, result = check_parity(keras.Model(inp, out, name="m"), tmp_path)
    assert result.module_path.read_text().count("permute") == 1


def test_quantized_dense_is_unsupported():
    inp = keras.Input((4,))
    layer = layers.Dense(3)
    model = keras.Model(inp, layer(inp))
    layer.quantize("int8")
    with pytest.raises(codegen.UnsupportedError, match="quantized"):
        generate(model, command="x")


# -- identity layers ---------------------------------------------------------------------------
IDENTITY_AT_INFERENCE = [
    lambda: layers.Identity(),
    lambda: layers.ActivityRegularization(l1=0.01, l2=0.02),
    lambda: layers.Dropout(0.4),
    lambda: layers.Dropout(0.0),
    lambda: layers.Dropout(1.0),
    lambda: layers.Dropout(0.3, noise_shape=(None, 1, 1, 6)),
    lambda: layers.Dropout(0.3, noise_shape=(None, 1, None, None)),
    lambda: layers.Dropout(0.3, noise_shape=(1, None, None, 6), seed=3),
    lambda: layers.SpatialDropout2D(0.3),
    lambda: layers.GaussianNoise(0.2),
    lambda: layers.GaussianNoise(0.0),
    lambda: layers.GaussianDropout(0.3),
    lambda: layers.AlphaDropout(0.2),
    lambda: layers.AlphaDropout(0.2, noise_shape=(None, 1, 1, 6)),
]


@pytest.mark.parametrize("make", IDENTITY_AT_INFERENCE, ids=range(len(IDENTITY_AT_INFERENCE)))
def test_identity_at_inference_image(tmp_path, make):
    inp, x = image_input()
    out = make()(x)
    _, _, result = check_parity(keras.Model(inp, out, name="m"), tmp_path)
    assert result.module_path.read_text().count("permute") == 2


@pytest.mark.parametrize(
    "make",
    [
        lambda: layers.Dropout(0.5),
        lambda: layers.Dropout(0.5, noise_shape=(None, 1, 6)),
        lambda: layers.SpatialDropout1D(0.5),
        lambda: layers.GaussianNoise(0.1),
        lambda: layers.GaussianDropout(0.5),
        lambda: layers.AlphaDropout(0.5),
        lambda: layers.AlphaDropout(0.5, noise_shape=(None, 1, 6)),
    ],
    ids=range(7),
)
def test_identity_at_inference_sequence(tmp_path, make):
    inp = keras.Input((5, 6))
    check_parity(keras.Model(inp, make()(inp), name="m"), tmp_path)


def test_spatial_dropout_3d_and_between_flatten_and_dense(tmp_path):
    inp = keras.Input((5, 6, 4, 2))
    x = layers.SpatialDropout3D(0.3)(layers.Conv3D(3, 3)(inp))
    check_parity(keras.Model(inp, x, name="m1"), tmp_path)
    inp, x = image_input((5, 4, 3), 2)
    x = layers.Flatten()(x)
    for layer in (
        layers.Dropout(0.5, noise_shape=(None, 1)),
        layers.AlphaDropout(0.2, noise_shape=(1, None)),
        layers.Dropout(0.5),
        layers.GaussianNoise(0.1),
        layers.AlphaDropout(0.1),
        layers.Identity(),
    ):
        x = layer(x)
    _, _, result = check_parity(keras.Model(inp, layers.Dense(3)(x), name="m2"), tmp_path)
    assert result.module_path.read_text().count("permute") == 1


def _port(model, tmp_path):
    _, torch_model, _ = check_parity(model, tmp_path)
    torch_model.train()
    torch.manual_seed(0)
    return torch_model


def test_dropout_training_behaviour(tmp_path):
    inp = keras.Input((20, 30, 8))
    out = layers.Dropout(0.25)(inp)
    torch_model = _port(keras.Model(inp, out, name="m"), tmp_path)
    x = torch.ones(4, 20, 30, 8)
    y = torch_model(x)
    assert all(np.isclose(v, 0.0) or np.isclose(v, 1 / 0.75) for v in np.unique(y.numpy()))
    assert 0.2 < float((y == 0).float().mean()) < 0.3


@pytest.mark.parametrize(
    "make, shared",
    [
        (lambda: layers.Dropout(0.5, noise_shape=(None, 1, 1, 8)), (1, 2)),
        (lambda: layers.Dropout(0.5, noise_shape=(None, 1, None, None)), (1,)),
        (lambda: layers.SpatialDropout2D(0.5), (1, 2)),
    ],
)
def test_shared_mask_training_behaviour(tmp_path, make, shared):
    inp = keras.Input((6, 5, 8))
    torch_model = _port(keras.Model(inp, make()(inp), name="m"), tmp_path)
    y = torch_model(torch.ones(3, 6, 5, 8)).numpy()
    assert all(np.isclose(v, 0.0) or np.isclose(v, 2.0) for v in np.unique(y))
    # One mask value along every shared (Keras) axis.
    for axis in shared:
        assert (np.take(y, [0], axis=axis) == y).all()
    assert len(np.unique(y)) == 2


def test_noise_training_behaviour(tmp_path):
    inp = keras.Input((1000,))
    x = layers.GaussianNoise(0.5)(inp)
    torch_model = _port(keras.Model(inp, x, name="m"), tmp_path)
    y = torch_model(torch.zeros(4, 1000))
    assert abs(float(y.std()) - 0.5) < 0.05
    inp = keras.Input((1000,))
    x = layers.GaussianDropout(0.2)(inp)
    torch_model = _port(keras.Model(inp, x, name="m2"), tmp_path)
    y = torch_model(torch.ones(4, 1000))
    assert abs(float(y.std()) - 0.5) < 0.05 and abs(float(y.mean()) - 1.0) < 0.05


@pytest.mark.parametrize("noise_shape", [None, (None, 1, 1000)])
def test_alpha_dropout_training_behaviour(tmp_path, noise_shape):
    """Same affine transform as Keras: the kept and dropped values are exact."""
    rate = 0.3
    inp = keras.Input((4, 1000))
    model = keras.Model(inp, layers.AlphaDropout(rate, noise_shape=noise_shape)(inp), name="m")
    torch_model = _port(model, tmp_path)
    x = torch.full((2, 4, 1000), 0.7)
    y = torch_model(x).numpy()
    alpha_p = -1.7580993408473766
    a = ((1 - rate) * (1 + rate * alpha_p**2)) ** -0.5
    b = -a * alpha_p * rate
    np.testing.assert_allclose(np.unique(y), sorted([a * alpha_p + b, a * 0.7 + b]), rtol=1e-6)
    if noise_shape:
        assert (y == y[:, :1]).all()
    # And Keras in training mode produces the same two values.
    ref = np.asarray(model(x.numpy(), training=True))
    np.testing.assert_allclose(np.unique(ref), np.unique(y), rtol=1e-6)


def test_identity_layers_do_not_touch_eval_output(tmp_path):
    inp = keras.Input((6,))
    x = inp
    for layer in (
        layers.Dropout(0.5, noise_shape=(None, 1)),
        layers.AlphaDropout(0.2, noise_shape=(1, None)),
        layers.Dropout(0.5),
        layers.GaussianNoise(0.3),
        layers.GaussianDropout(0.3),
        layers.AlphaDropout(0.3),
    ):
        x = layer(x)
    _, torch_model, _ = check_parity(keras.Model(inp, x, name="m"), tmp_path)
    x = torch.randn(3, 6)
    assert torch.equal(torch_model(x), x)

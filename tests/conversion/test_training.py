"""The port trains like the original: frozen layers, regularizers, constraints, initializers.

Each feature is checked against Keras itself, in the structured default and in ``--flat``:
trainable parameter counts against ``model.trainable_weights``, ``regularization_loss()``
against ``sum(model.losses)``, ``apply_constraints()`` against the constraints Keras applies
to the same weights, ``reset_parameters()`` against the statistics of Keras's own draws.
"""

import os
import re
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
import keras
import numpy as np
import pytest
import torch
from keras import constraints, layers, regularizers
from parity import check_source, random_inputs, randomize

import codegen
from codegen.api import generate
from codegen.check.compare import keras_outputs, load_module_from_file

FORMS = ["structured", "flat"]


def port(model, tmp_path, form: str, tag: str = ""):
    """The generated module's class, loaded with the Keras weights (strict)."""
    generated = generate(model, structured=form == "structured", command="x")
    path = tmp_path / f"{model.name}_{form}{tag}.py"
    path.write_text(generated.source)
    check_source(generated.source, path)
    module = load_module_from_file(path)
    torch_model = getattr(module, generated.top.name)()
    torch_model.load_state_dict(generated.state_dict, strict=True)
    return torch_model, generated


def block(x, filters, name, **conv):
    """A repeated conv unit, so that the structured form makes a block class of it."""
    x = layers.Conv2D(filters, 3, padding="same", name=f"{name}_conv", **conv)(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)


def frozen_backbone_model():
    """A frozen nested backbone (BatchNorm, regularizers, max-norm) under a trainable head."""
    reg = {
        "kernel_regularizer": regularizers.L2(0.01),
        "kernel_constraint": constraints.MaxNorm(1.5, axis=[0, 1, 2]),
    }
    inner = keras.Input((8, 8, 3))
    x = inner
    for i in range(3):
        x = block(x, 4, f"b{i}", **reg)
    backbone = keras.Model(inner, x, name="backbone")
    backbone.trainable = False
    inputs = keras.Input((8, 8, 3))
    x = backbone(inputs)
    for i in range(3):
        x = block(
            x,
            4,
            f"head{i}",
            kernel_regularizer=regularizers.L1L2(l1=0.001, l2=0.02),
            bias_regularizer="l2",
            kernel_constraint=constraints.MaxNorm(0.8, axis=[0, 1, 2]),
        )
    x = layers.DepthwiseConv2D(
        3,
        depthwise_regularizer=regularizers.L1(0.003),
        depthwise_constraint=constraints.MaxNorm(0.5, axis=[0, 1]),
        name="dw",
    )(x)
    frozen = layers.Conv2D(4, 1, name="frozen_conv", kernel_regularizer="l1")
    frozen.trainable = False
    x = frozen(x)
    x = layers.Flatten()(x)
    x = layers.Dense(
        6,
        kernel_regularizer=regularizers.L2(0.05),
        kernel_constraint=constraints.MaxNorm(0.7),
        bias_constraint=constraints.NonNeg(),
        name="fc",
    )(x)
    x = layers.Dense(
        5,
        kernel_constraint=constraints.MinMaxNorm(0.2, 0.6, rate=0.7, axis=0),
        bias_regularizer=regularizers.L1L2(0.01, 0.02),
        name="fc2",
    )(x)
    outputs = layers.Dense(3, kernel_constraint=constraints.UnitNorm(axis=1), name="out")(x)
    return keras.Model(inputs, outputs, name="tuned")


def rnn_model():
    inputs = keras.Input((7, 5))
    x = layers.LSTM(
        6,
        return_sequences=True,
        kernel_regularizer=regularizers.L2(0.01),
        recurrent_regularizer=regularizers.L1(0.002),
        recurrent_constraint=constraints.MaxNorm(0.9),
        bias_constraint=constraints.NonNeg(),
        name="lstm",
    )(inputs)
    x = layers.GRU(
        4,
        kernel_constraint=constraints.UnitNorm(axis=0),
        bias_regularizer=regularizers.L2(0.03),
        name="gru",
    )(x)
    outputs = layers.Dense(2, kernel_regularizer=regularizers.L1L2(0.004, 0.006), name="out")(x)
    return keras.Model(inputs, outputs, name="rnn")


def keras_trainable_count(model) -> int:
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


@pytest.mark.parametrize("form", FORMS)
def test_frozen_layers_keep_keras_trainable_counts(tmp_path, form):
    model = frozen_backbone_model()
    randomize(model)
    torch_model, generated = port(model, tmp_path, form)
    trainable = sum(p.numel() for p in torch_model.parameters() if p.requires_grad)
    assert trainable == keras_trainable_count(model)
    assert (
        "# Keras 'backbone' has trainable=False\n        self.backbone.requires_grad_(False)"
        in (generated.source)
    )
    assert "frozen_conv.requires_grad_(False)" in generated.source
    # a frozen backbone's BatchNorm keeps its affine parameters fixed too
    frozen = [n for n, p in torch_model.named_parameters() if not p.requires_grad]
    assert any(n.startswith("backbone.") and "bn" in n for n in frozen)


@pytest.mark.parametrize("form", FORMS)
def test_lstm_zero_bias_hh_is_frozen(tmp_path, form):
    model = rnn_model()
    randomize(model)
    torch_model, generated = port(model, tmp_path, form)
    trainable = sum(p.numel() for p in torch_model.parameters() if p.requires_grad)
    assert trainable == keras_trainable_count(model)
    assert "bias_hh_l0.requires_grad_(False)" in generated.source


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("build", [frozen_backbone_model, rnn_model])
def test_regularization_loss_is_keras_model_losses(tmp_path, form, build):
    model = build()
    randomize(model, scale=1.0)
    torch_model, generated = port(model, tmp_path, form)
    expected = float(sum(float(loss) for loss in model.losses))
    got = float(torch_model.regularization_loss())
    assert expected > 0
    assert abs(got - expected) <= 1e-5 * max(1.0, abs(expected)), (got, expected)
    # the frozen layers' regularizers are not part of Keras's losses, nor of the port's
    assert (
        "frozen_conv" not in generated.source.split("def regularization_loss")[1].split("def ")[0]
    )


def keras_apply_constraints(model) -> None:
    """What Keras's optimizer does after each step: each trainable variable's constraint."""
    for var in model.trainable_variables:
        if var.constraint is not None:
            var.assign(var.constraint(var))


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("build", [frozen_backbone_model, rnn_model])
def test_apply_constraints_matches_keras(tmp_path, form, build):
    model = build()
    randomize(model, scale=1.0)  # large weights: every norm constraint binds
    torch_model, generated = port(model, tmp_path, form)
    keras_apply_constraints(model)
    torch_model.apply_constraints()
    assert "TODO" not in generated.source
    reference, _ = port(model, tmp_path, form, "_ref")  # the Keras weights after Keras's step
    want = reference.state_dict()
    for key, value in torch_model.state_dict().items():
        delta = float((value - want[key]).abs().max()) if value.numel() else 0.0
        assert delta <= 1e-5 * max(1.0, float(want[key].abs().max())), key
    inputs = random_inputs(model, 2)
    expected = keras_outputs(model, inputs)
    with torch.no_grad():
        got = torch_model.eval()(torch.from_numpy(inputs[0])).numpy()
    bound = 1e-5 * max(1.0, float(np.abs(expected[0]).max()))
    assert float(np.abs(got - expected[0]).max()) <= bound


def initializer_model():
    """Initializers whose fans differ between Keras's and torch's shapes (depthwise), fan
    modes, scales and distributions of each kind, an LSTM with ``unit_forget_bias``."""
    from keras import initializers

    images = keras.Input((9, 9, 16))
    x = layers.Conv2D(32, 3, kernel_initializer="he_uniform", name="conv")(images)
    x = layers.DepthwiseConv2D(3, depth_multiplier=4, name="dw")(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(
        256,
        kernel_initializer=initializers.VarianceScaling(0.5, "fan_out", "untruncated_normal"),
        bias_initializer=initializers.Constant(0.3),
        name="wide",
    )(x)
    x = layers.Dense(64, name="glorot")(x)
    x = layers.Dense(200, kernel_initializer="he_normal", name="he")(x)
    x = layers.Dense(
        600,
        kernel_initializer="lecun_uniform",
        bias_initializer=initializers.RandomNormal(0.1, 0.2),
        name="lecun",
    )(x)
    x = layers.Dense(
        600,
        kernel_initializer=initializers.TruncatedNormal(0.0, 0.3),
        bias_initializer=initializers.RandomUniform(-0.2, 0.4),
        name="trunc",
    )(x)
    x = layers.Reshape((24, 25))(x)
    # a 3-D kernel whose fans Keras takes from the equation, not from compute_fans()
    einsum = layers.EinsumDense("abc,cde->abde", output_shape=(24, 4, 10), name="einsum")(x)
    x = layers.LSTM(48, name="lstm")(x)
    tokens = keras.Input((5,), dtype="int32")
    e = layers.Embedding(500, 16, name="embedding")(tokens)
    e = layers.GlobalAveragePooling1D()(e)
    return keras.Model([images, tokens], [x, e, layers.Flatten()(einsum)], name="inits")


def _same_distribution(key: str, ours: torch.Tensor, keras_draw: torch.Tensor) -> None:
    ours, theirs = ours.double().flatten(), keras_draw.double().flatten()
    n = ours.numel()
    if theirs.unique().numel() <= 2:  # zeros, ones, a constant, unit_forget_bias: exact
        assert torch.equal(ours, theirs), key
        return
    tol = 4 / n**0.5  # a wrong fan mode or scale moves the spread by 20% or more here
    assert n >= 500, key
    assert abs(ours.std() / theirs.std() - 1) < tol, (key, float(ours.std()), float(theirs.std()))
    assert abs(ours.mean() - theirs.mean()) < tol * theirs.std() + 1e-3 * theirs.abs().max(), key
    # the same shape (uniform, normal, truncated): two-sample Kolmogorov-Smirnov, p ~ 1e-6
    grid = torch.cat([ours, theirs]).sort().values
    cdf = [torch.searchsorted(v.sort().values, grid, right=True) / n for v in (ours, theirs)]
    assert float((cdf[0] - cdf[1]).abs().max()) < 2.7 * (2 / n) ** 0.5, key


def _assert_redraws_as_keras(torch_model) -> None:
    """reset_parameters() draws every tensor from the distribution Keras drew it from (the
    loaded state_dict holds Keras's own draws)."""
    keras_draws = {k: v.clone() for k, v in torch_model.state_dict().items()}
    torch.manual_seed(0)
    torch_model.reset_parameters()
    for key, value in torch_model.state_dict().items():
        if not key.endswith("num_batches_tracked"):
            _same_distribution(key, value, keras_draws[key])


@pytest.mark.parametrize("form", FORMS)
def test_reset_parameters_draws_as_keras(tmp_path, form):
    keras.utils.set_random_seed(0)  # fixed draws on both sides: the test is deterministic
    model = initializer_model()  # as Keras initialised it: the reference draws
    torch_model, generated = port(model, tmp_path, form)
    assert "TODO" not in generated.source
    keras_draws = {k: v.clone() for k, v in torch_model.state_dict().items()}
    torch.manual_seed(0)
    torch_model.reset_parameters()
    recurrent = {
        w.key for w in generated.top.weights if w.keras_variable.endswith("recurrent_kernel")
    }
    assert recurrent
    for key, value in torch_model.state_dict().items():
        if key.endswith("num_batches_tracked"):
            continue
        if key in recurrent:  # orthogonal: all singular values 1, as Keras's
            ones = torch.ones(min(value.shape), dtype=torch.float64)
            for matrix in (value, keras_draws[key]):
                singular = torch.linalg.svdvals(matrix.double())
                assert torch.allclose(singular, ones, atol=1e-5), key
            continue
        _same_distribution(key, value, keras_draws[key])


CORPUS = Path(
    os.environ.get("KERAS2TORCH_CORPUS", Path(__file__).resolve().parents[3] / "shared" / "corpus")
)
XCEPTION = "28_oarriaga__face_classification__trained_models__emotion_models__fer2013_mini_XCEPTION.102-0.66.hdf5"
RNN_FILES = [
    "15_shubhu111__Sentiment_Analysis_UsingRNN_AI_Project__sentiment_model.h5",
    "25_doguilmak__Sunspot-RNN-Forecast__rnn_model.h5",
]


@pytest.mark.skipif(not (CORPUS / XCEPTION).exists(), reason="no corpus")
def test_keras2_file_regularizers_and_counts(tmp_path):
    """A real Keras 2.0 file (L2 on every conv kernel), against tf-keras's model.losses."""
    from codegen.read.paths import load_reference

    path = CORPUS / XCEPTION
    result = codegen.convert(path, tmp_path / "port", force=True)
    source = result.module_path.read_text()
    assert "TODO" not in source
    module = load_module_from_file(result.module_path)
    torch_model = getattr(module, result.class_name)()
    torch_model.load_state_dict(torch.load(result.weights_path, weights_only=True), strict=True)
    reference, _ = load_reference(path)
    expected = float(sum(float(loss) for loss in reference.losses))
    got = float(torch_model.regularization_loss())
    assert expected > 0 and abs(got - expected) <= 1e-5 * max(1.0, expected), (got, expected)
    trainable = sum(p.numel() for p in torch_model.parameters() if p.requires_grad)
    assert trainable == keras_trainable_count(reference)


@pytest.mark.parametrize("name", RNN_FILES)
def test_keras2_rnn_files_port_every_initializer(tmp_path, name):
    if not (CORPUS / name).exists():
        pytest.skip("no corpus")
    result = codegen.convert(CORPUS / name, tmp_path / "port", force=True)
    source = result.module_path.read_text()
    assert "def reset_parameters" in source and "TODO" not in source
    module = load_module_from_file(result.module_path)
    torch_model = getattr(module, result.class_name)()
    torch.manual_seed(0)
    torch_model.reset_parameters()  # runs: every line is valid for these shapes


@pytest.mark.parametrize("form", FORMS)
def test_activity_regularizers_as_keras_adds_them(tmp_path, form):
    """activity_regularizer on layers (a shared one called twice: one term per call, as
    Keras), an ActivityRegularization layer, and repeated blocks that carry one; after a
    forward in training, regularization_loss() equals Keras's sum(model.losses)."""
    inputs = keras.Input((6, 6, 3))
    x = inputs
    for i in range(3):
        x = layers.Conv2D(4, 3, padding="same", activity_regularizer=regularizers.L1(0.01))(x)
        x = layers.BatchNormalization()(x)
    x = layers.ActivityRegularization(l1=0.003, l2=0.02)(layers.GlobalAveragePooling2D()(x))
    shared = layers.Dense(4, activity_regularizer="l2", kernel_regularizer=regularizers.L2(0.1))
    y = shared(layers.Dense(4, activity_regularizer=regularizers.L1L2(0.02, 0.03))(shared(x)))
    model = keras.Model(inputs, y, name="activity")
    randomize(model)
    torch_model, generated = port(model, tmp_path, form)
    assert "TODO" not in generated.source
    batch = random_inputs(model, 3)
    keras_out = model(batch[0], training=True)
    expected = float(sum(float(loss) for loss in model.losses))
    torch_model.train()
    torch_out = torch_model(torch.from_numpy(batch[0]))
    got = float(torch_model.regularization_loss())
    assert expected > 0 and abs(got - expected) <= 1e-5 * max(1.0, expected), (got, expected)
    assert np.allclose(torch_out.detach().numpy(), np.asarray(keras_out), atol=1e-4)
    torch_model.eval()  # inference leaves the penalties of the last training forward
    torch_model(torch.from_numpy(batch[0]))
    assert float(torch_model.regularization_loss()) == got


def repeated_blocks_model():
    """Inverted residuals (depthwise kernels: Keras's fans are not torch's) and pre-norm
    attention blocks, each repeated: the structured form's block classes."""
    images = keras.Input((8, 8, 16))
    x = images
    for _ in range(3):
        y = layers.Conv2D(128, 1, use_bias=False)(x)
        y = layers.ReLU()(layers.BatchNormalization()(y))
        y = layers.DepthwiseConv2D(3, padding="same", use_bias=False)(y)
        y = layers.ReLU()(layers.BatchNormalization()(y))
        y = layers.BatchNormalization()(layers.Conv2D(16, 1, use_bias=False)(y))
        x = layers.Add()([x, y])
    x = layers.Reshape((16, 64))(layers.Conv2D(64, 2, strides=2, kernel_initializer="he_normal")(x))
    for _ in range(3):
        h = layers.LayerNormalization()(x)
        x = layers.Add()([x, layers.MultiHeadAttention(num_heads=2, key_dim=16)(h, h)])
        h = layers.LayerNormalization()(x)
        x = layers.Add()([x, layers.Dense(64)(layers.Dense(128, activation="relu")(h))])
    return keras.Model(images, layers.GlobalAveragePooling1D()(x), name="repeated")


def test_reset_parameters_of_block_classes_is_a_loop_over_module_kinds(tmp_path):
    """Structured ports get reset_parameters() too, written as loops over module kinds (not
    one line per parameter); every parameter is still drawn as Keras draws it."""
    keras.utils.set_random_seed(0)
    model = repeated_blocks_model()
    torch_model, generated = port(model, tmp_path, "structured")
    source = generated.source
    assert "TODO" not in source
    method = source.split("def reset_parameters")[1]
    assert "for module in self.modules():" in method
    assert re.search(r"isinstance\(module, \(?nn.Conv2d", method)
    assert "self.blocks[" not in method  # nothing written per block instance
    assert len(method.splitlines()) < 80
    _assert_redraws_as_keras(torch_model)


def normalisation_defaults_model():
    """BatchNorm with Keras's default initializers (torch's own reset draws them), one with a
    zero gamma (ResNet's zero-init trick: the reset must not stand for it), depthwise kernels
    of multiplier 1 (Glorot's fan sum is torch's) and 2 (it is not), LayerNorm."""
    images = keras.Input((12, 12, 64))
    x = layers.Conv2D(64, 1, name="conv")(images)
    x = layers.BatchNormalization(name="bn")(x)
    x = layers.DepthwiseConv2D(3, name="dw1")(x)
    x = layers.BatchNormalization(gamma_initializer="zeros", name="bn_zero")(x)
    x = layers.DepthwiseConv2D(3, depth_multiplier=2, name="dw2")(x)
    x = layers.BatchNormalization(name="bn2")(x)
    x = layers.LayerNormalization(name="ln")(layers.GlobalAveragePooling2D()(x))
    return keras.Model(images, layers.Dense(64, name="head")(x), name="norms")


@pytest.mark.parametrize("form", FORMS)
def test_reset_parameters_uses_torch_resets_only_where_they_draw_as_keras(tmp_path, form):
    keras.utils.set_random_seed(0)
    model = normalisation_defaults_model()
    torch_model, generated = port(model, tmp_path, form)
    method = generated.source.split("def reset_parameters")[1]
    assert "module.reset_parameters()" in method  # the BatchNorms with Keras's defaults
    assert "nn.init.xavier_uniform_(module.weight)" in method
    _assert_redraws_as_keras(torch_model)


def efficientnet_initializers_model():
    """EfficientNet's initializers: VarianceScaling(2, fan_out, truncated) for every
    convolution, depthwise (multiplier 2: Keras's fan_out is not torch's) and not, and the
    uniform VarianceScaling(1/3) of its classifier, by fan_out and by fan_in."""
    from keras import initializers

    conv_init = initializers.VarianceScaling(2.0, "fan_out", "truncated_normal")
    dense_init = initializers.VarianceScaling(1 / 3, "fan_out", "uniform")
    images = keras.Input((9, 9, 32))
    x = layers.Conv2D(64, 3, kernel_initializer=conv_init, name="conv")(images)
    x = layers.DepthwiseConv2D(3, depth_multiplier=2, depthwise_initializer=conv_init)(x)
    x = layers.Conv2D(32, 1, kernel_initializer=conv_init, use_bias=False, name="project")(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(600, kernel_initializer=dense_init, name="fan_out_head")(x)
    fan_in = initializers.VarianceScaling(1 / 3, "fan_in", "uniform")
    return keras.Model(images, layers.Dense(600, kernel_initializer=fan_in, name="head")(x))


@pytest.mark.parametrize("form", FORMS)
def test_grouped_and_plain_convolutions_share_one_branch_by_their_fan_out(tmp_path, form):
    keras.utils.set_random_seed(0)
    torch_model, generated = port(efficientnet_initializers_model(), tmp_path, form)
    source = generated.source
    method = source.split("def reset_parameters")[1]
    assert method.count("isinstance(module, nn.Conv2d") == 1  # depthwise or not, one branch
    assert "fan_out(module.weight, module.groups)" in method
    assert "def fan_out(tensor, groups=1):" in source and "def fans(" not in source
    assert 'nn.init.kaiming_uniform_(module.weight, a=math.sqrt(5), mode="fan_out")' in source
    assert "nn.init.kaiming_uniform_(self.head.weight, a=math.sqrt(5))" in source
    _assert_redraws_as_keras(torch_model)

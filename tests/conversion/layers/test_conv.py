"""Parity of the convolution family: Conv*, Conv*Transpose, DepthwiseConv*, SeparableConv*.

Every case converts a real Keras model with randomized weights and compares outputs (batch
sizes 1 and 3). TensorFlow on CPU cannot run a few configurations (channels_first Conv1D/2D
and transposes, dilated transposes, unequal depthwise strides); those are skipped in the
plain parity tests and checked instead against an equivalent computation TensorFlow can run.
"""

from __future__ import annotations

import re

import keras
import numpy as np
import pytest
import tensorflow as tf
import torch
from keras import layers
from parity import check_parity, randomize

import codegen
from codegen.api import generate
from codegen.errors import UnsupportedError
from codegen.check.compare import load_module_from_source

CPU_CHANNELS_FIRST = "TensorFlow on CPU cannot run this channels_first convolution"
CPU_DILATED_TRANSPOSE = "TensorFlow on CPU cannot run a dilated transposed convolution"
CPU_UNEQUAL_STRIDES = "TensorFlow on CPU runs depthwise convolutions with equal strides only"


def single(layer, shape, name="m"):
    inp = keras.Input(shape)
    return keras.Model(inp, layer(inp), name=name)


def source_of(result) -> str:
    return result.module_path.read_text()


def flat(source: str) -> str:
    """The source without whitespace, so assertions do not depend on black's line breaks."""
    return re.sub(r"\s+", "", source)


def case(id_, make, shape, skip=None):
    marks = [pytest.mark.skip(reason=skip)] if skip else []
    return pytest.param(make, shape, id=id_, marks=marks)


# -- Conv1D / Conv2D / Conv3D ---------------------------------------------------------------

CONV_CASES = [
    case("1d_valid", lambda: layers.Conv1D(5, 3), (17, 4)),
    case("1d_same_k3", lambda: layers.Conv1D(5, 3, padding="same"), (17, 4)),
    case("1d_same_even_kernel", lambda: layers.Conv1D(5, 4, padding="same"), (17, 4)),
    case("1d_same_s2_odd", lambda: layers.Conv1D(5, 3, strides=2, padding="same"), (17, 4)),
    case("1d_same_s2_even", lambda: layers.Conv1D(5, 3, strides=2, padding="same"), (16, 4)),
    case("1d_same_s3_k5", lambda: layers.Conv1D(5, 5, strides=3, padding="same"), (17, 4)),
    case("1d_same_dilated", lambda: layers.Conv1D(5, 3, dilation_rate=2, padding="same"), (17, 4)),
    case("1d_causal", lambda: layers.Conv1D(5, 3, padding="causal"), (17, 4)),
    case(
        "1d_causal_dilated", lambda: layers.Conv1D(5, 3, padding="causal", dilation_rate=3), (17, 4)
    ),
    case("1d_causal_s2", lambda: layers.Conv1D(5, 4, padding="causal", strides=2), (17, 4)),
    case("1d_groups_no_bias", lambda: layers.Conv1D(6, 3, groups=2, use_bias=False), (17, 4)),
    case("1d_s2_valid", lambda: layers.Conv1D(5, 4, strides=2, activation="relu"), (17, 4)),
    case("2d_valid_relu", lambda: layers.Conv2D(8, 3, activation="relu"), (13, 11, 3)),
    case("2d_same_s2_odd", lambda: layers.Conv2D(8, 3, strides=2, padding="same"), (17, 15, 3)),
    case("2d_same_s2_mixed", lambda: layers.Conv2D(8, 3, strides=2, padding="same"), (17, 16, 3)),
    case("2d_same_k2_s2", lambda: layers.Conv2D(8, 2, strides=2, padding="same"), (17, 17, 3)),
    case("2d_same_even_kernel", lambda: layers.Conv2D(8, 4, padding="same"), (11, 12, 3)),
    case(
        "2d_same_rect",
        lambda: layers.Conv2D(8, (3, 5), strides=(2, 1), padding="same"),
        (17, 16, 3),
    ),
    case("2d_same_k1_s2", lambda: layers.Conv2D(8, 1, strides=2, padding="same"), (16, 17, 3)),
    case(
        "2d_same_dilated",
        lambda: layers.Conv2D(8, 3, dilation_rate=(2, 3), padding="same"),
        (15, 17, 3),
    ),
    case("2d_valid_dilated", lambda: layers.Conv2D(8, (3, 2), dilation_rate=2), (15, 17, 3)),
    case("2d_groups", lambda: layers.Conv2D(9, 3, groups=3, padding="same"), (12, 12, 6)),
    case("2d_depthwise_groups", lambda: layers.Conv2D(8, 3, groups=4, strides=2), (12, 13, 4)),
    case(
        "2d_no_bias_tanh", lambda: layers.Conv2D(8, 3, use_bias=False, activation="tanh"), (9, 9, 3)
    ),
    case("2d_s3_valid", lambda: layers.Conv2D(8, 3, strides=3), (17, 16, 3)),
    case("2d_softmax", lambda: layers.Conv2D(6, 3, activation="softmax"), (9, 9, 3)),
    case("3d_valid", lambda: layers.Conv3D(4, 3), (7, 8, 9, 2)),
    case("3d_same_s2", lambda: layers.Conv3D(4, 3, strides=2, padding="same"), (7, 8, 9, 2)),
    case(
        "3d_groups_dilated",
        lambda: layers.Conv3D(4, (2, 3, 3), groups=2, dilation_rate=(1, 2, 1), padding="same"),
        (7, 8, 9, 2),
    ),
    case(
        "3d_channels_first",
        lambda: layers.Conv3D(
            4, 3, strides=(1, 2, 2), padding="same", data_format="channels_first"
        ),
        (2, 7, 8, 9),
    ),
    case(
        "1d_channels_first",
        lambda: layers.Conv1D(5, 3, padding="causal", data_format="channels_first"),
        (4, 17),
        skip=CPU_CHANNELS_FIRST,  # see test_channels_first_data_format
    ),
    case(
        "2d_channels_first",
        lambda: layers.Conv2D(8, 3, strides=2, padding="same", data_format="channels_first"),
        (3, 16, 17),
        skip=CPU_CHANNELS_FIRST,
    ),
]


@pytest.mark.parametrize("make, shape", CONV_CASES)
def test_conv(tmp_path, make, shape):
    check_parity(single(make(), shape), tmp_path)


def test_conv_generated_code(tmp_path):
    """Symmetric padding stays in the module; asymmetric 'same' padding is an explicit F.pad."""
    inp, seq = keras.Input((17, 15, 3), name="image"), keras.Input((20, 3), name="seq")
    a = layers.Conv2D(4, 3, strides=2, padding="same", name="sym")(inp)  # (1, 1) on both axes
    b = layers.Conv2D(4, 3, padding="same", name="stride1")(inp)
    c = layers.Conv2D(4, 2, strides=2, padding="same", name="asym")(inp)  # (0, 1) on both axes
    d = layers.Conv1D(4, 3, padding="causal", dilation_rate=2, name="causal")(seq)
    model = keras.Model([inp, seq], [a, b, c, d])
    _, _, result = check_parity(model, tmp_path)
    source = flat(source_of(result))
    assert "self.sym=nn.Conv2d(3,4,kernel_size=3,stride=2,padding=1)" in source
    assert "self.stride1=nn.Conv2d(3,4,kernel_size=3,padding=1)" in source
    assert "self.asym=nn.Conv2d(3,4,kernel_size=2,stride=2)" in source
    assert "self.asym(F.pad(image,(0,1,0,1)))" in source
    assert "self.causal=nn.Conv1d(3,4,kernel_size=3,dilation=2)" in source
    assert "self.causal(F.pad(seq,(4,0)))" in source
    assert "pad_same" not in source and "same_padding" not in source


# -- unknown spatial sizes: TensorFlow's 'same' padding at run time --------------------------

UNKNOWN_CASES = [
    case("1d_same_s2", lambda: layers.Conv1D(5, 3, strides=2, padding="same"), (None, 4)),
    case("1d_causal", lambda: layers.Conv1D(5, 3, padding="causal", dilation_rate=2), (None, 4)),
    case("2d_same_s2", lambda: layers.Conv2D(6, 3, strides=2, padding="same"), (None, None, 3)),
    case(
        "2d_same_k4_s3",
        lambda: layers.Conv2D(6, 4, strides=(3, 2), padding="same"),
        (None, None, 3),
    ),
    case("2d_same_even_s1", lambda: layers.Conv2D(6, 2, padding="same"), (None, None, 3)),
    # Stride 1 along the unknown axis: the padding is known at conversion time.
    case(
        "2d_same_s12_half_known",
        lambda: layers.Conv2D(6, 3, strides=(1, 2), padding="same"),
        (None, 16, 3),
    ),
    case(
        "3d_same_s2", lambda: layers.Conv3D(3, 3, strides=2, padding="same"), (None, None, None, 2)
    ),
    case(
        "dw2d_same_s2",
        lambda: layers.DepthwiseConv2D(3, strides=2, padding="same"),
        (None, None, 3),
    ),
    case(
        "dw2d_same_s2_dilated",
        lambda: layers.DepthwiseConv2D(3, strides=2, dilation_rate=2, padding="same"),
        (None, None, 3),
    ),
    case(
        "sep1d_same_s2", lambda: layers.SeparableConv1D(5, 3, strides=2, padding="same"), (None, 3)
    ),
    case(
        "sep2d_same_s2",
        lambda: layers.SeparableConv2D(5, 3, strides=2, padding="same"),
        (None, None, 3),
    ),
    case(
        "t2d_same_s2",
        lambda: layers.Conv2DTranspose(5, 3, strides=2, padding="same"),
        (None, None, 3),
    ),
    case(
        "t1d_valid_s2_op1",
        lambda: layers.Conv1DTranspose(5, 3, strides=2, output_padding=1),
        (None, 3),
    ),
]


@pytest.mark.parametrize("spatial", [8, 9])
@pytest.mark.parametrize("make, shape", UNKNOWN_CASES)
def test_unknown_spatial_size(tmp_path, make, shape, spatial):
    layer = make()
    _, _, result = check_parity(single(layer, shape), tmp_path, spatial=spatial)
    source = source_of(result)
    unknown_strided = any(size is None and s > 1 for size, s in zip(shape, layer.strides))
    if layer.padding == "same" and unknown_strided and "Transpose" not in type(layer).__name__:
        assert "pad_same(" in source  # the padding depends on the run-time size
    else:
        assert "pad_same" not in source


def test_shared_conv_on_two_sizes(tmp_path):
    """One layer, two input sizes: one module, different fixed paddings in forward."""
    conv = layers.Conv2D(4, 3, strides=2, padding="same", name="shared")
    a, b = keras.Input((16, 16, 3), name="a"), keras.Input((17, 17, 3), name="b")
    model = keras.Model([a, b], [conv(a), conv(b)])
    _, _, result = check_parity(model, tmp_path)
    source = flat(source_of(result))
    assert source.count("nn.Conv2d(") == 1
    assert "self.shared=nn.Conv2d(3,4,kernel_size=3,stride=2)" in source
    assert "self.shared(F.pad(a,(0,1,0,1)))" in source
    assert "self.shared(F.pad(b,(1,1,1,1)))" in source


# -- --channels-first interface --------------------------------------------------------------


@pytest.mark.parametrize(
    "make, shape",
    [
        case("conv2d_same_s2", lambda: layers.Conv2D(6, 3, strides=2, padding="same"), (16, 17, 3)),
        case("conv1d_causal", lambda: layers.Conv1D(6, 3, padding="causal"), (17, 3)),
        case(
            "conv2d_unknown",
            lambda: layers.Conv2D(6, 3, strides=2, padding="same"),
            (None, None, 3),
        ),
        case(
            "transpose2d",
            lambda: layers.Conv2DTranspose(6, 4, strides=2, padding="same"),
            (7, 8, 3),
        ),
        case(
            "depthwise2d",
            lambda: layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same"),
            (9, 8, 3),
        ),
        case(
            "separable1d", lambda: layers.SeparableConv1D(4, 3, strides=2, padding="same"), (16, 3)
        ),
    ],
)
def test_channels_first_interface(tmp_path, make, shape):
    _, _, result = check_parity(single(make(), shape), tmp_path, channels_first=True)
    assert "permute" not in source_of(result)


# -- Conv1DTranspose / Conv2DTranspose / Conv3DTranspose -------------------------------------

TRANSPOSE_OPTIONS = {
    "valid_s1": {"kernel_size": 3},
    "valid_s2": {"kernel_size": 3, "strides": 2},
    "valid_s3_k2": {"kernel_size": 2, "strides": 3},  # stride > kernel: zero cells + bias
    "valid_s2_op0": {"kernel_size": 3, "strides": 2, "output_padding": 0},
    "valid_s2_op1": {"kernel_size": 3, "strides": 2, "output_padding": 1},
    "same_s1": {"kernel_size": 3, "padding": "same"},
    "same_s1_even": {"kernel_size": 4, "padding": "same"},
    "same_s2": {"kernel_size": 3, "strides": 2, "padding": "same"},
    "same_s2_even": {"kernel_size": 4, "strides": 2, "padding": "same"},
    "same_s3_k2": {"kernel_size": 2, "strides": 3, "padding": "same"},
    "same_s2_k1": {"kernel_size": 1, "strides": 2, "padding": "same"},
    "same_s2_op0": {"kernel_size": 3, "strides": 2, "padding": "same", "output_padding": 0},
    "same_s2_op1": {"kernel_size": 3, "strides": 2, "padding": "same", "output_padding": 1},
    "same_s3_k5_op2": {"kernel_size": 5, "strides": 3, "padding": "same", "output_padding": 2},
    "same_s3_k4_op1": {"kernel_size": 4, "strides": 3, "padding": "same", "output_padding": 1},
    "same_s3_k4_op2": {"kernel_size": 4, "strides": 3, "padding": "same", "output_padding": 2},
    "same_no_bias_relu": {
        "kernel_size": 3,
        "strides": 2,
        "padding": "same",
        "use_bias": False,
        "activation": "relu",
    },
}
TRANSPOSE_1D_3D = [
    "valid_s2",
    "valid_s3_k2",
    "same_s1_even",
    "same_s2",
    "same_s2_even",
    "same_s2_op1",
]


@pytest.mark.parametrize("options", TRANSPOSE_OPTIONS.values(), ids=TRANSPOSE_OPTIONS.keys())
def test_conv2d_transpose(tmp_path, options):
    check_parity(single(layers.Conv2DTranspose(5, **options), (7, 6, 3)), tmp_path)


@pytest.mark.parametrize("name", TRANSPOSE_1D_3D)
def test_conv1d_transpose(tmp_path, name):
    check_parity(single(layers.Conv1DTranspose(5, **TRANSPOSE_OPTIONS[name]), (9, 3)), tmp_path)


@pytest.mark.parametrize("name", TRANSPOSE_1D_3D)
def test_conv3d_transpose(tmp_path, name):
    check_parity(
        single(layers.Conv3DTranspose(3, **TRANSPOSE_OPTIONS[name]), (4, 5, 3, 2)), tmp_path
    )


@pytest.mark.parametrize(
    "options",
    [
        {"kernel_size": (3, 4), "strides": (2, 3), "padding": "same"},
        {"kernel_size": (3, 4), "strides": (2, 3), "padding": "same", "output_padding": (0, 2)},
        {"kernel_size": (2, 5), "strides": (3, 2), "output_padding": (2, 1)},
        {"kernel_size": (4, 1), "strides": (1, 2), "padding": "same"},
    ],
    ids=["same", "same_op", "valid_op", "same_k1"],
)
def test_conv2d_transpose_per_axis(tmp_path, options):
    check_parity(single(layers.Conv2DTranspose(4, **options), (6, 7, 3)), tmp_path)


def test_conv_transpose_generated_code(tmp_path):
    inp = keras.Input((7, 6, 3), name="image")
    a = layers.Conv2DTranspose(4, 3, strides=2, padding="same", name="odd")(inp)
    b = layers.Conv2DTranspose(4, 4, strides=2, padding="same", name="even")(inp)
    c = layers.Conv2DTranspose(4, (4, 3), padding="same", name="trim")(inp)
    _, _, result = check_parity(keras.Model(inp, [a, b, c]), tmp_path)
    source = flat(source_of(result))
    # TensorFlow keeps the first 2n cells of the full (2n+1)-cell result: not torch's usual
    # padding=1, output_padding=1, which keeps the last 2n.
    assert "self.odd=nn.ConvTranspose2d(3,4,kernel_size=3,stride=2)" in source
    assert "self.odd(image)[:,:,:-1,:-1]" in source
    assert "self.even=nn.ConvTranspose2d(3,4,kernel_size=4,stride=2,padding=1)" in source
    assert "self.even(image)" in source
    assert "self.trim=nn.ConvTranspose2d(3,4,kernel_size=(4,3),padding=1)" in source
    assert "self.trim(image)[:,:,:-1]" in source


@pytest.mark.parametrize("name", ["valid_s1", "same_s1", "same_s1_even"])
@pytest.mark.parametrize("rank", [1, 2, 3])
@pytest.mark.skip(reason=CPU_DILATED_TRANSPOSE + " (see test_dilated_transpose_adjoint)")
def test_dilated_transpose(tmp_path, rank, name):
    cls = [layers.Conv1DTranspose, layers.Conv2DTranspose, layers.Conv3DTranspose][rank - 1]
    layer = cls(3, dilation_rate=2, **TRANSPOSE_OPTIONS[name])
    check_parity(single(layer, (6, 7, 5, 2)[-rank - 1 :]), tmp_path)


def convert_in_memory(model, channels_first=False):
    generated = generate(model, channels_first=channels_first)
    module = load_module_from_source(generated.source)
    torch_model = getattr(module, generated.top.name)()
    torch_model.load_state_dict(generated.state_dict, strict=True)
    return torch_model.eval(), generated.source


def run_torch(torch_model, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return torch_model(torch.from_numpy(x)).numpy()


def assert_close(got: np.ndarray, ref: np.ndarray) -> None:
    assert got.shape == ref.shape, (got.shape, ref.shape)
    bound = 1e-5 * max(1.0, float(np.max(np.abs(ref))))
    assert float(np.max(np.abs(got.astype(np.float64) - ref))) <= bound


@pytest.mark.parametrize(
    "options",
    [
        {"kernel_size": 3, "dilation_rate": 2},
        {"kernel_size": 3, "dilation_rate": 2, "padding": "same"},
        {"kernel_size": 2, "dilation_rate": 3, "padding": "same"},
        {"kernel_size": (3, 2), "dilation_rate": (2, 2), "padding": "same", "output_padding": 0},
        {"kernel_size": (2, 3), "dilation_rate": (2, 1), "padding": "same", "activation": "relu"},
    ],
    ids=["valid", "same", "same_even_keff", "same_op0", "same_mixed"],
)
def test_dilated_transpose_adjoint(options):
    """A transposed convolution is the adjoint of the convolution: TensorFlow's gradient of
    the dilated forward convolution (which runs on CPU) is the reference Keras computes with
    ``tf.nn.conv_transpose``."""
    layer = layers.Conv2DTranspose(4, **options)
    model = single(layer, (6, 7, 3))
    randomize(model)
    x = np.random.default_rng(5).standard_normal((2, 6, 7, 3)).astype(np.float32)
    out_shape = model.output.shape
    kernel = layer.kernel  # (kh, kw, filters, in)
    z = tf.zeros((2, *out_shape[1:3], 4))
    with tf.GradientTape() as tape:
        tape.watch(z)
        y = tf.nn.convolution(
            z, kernel, strides=1, padding=layer.padding.upper(), dilations=layer.dilation_rate
        )
        assert tuple(y.shape) == x.shape
        loss = tf.reduce_sum(y * x)
    ref = tape.gradient(loss, z) + layer.bias
    ref = np.asarray(layer.activation(ref))
    torch_model, _ = convert_in_memory(model)
    assert_close(run_torch(torch_model, x), ref)


def test_transpose_same_even_kernel_op0_unsupported():
    """Keras accepts it, TensorFlow cannot run it ('same' of the output is not the input size)."""
    model = single(
        layers.Conv2DTranspose(4, 4, strides=2, padding="same", output_padding=0), (5, 5, 3)
    )
    with pytest.raises(UnsupportedError, match="output_padding=0"):
        generate(model)


# -- DepthwiseConv1D / DepthwiseConv2D -------------------------------------------------------

DEPTHWISE_OPTIONS = {
    "valid": {"kernel_size": 3},
    "same_s2": {"kernel_size": 3, "strides": 2, "padding": "same"},
    "same_even_kernel": {"kernel_size": 4, "padding": "same"},
    "mult3_valid_s2": {"kernel_size": 3, "strides": 2, "depth_multiplier": 3},
    "same_dilated_mult2": {
        "kernel_size": 3,
        "dilation_rate": 2,
        "padding": "same",
        "depth_multiplier": 2,
    },
    "s2_dilated_same": {"kernel_size": 3, "strides": 2, "dilation_rate": 2, "padding": "same"},
    "s3_dilated_valid": {"kernel_size": 2, "strides": 3, "dilation_rate": 2},
    "no_bias_relu6": {
        "kernel_size": 3,
        "use_bias": False,
        "activation": "relu6",
        "padding": "same",
    },
    "channels_first": {
        "kernel_size": 3,
        "strides": 2,
        "padding": "same",
        "depth_multiplier": 2,
        "data_format": "channels_first",
    },
}


@pytest.mark.parametrize("options", DEPTHWISE_OPTIONS.values(), ids=DEPTHWISE_OPTIONS.keys())
@pytest.mark.parametrize("rank", [1, 2])
def test_depthwise(tmp_path, rank, options):
    cls = layers.DepthwiseConv1D if rank == 1 else layers.DepthwiseConv2D
    shape = (3, 17, 16)[: rank + 1] if "data_format" in options else (17, 16, 3)[-rank - 1 :]
    check_parity(single(cls(**options), shape), tmp_path)


@pytest.mark.parametrize(
    "options",
    [
        pytest.param(
            {"kernel_size": 3, "strides": (2, 1), "padding": "same"},
            marks=pytest.mark.skip(reason=CPU_UNEQUAL_STRIDES),
        ),
        # Keras runs strides > 1 with dilation > 1 as a dilated convolution, subsampled: TF can.
        {"kernel_size": (3, 2), "strides": (2, 3), "dilation_rate": (1, 2), "padding": "same"},
        {"kernel_size": (3, 2), "strides": (3, 2), "dilation_rate": (2, 1)},
    ],
    ids=["same_s21", "same_s23_dilated", "valid_s32_dilated"],
)
@pytest.mark.parametrize("separable", [False, True])
def test_depthwise_unequal_strides(tmp_path, options, separable):
    if separable:
        layer = layers.SeparableConv2D(4, depth_multiplier=2, **options)
    else:
        layer = layers.DepthwiseConv2D(depth_multiplier=2, **options)
    check_parity(single(layer, (13, 14, 3)), tmp_path)


# -- SeparableConv1D / SeparableConv2D -------------------------------------------------------

SEPARABLE_OPTIONS = {
    "valid": {"kernel_size": 3},
    "same_s2": {"kernel_size": 3, "strides": 2, "padding": "same"},
    "same_even_kernel_mult2": {"kernel_size": 2, "padding": "same", "depth_multiplier": 2},
    "mult3_s2_valid": {"kernel_size": 3, "strides": 2, "depth_multiplier": 3},
    "same_dilated": {"kernel_size": 3, "dilation_rate": 3, "padding": "same"},
    "s2_dilated_same": {
        "kernel_size": 3,
        "strides": 2,
        "dilation_rate": 2,
        "padding": "same",
        "depth_multiplier": 2,
    },
    "no_bias_sigmoid": {"kernel_size": 3, "use_bias": False, "activation": "sigmoid"},
    "channels_first": {
        "kernel_size": 3,
        "strides": 2,
        "padding": "same",
        "data_format": "channels_first",
    },
}


@pytest.mark.parametrize("options", SEPARABLE_OPTIONS.values(), ids=SEPARABLE_OPTIONS.keys())
@pytest.mark.parametrize("rank", [1, 2])
def test_separable(tmp_path, rank, options):
    cls = layers.SeparableConv1D if rank == 1 else layers.SeparableConv2D
    shape = (3, 17, 16)[: rank + 1] if "data_format" in options else (17, 16, 3)[-rank - 1 :]
    _, _, result = check_parity(single(cls(5, **options), shape), tmp_path)
    assert f"SeparableConv{rank}d(3,5,kernel_size=" in flat(source_of(result))


# -- data_format="channels_first" where TensorFlow on CPU cannot run it ----------------------

CHANNELS_FIRST_LAYERS = [
    (
        layers.Conv1D,
        {"filters": 5, "kernel_size": 3, "padding": "causal", "dilation_rate": 2},
        (4, 15),
    ),
    (layers.Conv1D, {"filters": 5, "kernel_size": 3, "strides": 2, "padding": "same"}, (4, 16)),
    (
        layers.Conv2D,
        {"filters": 6, "kernel_size": 3, "strides": 2, "padding": "same", "groups": 2},
        (4, 16, 17),
    ),
    (layers.Conv2D, {"filters": 6, "kernel_size": (2, 3), "activation": "relu"}, (4, 9, 8)),
    (
        layers.Conv1DTranspose,
        {"filters": 5, "kernel_size": 3, "strides": 2, "padding": "same"},
        (4, 7),
    ),
    (
        layers.Conv2DTranspose,
        {"filters": 5, "kernel_size": 4, "strides": 2, "padding": "same"},
        (4, 7, 6),
    ),
    (
        layers.Conv3DTranspose,
        {"filters": 3, "kernel_size": 3, "strides": 2, "output_padding": 1},
        (4, 3, 4, 5),
    ),
]


@pytest.mark.parametrize(
    "cls, options, shape",
    CHANNELS_FIRST_LAYERS,
    ids=[f"{c.__name__}_{i}" for i, (c, _, _) in enumerate(CHANNELS_FIRST_LAYERS)],
)
@pytest.mark.parametrize("channels_first_interface", [False, True])
def test_channels_first_data_format(cls, options, shape, channels_first_interface):
    """Compared against the channels_last twin of the layer (same weights), which TF runs."""
    cf = single(cls(data_format="channels_first", **options), shape)
    randomize(cf)
    rank = len(shape) + 1
    to_last = (0, *range(2, rank), 1)
    twin = single(cls(**options), tuple(shape[i - 1] for i in to_last[1:]))
    twin.set_weights(cf.get_weights())
    x = np.random.default_rng(3).standard_normal((3, *shape)).astype(np.float32)
    ref = np.asarray(twin(x.transpose(to_last))).transpose(0, rank - 1, *range(1, rank - 1))
    torch_model, source = convert_in_memory(cf, channels_first=channels_first_interface)
    assert_close(run_torch(torch_model, x), ref)
    assert "permute" not in source


# -- options ---------------------------------------------------------------------------------


def test_lora_is_merged():
    layer = layers.Conv2D(6, 3, padding="same", lora_rank=2, lora_alpha=3)
    model = single(layer, (9, 8, 4))
    randomize(model)  # the LoRA factors get non-zero values too
    assert float(np.abs(layer.lora_kernel_b.numpy()).max()) > 0
    x = np.random.default_rng(2).standard_normal((2, 9, 8, 4)).astype(np.float32)
    ref = np.asarray(model(x))
    torch_model, source = convert_in_memory(model)
    assert "lora" not in source
    assert_close(run_torch(torch_model.eval(), x), ref)


def test_unread_option_is_reported(tmp_path):
    """A config key the converter does not know is refused by name, never ignored."""
    model = single(layers.Conv2D(4, 3), (8, 8, 3))
    layer = model.layers[-1]
    original = layer.get_config

    def patched():
        config = original()
        config["made_up_option"] = 7
        return config

    layer.get_config = patched
    with pytest.raises(UnsupportedError, match="made_up_option=7"):
        codegen.convert(model, tmp_path / "out")

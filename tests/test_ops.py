"""keras.ops calls in functional graphs: arithmetic, activations, reductions, shapes."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
import keras
import numpy as np
import pytest
from keras import layers, ops

import codegen
from codegen.errors import UnsupportedError
from parity import check_parity


def vector_model(fn, name, units=6):
    inp = keras.Input((5,), name="features")
    x = layers.Dense(units, name="proj")(inp)
    return keras.Model(inp, fn(x), name=name)


def image_model(fn, name):
    """The op sees a channels-first tensor inside the module (a Conv2D produced it)."""
    inp = keras.Input((7, 6, 3), name="image")
    x = layers.Conv2D(4, 3, padding="same", name="conv")(inp)
    return keras.Model(inp, fn(x), name=name)


positive = ops.softplus  # keeps log/sqrt/... inputs in their domain

ELEMENTWISE = {
    "add_const": lambda x: x + 3.0,
    "radd": lambda x: 2 + x,
    "sub_const": lambda x: x - 0.5,
    "rsub": lambda x: 1.0 - x,
    "mul_const": lambda x: x * (1.0 / 6.0),
    "div_const": lambda x: x / 3.0,
    "rdiv": lambda x: 2.0 / (positive(x) + 1.0),
    "floordiv": lambda x: ops.floor_divide(x, 0.7),
    "mod": lambda x: ops.mod(x, 0.7),
    "pow_int": lambda x: x**2,
    "pow_float": lambda x: ops.power(positive(x), 1.5),
    "rpow": lambda x: ops.power(2.0, x),
    "neg": lambda x: -x,
    "negative_const": lambda x: x * -2.0,
    "abs": ops.abs,
    "square": ops.square,
    "sqrt": lambda x: ops.sqrt(positive(x)),
    "rsqrt": lambda x: ops.rsqrt(positive(x) + 0.1),
    "exp": ops.exp,
    "expm1": ops.expm1,
    "log": lambda x: ops.log(positive(x)),
    "log1p": lambda x: ops.log1p(positive(x)),
    "reciprocal": lambda x: ops.reciprocal(positive(x) + 0.5),
    "sign": ops.sign,
    "floor": ops.floor,
    "ceil": ops.ceil,
    "round": ops.round,
    "tanh": ops.tanh,
    "sin": ops.sin,
    "cos": ops.cos,
    "erf": ops.erf,
    "relu": ops.relu,
    "relu6": lambda x: ops.relu6(x * 5.0),
    "sigmoid": ops.sigmoid,
    "silu": ops.silu,
    "hard_sigmoid": lambda x: ops.hard_sigmoid(x * 4.0),
    "hard_silu": lambda x: ops.hard_silu(x * 4.0),
    "gelu_tanh": ops.gelu,
    "gelu_exact": lambda x: ops.gelu(x, approximate=False),
    "elu": lambda x: ops.elu(x, alpha=0.5),
    "celu": lambda x: ops.celu(x, alpha=2.0),
    "selu": ops.selu,
    "softplus": ops.softplus,
    "softsign": ops.softsign,
    "log_sigmoid": ops.log_sigmoid,
    "leaky_relu": lambda x: ops.leaky_relu(x, negative_slope=0.1),
    "maximum_const": lambda x: ops.maximum(x, 0.1),
    "minimum_const": lambda x: ops.minimum(-0.2, x),
    "clip": lambda x: ops.clip(x, -0.3, 0.4),
    "where": lambda x: ops.where(x > 0, x, x * 0.1),
    "where_const": lambda x: ops.where(ops.less_equal(x, 0.2), 1.0, x),
    "compare_cast": lambda x: ops.cast(ops.greater_equal(x, 0.0), "float32") * x,
    "logical": lambda x: ops.cast(ops.logical_and(x > -0.5, ops.logical_not(x > 0.5)), "float32"),
    "tensor_tensor": lambda x: ops.maximum(x, ops.sin(x)) - ops.minimum(x, ops.cos(x)) * x,
    "cast_float64": lambda x: ops.cast(ops.cast(x, "float64") * 2.0, "float32"),
}


@pytest.mark.parametrize("name", sorted(ELEMENTWISE))
def test_elementwise_vector(tmp_path, name):
    check_parity(vector_model(ELEMENTWISE[name], name), tmp_path)


@pytest.mark.parametrize(
    "name", ["add_const", "rsub", "pow_int", "relu6", "hard_silu", "where", "tensor_tensor", "clip"]
)
def test_elementwise_keeps_channels_first(tmp_path, name):
    _, _, result = check_parity(image_model(ELEMENTWISE[name], name), tmp_path)
    source = result.module_path.read_text()
    # One permute in, one out: the operation works on the channels-first tensor as it is.
    assert source.count(".permute(") == 2


def test_mobilenet_v3_hard_sigmoid_reads_like_keras(tmp_path):
    inp = keras.Input((8, 8, 3))
    x = layers.Conv2D(8, 1, name="expand")(inp)
    s = layers.ReLU(6.0, name="re_lu")(x + 3.0) * (1.0 / 6.0)
    x = layers.Multiply(name="hard_swish")([x, s])
    _, _, result = check_parity(keras.Model(inp, x, name="hswish"), tmp_path)
    source = result.module_path.read_text()
    assert "F.relu6(x + 3.0) * 0.16666666666666666" in source
    assert "x * (F.relu6(x + 3.0) * 0.16666666666666666)" in source
    assert "self.expand(" in source  # a layer with a module keeps its own line


ACTIVATIONS_AXIS = {
    "softmax_channels": lambda x: ops.softmax(x, axis=-1),
    "softmax_height": lambda x: ops.softmax(x, axis=1),
    "log_softmax": lambda x: ops.log_softmax(x, axis=-1),
    "normalize": lambda x: ops.normalize(x, axis=-1),
    "normalize_l1": lambda x: ops.normalize(x, axis=2, order=1),
}

REDUCTIONS = {
    "mean_channels": lambda x: ops.mean(x, axis=-1),
    "mean_spatial_keep": lambda x: ops.mean(x, axis=(1, 2), keepdims=True),
    "sum_height": lambda x: ops.sum(x, axis=1),
    "max_width_keep": lambda x: ops.max(x, axis=2, keepdims=True),
    "min_channels": lambda x: ops.min(x, axis=3),
    "prod_channels": lambda x: ops.prod(x, axis=-1),
    "var_spatial": lambda x: ops.var(x, axis=(1, 2)),
    "std_channels_keep": lambda x: ops.std(x, axis=-1, keepdims=True),
    "mean_all_but_batch": lambda x: ops.mean(x, axis=(1, 2, 3)),
    "reduced_then_broadcast": lambda x: x - ops.mean(x, axis=-1, keepdims=True),
}

SHAPES = {
    "concatenate_channels": lambda x: ops.concatenate([x, ops.square(x)], axis=-1),
    "concatenate_width": lambda x: ops.concatenate([x, x * 2.0], axis=2),
    "stack": lambda x: ops.stack([x, -x], axis=1),
    "stack_last": lambda x: ops.stack([x, -x], axis=-1),
    "expand_dims": lambda x: ops.expand_dims(ops.mean(x, axis=-1), -1) * x,
    "squeeze": lambda x: ops.squeeze(ops.mean(x, axis=2, keepdims=True), axis=2),
    "transpose": lambda x: ops.transpose(x, (0, 3, 1, 2)),
    "transpose_swap": lambda x: ops.transpose(x, (0, 2, 1, 3)),
    "reshape": lambda x: ops.reshape(x, (-1, 7 * 6, 4)),
    "matmul": lambda x: ops.matmul(x, ops.transpose(x, (0, 1, 3, 2))),
    "einsum": lambda x: ops.einsum("nhwc,nhvc->nwv", x, x),
    "getitem_channels": lambda x: x[..., 1:3],
    "getitem_int": lambda x: x[:, 2],
    "getitem_step": lambda x: x[:, ::2, 1:, :2],
    "getitem_newaxis": lambda x: x[:, None, :, -1],
    "numpy_broadcast": lambda x: x + ops.mean(x, axis=(0, 1)),
}


@pytest.mark.parametrize("name", sorted(ACTIVATIONS_AXIS) + sorted(REDUCTIONS) + sorted(SHAPES))
def test_axis_ops_on_channels_first_tensor(tmp_path, name):
    fn = {**ACTIVATIONS_AXIS, **REDUCTIONS, **SHAPES}[name]
    check_parity(image_model(fn, name), tmp_path)


def test_reduction_axis_is_remapped(tmp_path):
    _, _, result = check_parity(
        image_model(lambda x: ops.mean(x, axis=-1, keepdims=True), "m"), tmp_path
    )
    source = result.module_path.read_text()
    assert "torch.mean(x, dim=1, keepdim=True)" in source


def test_concatenate_op_is_not_permuted(tmp_path):
    fn = SHAPES["concatenate_channels"]
    _, _, result = check_parity(image_model(fn, "cat"), tmp_path)
    source = result.module_path.read_text()
    assert "dim=1)" in source and source.count(".permute(") == 2


def test_integer_inputs(tmp_path):
    inp = keras.Input((4,), dtype="int32", name="ids")
    x = ops.cast(inp * 2 + 1, "float32") / 3.0
    check_parity(keras.Model(inp, x), tmp_path)


def test_shared_op_inputs_and_constants_left(tmp_path):
    a = keras.Input((3,), name="a")
    b = keras.Input((3,), name="b")
    x = ops.add(a, b) * ops.subtract(b, a) / (ops.abs(a) + 1.0)
    check_parity(keras.Model([a, b], [x, 1.0 - x]), tmp_path)


def test_unsupported_ops_listed_together(tmp_path):
    inp = keras.Input((4, 5))
    x = layers.Dense(3, name="fine")(inp)
    y = ops.cumsum(x, axis=1)
    z = ops.argsort(x, axis=-1)
    model = keras.Model(inp, [y, z])
    out = tmp_path / "out"
    with pytest.raises(UnsupportedError) as info:
        codegen.convert(model, out)
    problems = info.value.problems
    assert len(problems) == 2, problems
    assert any("Cumsum" in p and "keras.ops call" in p for p in problems)
    assert any("Argsort" in p and "keras.ops call" in p for p in problems)
    assert not out.exists()


def test_array_constant_is_unsupported(tmp_path):
    inp = keras.Input((3,))
    x = layers.Dense(3, name="fine")(inp)
    model = keras.Model(inp, x * np.array([1.0, 2.0, 3.0], dtype="float32"))
    with pytest.raises(UnsupportedError) as info:
        codegen.convert(model, tmp_path / "out")
    assert "(Multiply)" in str(info.value) and "constant" in str(info.value)
    assert not (tmp_path / "out").exists()

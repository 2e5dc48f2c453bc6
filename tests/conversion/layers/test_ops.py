"""keras.ops calls in functional graphs: arithmetic, activations, reductions, shapes."""

import os
import re

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
import keras
import numpy as np
import pytest
from keras import layers, ops

import codegen
from codegen.api import generate
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
    y = ops.sort(x, axis=1)
    z = ops.argsort(x, axis=-1)
    model = keras.Model(inp, [y, z])
    out = tmp_path / "out"
    with pytest.raises(UnsupportedError) as info:
        codegen.convert(model, out)
    problems = info.value.problems
    assert len(problems) == 2, problems
    assert any("Sort" in p and "keras.ops call" in p for p in problems)
    assert any("Argsort" in p and "keras.ops call" in p for p in problems)
    assert not out.exists()


# -- constant arrays, and the ops position embeddings are written with ------------------
MAXLEN, VOCAB, DIM = 12, 20, 8
TABLE = np.random.default_rng(5).normal(size=(MAXLEN, DIM)).astype("float32")


def token_model(fn, name):
    """Token ids -> embeddings; ``fn(ids, embeddings)`` adds positions the way people write it."""
    inp = keras.Input((MAXLEN,), dtype="int32", name="tokens")
    x = layers.Embedding(VOCAB, DIM, name="token_embedding")(inp)
    return keras.Model(inp, fn(inp, x), name=name)


def cumsum_positions(ids):
    return ops.cumsum(ops.ones_like(ids), axis=1) - 1


def position_embedding():
    return layers.Embedding(MAXLEN, DIM, name="position_embedding")


def built_position_embedding():
    layer = position_embedding()
    layer.build((None, MAXLEN))
    return layer


# Keras runs an op or a layer on a constant while the graph is built (``pos_emb(arange)``):
# the graph then holds the result as a constant array argument of the next op.
POSITIONS = {
    "arange_embedding": lambda ids, x: x + position_embedding()(ops.arange(0, MAXLEN)),
    "expand_dims_arange": lambda ids, x: x
    + position_embedding()(ops.expand_dims(ops.arange(MAXLEN), 0)),
    "shape_arange": lambda ids, x: x + position_embedding()(ops.arange(ops.shape(ids)[1])),
    "cumsum_ones_like": lambda ids, x: x + position_embedding()(cumsum_positions(ids)),
    "arange_plus_zeros_like": lambda ids, x: x
    + position_embedding()(ops.expand_dims(ops.arange(MAXLEN), 0) + ops.zeros_like(ids)),
    "take_table": lambda ids, x: x + ops.take(TABLE, cumsum_positions(ids), axis=0),
    "take_table_arange": lambda ids, x: x + ops.take(TABLE, ops.arange(MAXLEN), axis=0),
    "take_by_ids": lambda ids, x: x * ops.take(TABLE[:10], ids, axis=0),
    # A variable of a layer outside the model: Keras reads it as a constant.
    "take_variable": lambda ids, x: x
    + ops.take(built_position_embedding().embeddings, cumsum_positions(ids), axis=0),
    "scaled": lambda ids, x: x * ops.sqrt(ops.cast(DIM, "float32"))
    + position_embedding()(ops.arange(MAXLEN)),
}


@pytest.mark.parametrize("name", sorted(POSITIONS))
def test_position_embeddings_written_with_ops(tmp_path, name):
    _, _, result = check_parity(token_model(POSITIONS[name], name), tmp_path)
    source = result.module_path.read_text()
    # A constant table is a buffer filled from the state_dict, not numbers in the code.
    assert len(re.findall(r"\d\.\d{3,}", source)) <= 1, source


def test_large_constant_is_a_persistent_buffer(tmp_path):
    model = token_model(lambda ids, x: x + ops.take(TABLE, cumsum_positions(ids), axis=0), "t")
    _, net, result = check_parity(model, tmp_path)
    source = result.module_path.read_text()
    # Operations are named take, take_1, ... in the order they were created.
    name = re.search(r'register_buffer\("(take(_\d+)?_constant)", torch.zeros\(12, 8\)\)', source)[
        1
    ]
    assert f"self.{name}[" in source
    np.testing.assert_array_equal(net.state_dict()[name].numpy(), TABLE)
    entry = next(w for w in generate(model, command="x").top.weights if w.key == name)
    assert entry.transform == "constant" and entry.keras_variable == "" and not entry.trainable
    # No value of the table is written into the code.
    assert repr(float(TABLE[0, 0]))[:6] not in source


def test_small_constant_is_written_in_the_code(tmp_path):
    weights = np.array([1.0, 2.0, 0.5, -1.0, 0.25, 3.0], dtype="float32")
    model = vector_model(lambda x: x * weights + np.arange(6, dtype="float32"), "small")
    _, net, result = check_parity(model, tmp_path)
    source = result.module_path.read_text()
    assert "torch.tensor([1.0, 2.0, 0.5, -1.0, 0.25, 3.0])" in source
    assert source.count("persistent=False") == 2
    assert re.search(r"x \* self.multiply(_\d+)?_constant \+ self.add(_\d+)?_constant\n", source)
    assert not any("constant" in key for key in net.state_dict())


def test_constants_follow_a_channels_first_layout(tmp_path):
    per_channel = np.array([1.0, -2.0, 0.5, 3.0], dtype="float32")
    per_row = np.linspace(-1, 1, 6, dtype="float32").reshape(6, 1)
    full = np.random.default_rng(3).normal(size=(7, 6, 4)).astype("float32")
    model = image_model(lambda x: (x * per_channel + per_row) * full, "cf_constants")
    _, net, result = check_parity(model, tmp_path)
    source = result.module_path.read_text()
    assert source.count(".permute(") == 2
    stored = [v.shape for k, v in net.state_dict().items() if k.endswith("_constant")]
    assert stored == [(4, 7, 6)]  # the (7, 6, 4) constant, channels-first like the tensor


def test_integer_constants(tmp_path):
    model = token_model(
        lambda ids, x: x
        + position_embedding()(ops.mod(ids + np.arange(MAXLEN, dtype="int32"), MAXLEN)),
        "int_constants",
    )
    _, _, result = check_parity(model, tmp_path)
    source = result.module_path.read_text()
    assert "torch.tensor([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], dtype=torch.int32)" in source


def test_float64_constant_array(tmp_path):
    check_parity(vector_model(lambda x: x * np.arange(6.0), "float64_array"), tmp_path)


def test_dtype_promotion_torch_does_not_share_is_unsupported(tmp_path):
    model = vector_model(lambda x: x + np.float64(2.0), "strong_scalar")
    with pytest.raises(UnsupportedError) as info:
        codegen.convert(model, tmp_path / "out")
    assert "float64" in str(info.value)


SEQUENCE_OPS = {
    "cumsum": lambda x: ops.cumsum(x, axis=1),
    "cumsum_channels": lambda x: ops.cumsum(x, axis=-1),
    "cumsum_flat": lambda x: ops.cumsum(x),
    "cumprod": lambda x: ops.cumprod(ops.sigmoid(x) + 0.5, axis=2),
    "ones_like": lambda x: x + ops.ones_like(x),
    "zeros_like_int": lambda x: ops.cast(ops.zeros_like(x, dtype="int32") + 2, "float32") * x,
    "full_like": lambda x: ops.full_like(x, 0.5) * x,
    "tile": lambda x: ops.tile(ops.mean(x, axis=1, keepdims=True), (1, 7, 1, 1)) - x,
    "tile_short_repeats": lambda x: ops.tile(x, (2, 1)),
    "repeat": lambda x: ops.repeat(x, 2, axis=2),
    "repeat_channels": lambda x: ops.repeat(x, 3, axis=-1),
    "repeat_flat": lambda x: ops.repeat(x, 2),
    "broadcast_to": lambda x: x
    + ops.broadcast_to(ops.mean(x, axis=(0, 1), keepdims=True), (1, 7, 6, 4)),
    "broadcast_to_new_axis": lambda x: x + ops.broadcast_to(ops.mean(x, axis=(0, 1)), (7, 6, 4)),
    "take_list": lambda x: ops.take(x, [0, 2, 3], axis=2),
    "take_int": lambda x: ops.take(x, 1, axis=-1),
    "take_flat": lambda x: ops.take(x, np.arange(5)),
    "take_along_axis": lambda x: ops.take_along_axis(
        x, ops.mod(ops.cast(ops.abs(x) * 3.0, "int32"), 4), axis=-1
    ),
}


@pytest.mark.parametrize("name", sorted(SEQUENCE_OPS))
def test_gather_repeat_and_cumulative_ops(tmp_path, name):
    check_parity(image_model(SEQUENCE_OPS[name], name), tmp_path)


def test_cumsum_keeps_the_keras_integer_dtype(tmp_path):
    _, _, result = check_parity(
        token_model(lambda ids, x: x + position_embedding()(cumsum_positions(ids)), "c"), tmp_path
    )
    source = result.module_path.read_text()
    assert "torch.cumsum(torch.ones_like(tokens), dim=-1, dtype=torch.int32) - 1" in source


def test_broadcast_to_unknown_size_is_unsupported(tmp_path):
    inp = keras.Input((5, 3))
    x = layers.Dense(3, name="fine")(inp)
    y = ops.broadcast_to(ops.mean(x, axis=1, keepdims=True), ops.shape(x))
    with pytest.raises(UnsupportedError) as info:
        codegen.convert(keras.Model(inp, y), tmp_path / "out")
    assert "(BroadcastTo)" in str(info.value)


@pytest.mark.parametrize("name", ["take_list", "take_int", "tile", "repeat", "cumsum"])
def test_gather_and_repeat_keep_channels_first(tmp_path, name):
    _, _, result = check_parity(image_model(SEQUENCE_OPS[name], name), tmp_path)
    # The permute into channels-first and, for a rank-4 result, the one out.
    assert result.module_path.read_text().count(".permute(") == (1 if name == "take_int" else 2)


def test_get_item_from_a_saved_file_through_keras_loader(tmp_path):
    # JSON turns the tuple index into a list; Keras's loader keeps the list.
    import codegen

    inputs = keras.Input((6, 5))
    model = keras.Model(inputs, keras.layers.Dense(3)(inputs[:, 1:4, ::2]))
    path = tmp_path / "slicing.keras"
    model.save(path)
    for reader in ("keras", "file"):
        result = codegen.convert(path, tmp_path / reader, verify=True, reader=reader)
        assert result.passed, (reader, result.errors)

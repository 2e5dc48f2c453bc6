"""Merge layers: element-wise merges, Concatenate and Dot, across layouts and broadcasting."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
import keras
import pytest
from keras import layers

import codegen
from codegen.api import generate
from codegen.conversion.engine import convert_graph
from codegen.conversion.model import Options
from codegen.conversion.pipeline import converter_registry
from codegen.errors import UnsupportedError
from codegen.read.from_keras import read_model
from parity import check_parity

ELEMENTWISE = ["Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum"]


def merge(kind, name="merge"):
    return getattr(layers, kind)(name=name)


def image_branches(inp):
    a = layers.Conv2D(4, 3, padding="same", name="conv_a")(inp)
    b = layers.Conv2D(4, 1, name="conv_b")(inp)
    return a, b


@pytest.mark.parametrize("kind", ELEMENTWISE)
def test_vectors(tmp_path, kind):
    a = keras.Input((6,), name="a")
    b = keras.Input((6,), name="b")
    check_parity(
        keras.Model([a, b], merge(kind)([a, layers.Dense(6)(b)]), name=kind.lower()), tmp_path
    )


@pytest.mark.parametrize("kind", ELEMENTWISE)
def test_channels_first_images(tmp_path, kind):
    inp = keras.Input((7, 5, 3))
    _, _, result = check_parity(keras.Model(inp, merge(kind)(image_branches(inp))), tmp_path)
    source = result.module_path.read_text()
    assert source.count(".permute(") == 2  # in and out only


@pytest.mark.parametrize("kind", ["Add", "Multiply", "Average", "Maximum", "Minimum"])
def test_three_inputs(tmp_path, kind):
    inp = keras.Input((5, 5, 2))
    a, b = image_branches(inp)
    c = layers.Conv2D(4, 2, padding="same", name="conv_c")(inp)
    check_parity(keras.Model(inp, merge(kind)([a, b, c])), tmp_path)


@pytest.mark.parametrize("kind", ELEMENTWISE)
def test_image_with_vector_broadcast(tmp_path, kind):
    # Keras inserts the missing axes after the batch axis: (N, C) acts as (N, 1, 1, C).
    inp = keras.Input((6, 5, 3))
    x = layers.Conv2D(4, 3, name="conv")(inp)
    v = layers.Dense(4, name="squeeze")(layers.GlobalAveragePooling2D()(x))
    _, _, result = check_parity(keras.Model(inp, merge(kind)([x, v])), tmp_path)
    source = result.module_path.read_text()
    assert "[:, :, None, None]" in source


@pytest.mark.parametrize("kind", ["Add", "Subtract", "Maximum"])
def test_vector_first_broadcast(tmp_path, kind):
    inp = keras.Input((6, 5, 3))
    x = layers.Conv2D(4, 3, name="conv")(inp)
    v = layers.Dense(4, name="vec")(layers.Flatten()(inp))
    check_parity(keras.Model(inp, merge(kind)([v, x])), tmp_path)


@pytest.mark.parametrize("kind", ["Add", "Multiply", "Subtract"])
def test_size_one_broadcast(tmp_path, kind):
    inp = keras.Input((6, 5, 3))
    x = layers.Conv2D(4, 3, name="conv")(inp)
    s = layers.GlobalAveragePooling2D(keepdims=True)(x)
    check_parity(keras.Model(inp, merge(kind)([x, s])), tmp_path)


@pytest.mark.parametrize("kind", ["Add", "Multiply"])
def test_sequence_with_vector(tmp_path, kind):
    seq = keras.Input((7, 4), name="seq")
    vec = keras.Input((4,), name="vec")
    check_parity(keras.Model([seq, vec], merge(kind)([seq, vec])), tmp_path)


@pytest.mark.parametrize("kind", ["Add", "Subtract", "Multiply"])
def test_mixed_layouts(tmp_path, kind):
    # One branch is channels-first (after a conv), the other in Keras order (after Reshape).
    inp = keras.Input((5, 5, 3))
    conv = layers.Conv2D(4, 3, padding="same", name="conv")(inp)
    flat = layers.Dense(100, name="dense")(layers.Flatten()(inp))
    reshaped = layers.Reshape((5, 5, 4))(flat)
    check_parity(keras.Model(inp, merge(kind)([reshaped, conv])), tmp_path)


@pytest.mark.parametrize("axis", [-1, 1, 2, 3])
def test_concatenate_images(tmp_path, axis):
    inp = keras.Input((5, 4, 3))
    a, b = image_branches(inp)
    if axis != -1 and axis != 3:
        b = layers.Conv2D(4, 1, name="conv_same")(inp)
    y = layers.Concatenate(axis=axis)([a, b, a])
    _, _, result = check_parity(keras.Model(inp, y, name=f"cat{axis}"), tmp_path)
    source = result.module_path.read_text()
    torch_dim = {-1: 1, 3: 1, 1: 2, 2: 3}[axis]
    dim_text = "-1" if torch_dim == 3 else str(torch_dim)
    assert f"dim={dim_text})" in source
    assert source.count(".permute(") == 2  # remapped, never permuted


def test_concatenate_mixed_layouts(tmp_path):
    inp = keras.Input((5, 5, 3))
    conv1 = layers.Conv2D(4, 3, padding="same", name="conv1")(inp)
    conv2 = layers.Conv2D(2, 1, name="conv2")(inp)
    reshaped = layers.Reshape((5, 5, 3))(layers.Dense(75)(layers.Flatten()(inp)))
    check_parity(keras.Model(inp, layers.Concatenate()([conv1, reshaped, conv2])), tmp_path)


def test_concatenate_flattened_image_and_vector(tmp_path):
    image = keras.Input((6, 6, 2), name="image")
    meta = keras.Input((3,), name="meta")
    x = layers.Conv2D(4, 3, name="conv")(image)
    x = layers.Flatten()(x)
    m = layers.Dense(5, name="meta_proj")(meta)
    y = layers.Concatenate()([x, m])
    check_parity(keras.Model([image, meta], layers.Dense(2, name="head")(y)), tmp_path)


@pytest.mark.parametrize("axis", [1, -1, 2])
def test_concatenate_sequences(tmp_path, axis):
    a = keras.Input((5, 3), name="a")
    b = keras.Input((5, 3), name="b")
    check_parity(
        keras.Model([a, b], layers.Concatenate(axis=axis)([a, layers.Dense(3)(b)])), tmp_path
    )


DOT_CASES = {
    "vectors": ((6,), (6,), 1),
    "vectors_negative": ((6,), (6,), -1),
    "seq_last": ((4, 3), (5, 3), 2),
    "seq_first": ((4, 3), (4, 5), 1),
    "seq_mixed": ((4, 3), (3, 5), (2, 1)),
    "vector_seq": ((3,), (5, 3), (1, 2)),
    "seq_vector": ((5, 3), (3,), (2, 1)),
    "rank4": ((2, 3, 4), (4, 5), (3, 1)),
}


@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("case", sorted(DOT_CASES))
def test_dot(tmp_path, case, normalize):
    sa, sb, axes = DOT_CASES[case]
    a = keras.Input(sa, name="a")
    b = keras.Input(sb, name="b")
    y = layers.Dot(axes=axes, normalize=normalize)([a, b])
    check_parity(keras.Model([a, b], y, name=f"dot_{case}"), tmp_path)


def test_dot_of_channels_first_images(tmp_path):
    inp = keras.Input((4, 3, 2))
    a, b = image_branches(inp)
    y = layers.Dot(axes=-1, normalize=True)([a, b])
    _, _, result = check_parity(keras.Model(inp, y), tmp_path)
    assert "torch.einsum(" in result.module_path.read_text()


def test_custom_scale_layer(tmp_path):
    from keras.src.applications.inception_resnet_v2 import CustomScaleLayer

    inp = keras.Input((5, 5, 4))
    up = layers.Conv2D(4, 1, name="up")(layers.Conv2D(3, 3, padding="same", name="branch")(inp))
    x = CustomScaleLayer(0.17, name="block_scale")([inp, up])
    x = layers.Activation("relu")(x)
    _, _, result = check_parity(keras.Model(inp, x), tmp_path)
    assert "* 0.17" in result.module_path.read_text()


def test_masked_inputs_unsupported_for_multiply(tmp_path):
    inp = keras.Input((5,), dtype="int32")
    e = layers.Embedding(10, 4, mask_zero=True)(inp)
    graph = read_model(keras.Model(inp, layers.Multiply()([e, layers.Dense(4)(e)])))
    assert any(t.masked for call in graph.calls for t in call.inputs)
    # Without an Embedding converter in play: mark a mask-free model's merge inputs.
    a = keras.Input((4,))
    model = keras.Model(a, layers.Maximum(name="maxed")([a, layers.Dense(4)(a)]))
    graph = read_model(model)
    for call in graph.calls:
        for tensor in call.inputs:
            tensor.masked = True
    with pytest.raises(UnsupportedError) as info:
        convert_graph(graph, Options(), registry=converter_registry())
    assert "'maxed' (Maximum)" in str(info.value) and "mask" in str(info.value)


def test_dot_of_vectors_reads_as_sum_and_lambda_is_listed(tmp_path):
    a = keras.Input((4,))
    b = layers.Dense(4)(a)
    model = keras.Model(a, layers.Dot(axes=1, name="dotted")([a, b]))
    assert "torch.sum(" in generate(model).source
    out = tmp_path / "out"
    bad = keras.Model(
        a, layers.Lambda(lambda t: keras.ops.sort(t), name="lam")(layers.Add(name="ok")([a, b]))
    )
    with pytest.raises(UnsupportedError) as info:
        codegen.convert(bad, out)
    assert len(info.value.problems) == 1
    assert info.value.problems[0].startswith("'lam' (Lambda): its Python code")
    assert not out.exists()

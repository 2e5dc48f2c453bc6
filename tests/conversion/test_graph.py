"""Graph structure: nested models, shared layers, several inputs and outputs, layouts."""

import inspect
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
import keras
import pytest
import torch
from keras import layers, ops

import codegen
from codegen.errors import UnsupportedError
from parity import check_parity


def state_keys(result):
    return list(torch.load(result.weights_path, weights_only=True))


def conv_block(name, filters=4, input_shape=(8, 8, 3)):
    return keras.Sequential(
        [
            keras.Input(input_shape),
            layers.Conv2D(filters, 3, padding="same", name="conv"),
            layers.BatchNormalization(name="bn"),
            layers.ReLU(name="relu"),
        ],
        name=name,
    )


def test_nested_sequential_is_its_own_class(tmp_path):
    inp = keras.Input((8, 8, 3), name="image")
    x = conv_block("stem")(inp)
    x = layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inp, layers.Dense(2, name="head")(x), name="classifier")
    module, net, result = check_parity(model, tmp_path)
    source = result.module_path.read_text()
    assert "class Stem(nn.Module):" in source
    assert "self.stem = Stem()" in source
    assert isinstance(net.stem, module.Stem)
    assert "stem.conv.weight" in state_keys(result) and "stem.bn.running_var" in state_keys(result)
    # The input is permuted once; the nested block receives channels-first tensors.
    assert source.count(".permute(") == 1


def test_nested_model_inside_nested_model(tmp_path):
    deep_in = keras.Input((6,))
    innermost = keras.Model(
        deep_in, layers.Dense(6, activation="tanh", name="deep")(deep_in), name="innermost"
    )
    inner = keras.Sequential(
        [keras.Input((6,)), layers.Dense(6, name="d1"), innermost], name="inner_seq"
    )
    inp = keras.Input((6,))
    model = keras.Model(inp, layers.Dense(2, name="head")(inner(inp)), name="outer")
    module, net, result = check_parity(model, tmp_path)
    source = result.module_path.read_text()
    assert "class Innermost(nn.Module):" in source and "class InnerSeq(nn.Module):" in source
    assert "self.innermost = Innermost()" in source and "self.inner_seq = InnerSeq()" in source
    assert "inner_seq.innermost.deep.weight" in state_keys(result)
    assert isinstance(net.inner_seq.innermost, module.Innermost)


def test_shared_layer_declared_once_called_twice(tmp_path):
    a = keras.Input((5,), name="a")
    b = keras.Input((5,), name="b")
    shared = layers.Dense(4, name="shared")
    y = layers.Concatenate()([shared(a), shared(b)])
    _, _, result = check_parity(keras.Model([a, b], y), tmp_path)
    source = result.module_path.read_text()
    assert source.count("self.shared = nn.Linear(5, 4)") == 1
    assert source.count("self.shared(") == 2
    assert state_keys(result) == ["shared.weight", "shared.bias"]


def test_shared_conv_on_two_images(tmp_path):
    a = keras.Input((7, 7, 3), name="left")
    b = keras.Input((7, 7, 3), name="right")
    conv = layers.Conv2D(4, 3, name="shared_conv")
    y = layers.Subtract()([conv(a), conv(b)])
    _, _, result = check_parity(keras.Model([a, b], y), tmp_path)
    assert result.module_path.read_text().count("self.shared_conv(") == 2


def test_shared_nested_model_siamese(tmp_path):
    tower = conv_block("tower", input_shape=(6, 6, 3))
    a = keras.Input((6, 6, 3), name="left")
    b = keras.Input((6, 6, 3), name="right")
    fa = layers.GlobalAveragePooling2D()(tower(a))
    fb = layers.GlobalAveragePooling2D()(tower(b))
    y = layers.Dot(axes=1, normalize=True)([fa, fb])
    _, _, result = check_parity(keras.Model([a, b], y, name="siamese"), tmp_path)
    source = result.module_path.read_text()
    assert source.count("class Tower(nn.Module)") == 1
    assert source.count("self.tower = Tower()") == 1 and source.count("self.tower(") == 2
    assert sum(k.startswith("tower.conv.") for k in state_keys(result)) == 2


def test_inputs_follow_keras_order(tmp_path):
    second = keras.Input((3,), name="second")  # created first, listed second
    first = keras.Input((4, 4, 2), name="first")
    x = layers.Conv2D(3, 3, name="conv")(first)
    x = layers.GlobalAveragePooling2D()(x)
    y = layers.Add()([x, layers.Dense(3, name="proj")(second)])
    _, net, _ = check_parity(keras.Model([first, second], y), tmp_path)
    assert list(inspect.signature(net.forward).parameters) == ["first", "second"]


def test_several_outputs_in_keras_order(tmp_path):
    inp = keras.Input((6, 6, 2), name="image")
    conv = layers.Conv2D(4, 3, name="conv")(inp)
    pooled = layers.GlobalAveragePooling2D(name="pool")(conv)
    logits = layers.Dense(3, name="logits")(pooled)  # pooled is an output and consumed
    outputs = [logits, conv, pooled, inp, logits]
    _, net, result = check_parity(keras.Model(inp, outputs), tmp_path)
    source = result.module_path.read_text()
    assert "-> tuple[" in source and source.count("torch.Tensor") >= 6
    with torch.no_grad():
        got = net(torch.zeros(2, 6, 6, 2))
    assert [tuple(t.shape) for t in got] == [(2, 3), (2, 4, 4, 4), (2, 4), (2, 6, 6, 2), (2, 3)]


def test_dict_outputs_in_flattened_keras_order(tmp_path):
    inp = keras.Input((4,))
    model = keras.Model(
        inp, {"zeta": layers.Dense(1, name="z")(inp), "alpha": layers.Dense(2, name="a")(inp)}
    )
    _, net, _ = check_parity(model, tmp_path)
    with torch.no_grad():
        got = net(torch.zeros(1, 4))
    # A dict, in Keras's flattened order (sorted by key): "alpha" (2 units), then "zeta" (1).
    assert [(k, tuple(t.shape)) for k, t in got.items()] == [("alpha", (1, 2)), ("zeta", (1, 1))]


@pytest.mark.parametrize("channels_first", [False, True])
def test_nested_multi_io(tmp_path, channels_first):
    a = keras.Input((6, 6, 3))
    b = keras.Input((6, 6, 3))
    p = layers.Conv2D(4, 1, name="pc")(a)
    q = layers.Add(name="pq")([layers.Conv2D(4, 1, name="qc")(b), p])
    sub = keras.Model([a, b], [q, layers.GlobalAveragePooling2D(name="gap")(p)], name="sub")
    x1 = keras.Input((6, 6, 3), name="x1")
    x2 = keras.Input((6, 6, 3), name="x2")
    o, v = sub([x2, x1])
    o2, _ = sub([x1, x1])  # second output unused
    model = keras.Model([x1, x2], [layers.Flatten()(o), v, o2], name="outer")
    _, _, result = check_parity(model, tmp_path, channels_first=channels_first)
    source = result.module_path.read_text()
    assert "_ = self.sub(x1, x1)" in source  # the unused second output
    assert source.count("class Sub(nn.Module)") == 1 and source.count("self.sub(") == 2


def test_channels_first_layers_only(tmp_path):
    # Keras on a TensorFlow CPU cannot run a channels_first Conv2D (no NCHW kernel), so the
    # spatial layers here are the ones it can: depthwise conv, pooling, padding, upsampling.
    cf = "channels_first"
    inp = keras.Input((3, 8, 8))
    x = layers.BatchNormalization(axis=1, name="bn")(inp)
    d = layers.DepthwiseConv2D(3, padding="same", data_format=cf, name="dw")(x)
    p = layers.MaxPooling2D(data_format=cf)(layers.ZeroPadding2D(1, data_format=cf)(d))
    p = layers.AveragePooling2D(3, strides=1, data_format=cf)(
        layers.UpSampling2D(data_format=cf)(p)
    )
    x = layers.Add()([x, p])
    s = layers.GlobalAveragePooling2D(data_format="channels_first", keepdims=True)(x)
    x = layers.Multiply()([x, s])
    x = layers.Concatenate(axis=1)([x, inp])
    f = layers.Flatten(data_format="channels_first")(x)
    model = keras.Model(inp, [layers.Dense(4, name="head")(f), x])
    _, _, result = check_parity(model, tmp_path)
    source = result.module_path.read_text()
    assert ".permute(" not in source and "dim=1)" in source


def test_channels_first_conv(tmp_path):
    import numpy as np

    inp = keras.Input((3, 8, 8))
    x = layers.Conv2D(4, 3, data_format="channels_first", name="conv")(inp)
    model = keras.Model(inp, layers.Concatenate(axis=1)([x, x * 2.0]))
    try:
        model(np.zeros((1, 3, 8, 8), "float32"))
    except Exception:  # noqa: BLE001 - TensorFlow's error type varies
        pytest.skip("Keras's TensorFlow CPU backend has no channels_first (NCHW) Conv2D kernel")
    _, _, result = check_parity(model, tmp_path)
    assert ".permute(" not in result.module_path.read_text()


def test_nested_channels_first_output_feeds_dense(tmp_path):
    inp = keras.Input((8, 8, 3))
    x = conv_block("features")(inp)
    x = layers.Flatten()(x)
    check_parity(keras.Model(inp, layers.Dense(3, name="head")(x)), tmp_path)


def test_every_problem_listed_once(tmp_path):
    sub_in = keras.Input((4,))
    sub = keras.Model(
        sub_in,
        # keras.ops.cumsum: code keras2torch does not translate
        layers.Lambda(lambda t: keras.ops.cumsum(t, axis=1), name="inner_lambda")(sub_in),
        name="sub",
    )
    inp = keras.Input((4,))
    x = layers.Dense(4, name="ok")(inp)
    y = sub(x)
    y = layers.Dense(4, name="after_sub")(y)  # fine, but fed by a failed call: not reported
    z = ops.sort(x, axis=1)
    weird = layers.Dense(4, name="weird")
    weird.get_config = lambda: {**type(weird).get_config(weird), "mystery_option": 3}
    w = weird(x)
    outer_lambda = layers.Lambda(lambda t: keras.ops.cumsum(t, axis=1), name="outer_lambda")
    v = outer_lambda(outer_lambda(w))  # called twice, listed once
    model = keras.Model(inp, [y, z, v])
    out = tmp_path / "out"
    with pytest.raises(UnsupportedError) as info:
        codegen.convert(model, out)
    problems = info.value.problems
    assert len(problems) == 4, problems
    text = "\n".join(problems)
    assert "'inner_lambda' (Lambda): its Python code" in text
    assert "(Sort): keras.ops call not supported" in text
    assert "'weird' (Dense): unsupported option(s) mystery_option=3" in text
    assert "'outer_lambda' (Lambda): its Python code" in text
    assert not out.exists()


def test_unsupported_after_failed_input_still_listed(tmp_path):
    inp = keras.Input((4,))
    x = layers.Lambda(lambda t: keras.ops.sort(t), name="first")(inp)
    x = layers.Lambda(lambda t: keras.ops.sort(t), name="second")(x)
    with pytest.raises(UnsupportedError) as info:
        codegen.convert(keras.Model(inp, layers.Dense(2)(x)), tmp_path / "out")
    assert [p.split(":")[0] for p in info.value.problems] == [
        "'first' (Lambda)",
        "'second' (Lambda)",
    ]


def test_subclassed_model_as_layer_is_listed(tmp_path):
    class Custom(keras.Model):
        def __init__(self):
            super().__init__(name="custom")
            self.dense = layers.Dense(2)

        def call(self, x):
            return self.dense(x)

    inp = keras.Input((5,))
    with pytest.raises(UnsupportedError) as info:
        codegen.convert(keras.Model(inp, Custom()(inp)), tmp_path / "out")
    assert info.value.problems == ["'custom' (Custom): layer not supported"]


def test_ops_inside_nested_model(tmp_path):
    sub_in = keras.Input((6, 6, 4))
    gate = layers.ReLU(6.0, name="gate")(sub_in + 3.0) * (1.0 / 6.0)
    sub = keras.Model(sub_in, ops.mean(sub_in * gate, axis=-1, keepdims=True), name="gated")
    inp = keras.Input((6, 6, 3))
    x = layers.Conv2D(4, 1, name="conv")(inp)
    _, _, result = check_parity(keras.Model(inp, sub(x)), tmp_path)
    source = result.module_path.read_text()
    assert "F.relu6(x + 3.0) * 0.16666666666666666" in source
    assert source.count(".permute(") == 2


def test_renaming_only_calls_emit_no_line(tmp_path):
    # Flatten of a flat tensor and a transpose the layout absorbs are no statements at all.
    inp = keras.Input((5,))
    x = layers.Flatten(name="flat")(layers.Dense(4, name="proj")(inp))
    img = keras.Input((4, 4, 2))
    y = ops.transpose(layers.Conv2D(3, 1, name="conv")(img), (0, 3, 1, 2))
    _, _, result = check_parity(
        keras.Model([inp, img], [layers.Dense(2, name="head")(x), y]), tmp_path
    )
    source = result.module_path.read_text()
    assert "(Flatten)" not in source and "(ops.Transpose)" not in source
    assert "return (head, conv)" in source

"""Unsupported layers: one error naming every blocking layer, nothing written."""

import keras
import pytest
from keras import layers

import codegen
from codegen.errors import UnsupportedError


def test_every_unsupported_layer_listed(tmp_path):
    inputs = keras.Input((4,))
    x = layers.Dense(3, name="fine")(inputs)
    # Lambdas whose code keras2torch does not translate (keras.ops.cumsum has no mapping).
    x = layers.Lambda(lambda t: keras.ops.cumsum(t, axis=1), name="first_lambda")(x)
    x = layers.Lambda(lambda t: keras.ops.cumsum(t, axis=0), name="second_lambda")(x)
    model = keras.Model(inputs, x)
    out = tmp_path / "out"
    with pytest.raises(UnsupportedError) as info:
        codegen.convert(model, out)
    message = str(info.value)
    assert "'first_lambda' (Lambda)" in message and "'second_lambda' (Lambda)" in message
    assert "fine" not in message
    assert len(info.value.problems) == 2
    assert not out.exists()


def test_unsupported_option_is_named(tmp_path):
    # An option no converter knows must be reported, never silently ignored.
    model = keras.Sequential([keras.Input((8,)), layers.Dense(4)])
    layer = model.layers[0]
    layer.get_config = lambda: {**type(layer).get_config(layer), "mystery_option": 3}
    with pytest.raises(UnsupportedError) as info:
        codegen.convert(model, tmp_path / "out")
    assert "mystery_option=3" in str(info.value)


def test_layer_whose_config_cannot_be_read(tmp_path):
    model = keras.Sequential([keras.Input((8,)), layers.Dense(4, name="broken")])

    def failing_config():
        raise TypeError("cannot serialize this activation")

    model.layers[0].get_config = failing_config
    with pytest.raises(UnsupportedError) as info:
        codegen.convert(model, tmp_path / "out")
    assert "'broken' (Dense): its config cannot be read" in str(info.value)
    assert not (tmp_path / "out").exists()


def test_shapes_a_converter_disagrees_with_are_reported_not_internal(tmp_path):
    """A graph whose recorded shapes are not what the converters compute (a reader that
    could not know them) gives a problem naming the layer, never an internal error."""
    from codegen.api import generate
    from codegen.read.from_keras import read_model

    model = keras.Sequential([keras.Input((4, 4, 2)), layers.Flatten(name="flat")])
    graph = read_model(model)
    flat = next(c for c in graph.calls if c.layer.name == "flat")
    flat.outputs[0].shape = (None, 4, 4, 2)  # as if Flatten kept the rank
    with pytest.raises(UnsupportedError) as info:
        generate(graph)
    assert "'flat' (Flatten)" in str(info.value) and "internal" not in str(info.value)

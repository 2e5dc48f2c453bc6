"""Activations computed in place (``F.relu(x, inplace=True)``) where only they read the
value, as torchvision writes them: same outputs as Keras, gradients as out of place, and
never on a value something else still reads."""

from __future__ import annotations

import re

import keras
import numpy as np
import pytest
import torch
from applications import randomize_scaled
from keras import layers
from parity import check_source

from codegen.api import generate
from codegen.check.compare import keras_outputs, load_module_from_source


def model():
    inputs = keras.Input((9, 7, 3))
    x = layers.Conv2D(8, 3, padding="same")(inputs)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU(6.0)(x)  # after a BatchNorm: in place
    y = layers.BatchNormalization()(x)
    a = layers.ReLU()(y)
    x = layers.Add()([y, a])  # the BatchNorm's value is read twice: out of place
    x = layers.Conv2D(8, 1, activation="relu")(x)  # fused after a convolution: in place
    x = layers.Activation("sigmoid")(x)
    x = layers.ReLU()(x)  # after a sigmoid (its backward needs its result): out of place
    z = layers.Conv2D(8, 1)(x)
    x = layers.LeakyReLU(0.1)(layers.Add()([x, z]))  # after a sum: in place
    return keras.Model(inputs, x, name="acts")


@pytest.mark.parametrize("structured", [True, False])
def test_in_place_only_where_nothing_else_reads_the_value(tmp_path, structured):
    keras_model = model()
    randomize_scaled(keras_model)
    generated = generate(keras_model, structured=structured, command="x")
    path = tmp_path / "model.py"
    path.write_text(generated.source)
    check_source(generated.source, path)
    forward = generated.source.split("def forward")[-1]
    assert "F.relu6(x, inplace=True)" in forward
    assert re.search(r"F\.relu\(self\.\w+\(\w+\), inplace=True\)", forward)
    assert forward.count("inplace=True") == 3, forward  # relu6, the fused relu, leaky relu
    assert re.search(r"torch\.sigmoid\(x\)(  #[^\n]*)?\n", forward) and "torch.relu(" in forward
    net = getattr(load_module_from_source(generated.source), generated.top.name)()
    net.load_state_dict(generated.state_dict, strict=True)
    x = np.random.default_rng(0).normal(size=(2, 9, 7, 3)).astype(np.float32)
    ref = keras_outputs(keras_model, [x])[0]
    with torch.no_grad():
        got = net.eval()(torch.from_numpy(x)).numpy()
    assert np.max(np.abs(got - ref)) <= 1e-5 * max(1.0, np.max(np.abs(ref)))
    # training: autograd accepts every in-place activation, and the gradients are those of
    # the same module with every activation out of place
    out_of_place = generated.source.replace(", inplace=True", "")
    twin = getattr(load_module_from_source(out_of_place), generated.top.name)()
    twin.load_state_dict(generated.state_dict, strict=True)
    grads = []
    for module in (net.train(), twin.train()):
        module.zero_grad()
        module(torch.from_numpy(x)).square().sum().backward()
        grads.append([p.grad.clone() for p in module.parameters()])
    for ours, theirs in zip(*grads):
        assert torch.allclose(ours, theirs, rtol=1e-5, atol=1e-6)

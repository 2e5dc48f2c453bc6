"""Blocks inside blocks: a squeeze-excite inside a repeated block becomes a class of its own
(``self.se = SqueezeExcite(channels, se_channels)``), checked against Keras."""

from __future__ import annotations

import re

import keras
from keras import layers
from parity import check_parity

from codegen.api import generate


def residual_se(named: bool):
    """Residual blocks with a squeeze-excite gate inside, named as keras.applications name
    theirs (``block1_se_*``) or left to Keras's automatic names."""

    def name(block: int, what: str) -> dict:
        return {"name": f"block{block}_{what}"} if named else {}

    def block(x, index: int, width: int):
        wide = width * (2 + index)  # expansions differ: the inner block takes its widths
        y = layers.Conv2D(wide, 1, use_bias=False, **name(index, "expand"))(x)
        y = layers.BatchNormalization(**name(index, "bn"))(y)
        y = layers.Activation("swish", **name(index, "act"))(y)
        s = layers.GlobalAveragePooling2D(keepdims=True, **name(index, "se_squeeze"))(y)
        s = layers.Conv2D(wide // 4, 1, activation="relu", **name(index, "se_reduce"))(s)
        s = layers.Conv2D(wide, 1, activation="sigmoid", **name(index, "se_expand"))(s)
        y = layers.Multiply(**name(index, "se_excite"))([y, s])
        y = layers.Conv2D(width, 1, use_bias=False, **name(index, "project"))(y)
        return layers.Add(**name(index, "add"))([x, y])

    inputs = keras.Input((9, 7, 8))
    x = inputs
    for index in range(3):
        x = block(x, index, 8)
    return keras.Model(inputs, x, name="se_net")


def port(model, tmp_path) -> tuple[str, list[str]]:
    """The structured port's source and state_dict keys, checked against Keras (batch 1
    and 3, strict load, black/ruff, deterministic) by the project's parity helper."""
    _, torch_model, result = check_parity(model, tmp_path)
    return result.module_path.read_text(), list(torch_model.state_dict())


def test_named_squeeze_excite_is_a_class_inside_the_block(tmp_path):
    source, keys = port(residual_se(named=True), tmp_path)
    assert "class SqueezeExcite(nn.Module):" in source
    assert re.search(r"self\.se = SqueezeExcite\(\w+, \w+\)", source)
    assert "se_squeeze" not in re.sub(r"#.*", "", source)  # its steps live in its class
    assert any(".se.reduce.weight" in key for key in keys)
    # its class comes before the block that holds it, and once
    assert source.index("class SqueezeExcite") < source.index("class Block")
    assert source.count("class SqueezeExcite") == 1


def test_unnamed_gate_is_found_from_its_structure(tmp_path):
    source, keys = port(residual_se(named=False), tmp_path)
    assert "class Gate(nn.Module):" in source
    assert re.search(r"self\.gate = Gate\(", source)
    assert any(".gate." in key for key in keys)
    # roles are counted within each class: the gate's convolutions and the block's own
    gate = source[source.index("class Gate") : source.index("class Block")]
    block = source[source.index("class Block") :]
    assert "self.conv1 = " in gate and "self.conv2 = " in gate and "conv3" not in gate
    assert "self.conv2 = " in block and "conv4" not in block


def test_flat_form_keeps_every_layer():
    model = residual_se(named=True)
    source = generate(model, structured=False, command="x").source
    assert "SqueezeExcite" not in source and "self.block1_se_reduce" in source

"""The weights file is streamed into place (never held in memory as bytes) and still never
clobbers a different one, nor is rewritten when identical."""

import keras
import pytest
import torch
from keras import layers

import codegen
from codegen.errors import InputError


@pytest.fixture(scope="module")
def model():
    return keras.Sequential(
        [
            keras.Input((6, 6, 2)),
            layers.Conv2D(3, 3, name="conv"),
            layers.Flatten(),
            layers.Dense(2, name="head"),
        ],
        name="small",
    )


def test_weights_written_kept_and_refused(model, tmp_path):
    first = codegen.convert(model, tmp_path)
    assert first.written
    state = torch.load(first.weights_path, weights_only=True)
    kernel = model.layers[0].kernel.numpy()
    assert torch.equal(state["conv.weight"], torch.from_numpy(kernel).permute(3, 2, 0, 1))
    # The same weights again: nothing to write.
    assert not codegen.convert(model, tmp_path).written
    # Other weights: refused without force, written with it.
    model.layers[0].kernel.assign(kernel + 1.0)
    with pytest.raises(InputError, match="model.pt"):
        codegen.convert(model, tmp_path)
    assert torch.equal(
        torch.load(first.weights_path, weights_only=True)["conv.weight"], state["conv.weight"]
    )
    assert codegen.convert(model, tmp_path, force=True).written
    again = torch.load(first.weights_path, weights_only=True)["conv.weight"]
    assert torch.equal(again, state["conv.weight"] + 1.0)

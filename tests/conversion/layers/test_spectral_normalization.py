"""SpectralNormalization: the wrapped layer with its stored kernel; in training mode the
power iteration Keras runs first (its kernel and vector updated as Keras updates them)."""

import keras
import numpy as np
import pytest
import torch
from keras import layers
from parity import check_parity

import codegen
from codegen.api import generate


def _model(inner, shape, dtype="float32"):
    inp = keras.Input(shape, dtype=dtype)
    return keras.Model(inp, layers.SpectralNormalization(inner, power_iterations=2, name="sn")(inp))


CASES = [
    (lambda: layers.Dense(5, activation="relu"), (4,)),
    (lambda: layers.Conv2D(4, 3, padding="same"), (7, 6, 3)),
    (lambda: layers.Conv1D(3, 2, use_bias=False), (9, 2)),
    (lambda: layers.Conv2DTranspose(3, 3, strides=2), (5, 4, 2)),
]


@pytest.mark.parametrize("case", range(len(CASES)))
def test_inference(tmp_path, case):
    make, shape = CASES[case]
    _, _, result = check_parity(_model(make(), shape), tmp_path)
    assert "spectral_normalize(" in result.module_path.read_text()


@pytest.mark.parametrize("case", [0, 1, 3])
def test_training_step_updates_as_keras(tmp_path, case):
    make, shape = CASES[case]
    model = _model(make(), shape)
    _, net, result = check_parity(model, tmp_path)
    x = np.random.default_rng(3).standard_normal((2, *shape)).astype("float32")
    expected = np.asarray(model(x, training=True))  # normalises and keeps its kernel
    net.train()
    perm, out_perm = result.input_perms[0], result.output_perms[0]
    with torch.no_grad():
        got = net(torch.from_numpy(x).permute(*perm))
    inverse = [out_perm.index(k) for k in range(len(out_perm))]
    got = got.permute(*inverse).numpy()
    assert np.max(np.abs(got - expected)) <= 1e-5 * max(1.0, float(np.max(np.abs(expected))))
    net.eval()  # the kept kernel: the same outputs as Keras in inference afterwards
    with torch.no_grad():
        again = net(torch.from_numpy(x).permute(*perm)).permute(*inverse).numpy()
    expected = np.asarray(model(x, training=False))
    assert np.max(np.abs(again - expected)) <= 1e-5 * max(1.0, float(np.max(np.abs(expected))))


def test_embedding(tmp_path):
    # Keras casts the output to the input's dtype: the vectors become the ids' integers.
    ids = np.array([[1, 2, 3], [4, 0, 9]], dtype="int32")
    check_parity(_model(layers.Embedding(10, 4), (3,), "int32"), tmp_path, inputs=[ids])


def test_unsupported_inner_layer_is_named():
    with pytest.raises(codegen.UnsupportedError, match="a wrapped DepthwiseConv2D"):
        generate(_model(layers.DepthwiseConv2D(3), (6, 6, 2)), command="x")

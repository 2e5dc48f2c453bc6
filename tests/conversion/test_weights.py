"""The named weight transforms against torch's own layouts."""

import numpy as np
import torch
import torch.nn.functional as F

from codegen.conversion import weights as W


def test_dense_kernel():
    w = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    x = np.random.default_rng(1).normal(size=(2, 5)).astype(np.float32)
    out = F.linear(torch.from_numpy(x), torch.from_numpy(W.dense_kernel(w).copy()))
    np.testing.assert_allclose(out.numpy(), x @ w, rtol=1e-5, atol=1e-6)


def test_depthwise_kernel_channel_order():
    w = np.arange(3 * 3 * 2 * 4, dtype=np.float32).reshape(3, 3, 2, 4)  # (k, k, in, mult)
    t = W.depthwise_kernel(w)
    assert t.shape == (8, 1, 3, 3)
    for c in range(2):
        for m in range(4):
            np.testing.assert_array_equal(t[c * 4 + m, 0], w[:, :, c, m])


def test_conv_kernels():
    w = np.zeros((3, 5, 2, 7), np.float32)
    assert W.conv_kernel(w).shape == (7, 2, 3, 5)
    assert W.conv_transpose_kernel(w).shape == (7, 2, 3, 5)
    assert W.dense_as_conv_kernel(np.zeros((4, 6), np.float32), 2).shape == (6, 4, 1, 1)


def test_reorder_rows():
    w = np.arange(6, dtype=np.float32).reshape(3, 2)
    np.testing.assert_array_equal(W.reorder_rows(w, [2, 0, 1]), w[[2, 0, 1]])

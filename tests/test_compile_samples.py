"""Every committed sample under torch.export and torch.compile(fullgraph=True): no graph
breaks, the same outputs as eager, and the batch size free to change at run time."""

import pytest
import torch
from sample_ports import SAMPLES, sample_inputs, sample_module

# Masked RNNs run packed (nn.utils.rnn.pack_padded_sequence): lengths taken from the data,
# which torch.export and fullgraph compilation cannot trace. Known gap, see RESULTS.md.
PACKED = pytest.mark.xfail(reason="pack_padded_sequence is data-dependent", strict=True)


def _cases():
    return [pytest.param(n, marks=PACKED) if n == "text_classifier" else n for n in SAMPLES]


def _batch(inputs, size):
    return [torch.cat([x] * (size // x.shape[0] + 1))[:size] for x in inputs]


def _close(got, want):
    gots = got if isinstance(got, (tuple, list)) else (got,)
    wants = want if isinstance(want, (tuple, list)) else (want,)
    for g, w in zip(gots, wants):
        torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-5 * max(1.0, float(w.abs().max())))


@pytest.mark.slow
@pytest.mark.parametrize("name", _cases())
def test_sample_exports_with_a_dynamic_batch(name):
    net = sample_module(name)
    inputs = sample_inputs(name, torch.float32)
    dynamic = tuple({0: torch.export.Dim.AUTO} for _ in inputs)
    with torch.no_grad():
        exported = torch.export.export(net, tuple(inputs), dynamic_shapes=dynamic).module()
        for size in (2, 5):
            batch = _batch(inputs, size)
            _close(exported(*batch), net(*batch))


@pytest.mark.slow
@pytest.mark.parametrize("name", _cases())
def test_sample_compiles_without_graph_breaks(name):
    net = sample_module(name)
    inputs = sample_inputs(name, torch.float32)
    # Dynamo refuses nn.LSTM/nn.GRU (a graph break) unless asked to trace them.
    with torch._dynamo.config.patch(allow_rnn=True), torch.no_grad():
        compiled = torch.compile(net, fullgraph=True, dynamic=True)
        for size in (2, 5):
            batch = _batch(inputs, size)
            _close(compiled(*batch), net(*batch))


@pytest.mark.parametrize("name", ["bn_conv", "small_resnet", "mnist_cnn"])
def test_sample_folds_batchnorm_for_inference_with_torch_fx(name):
    """The generated code traces with torch.fx, so the usual inference folding of Conv +
    BatchNorm (what TensorFlow's graph does for predict_on_batch; benchmarks/RESULTS.md)
    applies to it and computes the same outputs."""
    from torch.fx.experimental.optimization import fuse

    net = sample_module(name)
    inputs = sample_inputs(name, torch.float32)
    fused = fuse(net)
    with torch.no_grad():
        _close(fused(*inputs), net(*inputs))
    if name == "small_resnet":  # every BatchNorm follows a convolution: all folded
        assert any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())
        assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())

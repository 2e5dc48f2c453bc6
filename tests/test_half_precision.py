"""Generated modules run in half precision: after ``.to(torch.bfloat16)`` or ``.half()``
every tensor ``forward`` computes has that dtype (none is made in float32 on the way)."""

import pytest
import torch
from sample_ports import SAMPLES, sample_inputs, sample_module
from torch.utils._python_dispatch import TorchDispatchMode


class FloatDtypes(TorchDispatchMode):
    """Records the dtype of every floating-point tensor an operation returns."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: dict[torch.dtype, set[str]] = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for value in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(value, torch.Tensor) and value.is_floating_point():
                self.seen.setdefault(value.dtype, set()).add(str(func))
        return out


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("name", SAMPLES)
def test_sample_runs_in_half_precision(name, dtype):
    net = sample_module(name)
    # The same weights in float32 first: the half-precision run must compute the same thing.
    with torch.inference_mode():
        reference = net(*sample_inputs(name, torch.float32))
    half = net.to(dtype)
    inputs = sample_inputs(name, dtype)
    recorder = FloatDtypes()
    with torch.inference_mode(), recorder:
        out = half(*inputs)
    assert set(recorder.seen) == {dtype}, {str(d): sorted(f) for d, f in recorder.seen.items()}
    outs = out if isinstance(out, (tuple, list)) else (out,)
    refs = reference if isinstance(reference, (tuple, list)) else (reference,)
    for got, ref in zip(outs, refs):
        assert got.dtype == dtype
        # Half precision keeps 8 (bf16) or 11 (fp16) bits of mantissa: agreement to a few
        # per cent of the output's scale shows the same function, not float32 parity.
        scale = max(1.0, float(ref.abs().max()))
        assert float((got.float() - ref).abs().max()) <= 0.1 * scale

"""Generated modules run in half precision: after ``.to(torch.bfloat16)`` or ``.half()``
every tensor ``forward`` computes has that dtype (none is made in float32 on the way)."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "samples"))

import build_samples

from codegen.check.compare import load_module_from_file
from codegen.read.paths import read_path


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


def _inputs(name: str, dtype: torch.dtype) -> list[torch.Tensor]:
    given = build_samples.sample_inputs(name, 2)
    if given is not None:
        return [torch.from_numpy(x) for x in given]
    graph, _, _ = read_path(build_samples.model_path(name), "file")
    rng = np.random.default_rng(0)
    tensors = []
    for tensor in graph.inputs:
        shape = [2] + [8 if d is None else int(d) for d in tensor.shape[1:]]
        tensors.append(torch.from_numpy(rng.standard_normal(shape).astype(np.float32)).to(dtype))
    return tensors


def _sample(name: str) -> torch.nn.Module:
    module = load_module_from_file(ROOT / "samples" / name / "model.py")
    classes = [v for v in vars(module).values() if isinstance(v, type)]
    top = [c for c in classes if issubclass(c, torch.nn.Module) and c.__module__ == module.__name__]
    torch.manual_seed(0)
    return top[-1]().eval()


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("name", sorted(build_samples.BUILDERS))
def test_sample_runs_in_half_precision(name, dtype):
    net = _sample(name)
    # The same weights in float32 first: the half-precision run must compute the same thing.
    with torch.inference_mode():
        reference = net(*_inputs(name, torch.float32))
    half = net.to(dtype)
    inputs = _inputs(name, dtype)
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

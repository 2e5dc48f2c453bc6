"""The committed sample ports, loaded from samples/<name>/model.py with default weights, and
inputs that suit each (read from the .keras file without TensorFlow)."""

import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "samples"))

import build_samples

from codegen.check.compare import load_module_from_file
from codegen.read.paths import read_path

SAMPLES = sorted(build_samples.BUILDERS)


def sample_inputs(name: str, dtype: torch.dtype) -> list[torch.Tensor]:
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


def sample_module(name: str) -> torch.nn.Module:
    module = load_module_from_file(ROOT / "samples" / name / "model.py")
    classes = [v for v in vars(module).values() if isinstance(v, type)]
    top = [c for c in classes if issubclass(c, torch.nn.Module) and c.__module__ == module.__name__]
    torch.manual_seed(0)
    return top[-1]().eval()

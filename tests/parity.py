"""The shared test harness: convert a real Keras model and prove the port.

``check_parity`` randomizes every Keras variable (BatchNorm statistics included), converts,
checks the generated file (black, ruff, no keras/tensorflow import, deterministic), loads the
state_dict with ``strict=True`` from disk, compares parameter counts and outputs.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import black
import numpy as np
import torch

import codegen
from codegen.api import generate
from codegen.check.compare import keras_outputs, load_module_from_file

RUFF = [sys.executable, "-m", "ruff"]


def randomize(model, seed: int = 0, scale: float = 0.5) -> None:
    """Give every variable random values; variances stay positive, BN stats non-default."""
    rng = np.random.default_rng(seed)
    for var in model.weights:
        shape = tuple(var.shape)
        dtype = str(var.dtype)
        if "int" in dtype or "bool" in dtype:
            continue
        name = var.path.rsplit("/", 1)[-1]
        if "variance" in name:
            value = rng.uniform(0.5, 1.5, size=shape)
        elif name in ("gamma", "moving_mean", "mean"):
            value = (
                rng.uniform(0.5, 1.5, size=shape) if name == "gamma" else rng.normal(0, 0.5, shape)
            )
        else:
            value = rng.normal(0.0, scale, size=shape)
        var.assign(value.astype(np.float32))


def random_inputs(model, batch: int, seed: int = 1, spatial: int = 17) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    arrays = []
    for tensor in model.inputs:
        shape = [batch] + [spatial if d is None else d for d in tensor.shape[1:]]
        if "int" in str(tensor.dtype):
            arrays.append(rng.integers(0, 10, size=shape).astype(str(tensor.dtype)))
        else:
            arrays.append(rng.standard_normal(shape).astype(np.float32))
    return arrays


def check_source(source: str, path: Path) -> None:
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        else:
            continue
        for name in names:
            assert name.split(".")[0] not in ("keras", "tensorflow", "tf_keras"), name
    assert black.format_str(source, mode=black.Mode()) == source, "not black-formatted"
    ruff = subprocess.run(
        [*RUFF, "check", "--no-cache", "--isolated", str(path)], capture_output=True, text=True
    )
    assert ruff.returncode == 0, ruff.stdout + ruff.stderr


def to_torch(array: np.ndarray, perm) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array)).permute(*perm)


def from_torch(tensor: torch.Tensor, perm) -> np.ndarray:
    inverse = [perm.index(i) for i in range(len(perm))]
    return tensor.permute(*inverse).detach().numpy()


def check_parity(
    model,
    tmp_path: Path,
    *,
    batch_sizes=(1, 3),
    tol: float = 1e-5,
    channels_first: bool = False,
    randomize_weights: bool = True,
    inputs=None,
    spatial: int = 17,
    training: bool = False,
    seed: int = 0,
):
    """Convert ``model`` and assert the port matches Keras; returns (module, torch model, result)."""
    if randomize_weights:
        randomize(model, seed)
    out_dir = Path(tmp_path) / f"port_{model.name}"
    result = codegen.convert(model, out_dir, channels_first=channels_first, force=True)
    source = result.module_path.read_text()
    check_source(source, result.module_path)
    again = generate(model, channels_first=channels_first, command="x").source
    generated = generate(model, channels_first=channels_first, command="x")
    assert again == generated.source, "generation is not deterministic"

    module = load_module_from_file(result.module_path)
    torch_model = getattr(module, result.class_name)()
    state = torch.load(result.weights_path, weights_only=True)
    torch_model.load_state_dict(state, strict=True)
    # Entries with no Keras variable behind them (num_batches_tracked, an LSTM's zero
    # bias_hh) are torch's own.
    torch_only = {w.key for w in generated.top.weights if not w.keras_variable}
    n_torch = sum(v.numel() for k, v in state.items() if k not in torch_only)
    assert n_torch == model.count_params(), (n_torch, model.count_params())
    torch_model.train(training)

    cases = (
        [inputs]
        if inputs is not None
        else [random_inputs(model, b, seed=seed + b, spatial=spatial) for b in batch_sizes]
    )
    for arrays in cases:
        expected = keras_outputs(model, arrays, training=training)
        with torch.no_grad():
            got = torch_model(*[to_torch(a, p) for a, p in zip(arrays, result.input_perms)])
        if isinstance(got, dict):  # Keras dict outputs, in the model's output order
            got = list(got.values())
        if not isinstance(got, (tuple, list)):
            got = [got]
        assert len(got) == len(expected)
        for i, (ref, out) in enumerate(zip(expected, got)):
            out = from_torch(out, result.output_perms[i])
            assert out.shape == ref.shape, (i, out.shape, ref.shape)
            delta = float(np.max(np.abs(out.astype(np.float64) - ref))) if ref.size else 0.0
            bound = tol * max(1.0, float(np.max(np.abs(ref)))) if ref.size else tol
            assert delta <= bound, f"output {i}: max |delta| {delta:.3g} > {bound:.3g}"
    return module, torch_model, result

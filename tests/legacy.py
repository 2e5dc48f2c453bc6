"""Building tf.keras (Keras 2) model files at test time and checking their ports.

``tf_keras`` (Keras 2.21) writes ``.h5`` files the way tf.keras 2.x did: configs with
``TFOpLambda`` nodes, ``batch_input_shape``, nested-list ``inbound_nodes``. Ports read by the
TensorFlow-free file reader are compared with the tf-keras model's own outputs.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from parity import check_source

import codegen
from codegen.check.compare import load_module_from_file


def tf_keras():
    return pytest.importorskip("tf_keras")


def randomize(model, seed: int = 0) -> None:
    """Random weights; BatchNorm variances and gammas positive."""
    rng = np.random.default_rng(seed)
    values = []
    for weight in model.weights:
        name = weight.name
        if "variance" in name or "gamma" in name:
            value = rng.uniform(0.5, 1.5, weight.shape)
        else:
            value = rng.normal(0.0, 0.5, weight.shape)
        values.append(value.astype(weight.dtype.as_numpy_dtype))
    model.set_weights(values)


def save(model, path: Path, randomized: bool = True) -> Path:
    if randomized:
        randomize(model)
    model.save(str(path))
    return path


def rewrite_config(source: Path, target: Path, edit, keras_version: str | None = None) -> Path:
    """A copy of an .h5 model file with its model_config edited (an older Keras's format)."""
    import h5py

    shutil.copy(source, target)
    with h5py.File(target, "r+") as f:
        config = json.loads(f.attrs["model_config"])
        f.attrs["model_config"] = json.dumps(edit(config)).encode()
        if keras_version is not None:
            f.attrs["keras_version"] = keras_version.encode()
    return target


def random_inputs(model, batch: int, seed: int = 1, size: int = 7) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    arrays = []
    for tensor in model.inputs:
        shape = [batch] + [size if d is None else d for d in tensor.shape[1:]]
        if tensor.dtype.is_integer:
            arrays.append(rng.integers(0, 10, size=shape).astype(tensor.dtype.as_numpy_dtype))
        else:
            arrays.append(rng.standard_normal(shape).astype(np.float32))
    return arrays


def outputs_of(model, arrays: list[np.ndarray]) -> list[np.ndarray]:
    result = model(arrays if len(arrays) > 1 else arrays[0], training=False)
    if isinstance(result, dict):
        result = [result[k] for k in sorted(result)]
    if not isinstance(result, (list, tuple)):
        result = [result]
    return [np.asarray(r) for r in result]


def check_file_port(
    model,
    path: Path,
    tmp_path: Path,
    *,
    inputs=None,
    tol: float = 1e-5,
    batch_sizes=(1, 3),
    source_checks: bool = False,
    dtypes: bool = False,
):
    """Convert ``path`` with the file reader and compare with ``model`` (tf-keras); with
    ``dtypes``, each output's dtype too."""
    out = tmp_path / f"port_{path.stem}"
    result = codegen.convert(path, out, reader="file", force=True)
    assert result.reader == "file"
    if source_checks:
        check_source(result.module_path.read_text(), result.module_path)
    module = load_module_from_file(result.module_path)
    net = getattr(module, result.class_name)()
    net.load_state_dict(torch.load(result.weights_path, weights_only=True), strict=True)
    net.eval()
    for batch in batch_sizes:
        arrays = inputs(batch) if inputs is not None else random_inputs(model, batch)
        expected = outputs_of(model, arrays)
        with torch.no_grad():
            got = net(
                *[torch.from_numpy(a).permute(*p) for a, p in zip(arrays, result.input_perms)]
            )
        got = list(got) if isinstance(got, (list, tuple)) else [got]
        assert len(got) == len(expected)
        for i, (ref, out_tensor) in enumerate(zip(expected, got)):
            perm = result.output_perms[i]
            inverse = [perm.index(k) for k in range(len(perm))]
            value = out_tensor.permute(*inverse).numpy()
            assert value.shape == ref.shape, (i, value.shape, ref.shape)
            if dtypes:
                assert value.dtype == ref.dtype, (i, value.dtype, ref.dtype)
            delta = float(np.max(np.abs(value.astype(np.float64) - ref))) if ref.size else 0.0
            bound = tol * max(1.0, float(np.max(np.abs(ref)))) if ref.size else tol
            assert (
                delta <= bound
            ), f"output {i} (batch {batch}): max |delta| {delta:.3g} > {bound:.3g}"
    return result

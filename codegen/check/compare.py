"""Numerical parity: run Keras and the generated module on the same inputs and compare."""

from __future__ import annotations

import importlib.util
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from codegen.ir.layout import Layout, permute_between

DEFAULT_SPATIAL = 37  # odd on purpose: exercises TensorFlow's asymmetric 'same' padding
DEFAULT_TOLERANCE = 1e-4


@dataclass
class OutputError:
    name: str
    max_abs: float
    max_rel: float  # max |delta| / max(1, max |reference|)
    passed: bool


def load_module_from_source(source: str, name: str = "keras2torch_generated") -> types.ModuleType:
    module = types.ModuleType(name)
    module.__file__ = f"<{name}>"
    exec(compile(source, module.__file__, "exec"), module.__dict__)
    return module


def load_module_from_file(path: str | Path, name: str | None = None) -> types.ModuleType:
    path = Path(path)
    name = name or f"keras2torch_generated_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def sample_inputs(shapes, dtypes, batch: int = 2, seed: int = 0, spatial: int = DEFAULT_SPATIAL):
    """Random inputs in Keras layout: None dims become ``spatial``; ints stay small."""
    rng = np.random.default_rng(seed)
    arrays = []
    for shape, dtype in zip(shapes, dtypes):
        concrete = [batch] + [spatial if d is None else d for d in shape[1:]]
        if "int" in dtype:
            arrays.append(rng.integers(0, 10, size=concrete).astype(dtype))
        else:
            arrays.append(rng.standard_normal(concrete).astype(np.float32))
    return arrays


def keras_outputs(model: Any, inputs: list[np.ndarray], training: bool = False) -> list[np.ndarray]:
    result = model(keras_call_inputs(model, inputs), training=training)
    if isinstance(result, dict):
        result = [result[k] for k in sorted(result)]
    if not isinstance(result, (list, tuple)):
        result = [result]
    return [np.asarray(r) for r in result]


def keras_call_inputs(model: Any, inputs: list[np.ndarray]) -> Any:
    """What to call ``model`` with: arrays in the order of ``model.inputs``, as the dict a
    model with dict inputs wants (Keras flattens it by sorted key), else a list or one array."""
    struct = getattr(getattr(model, "_functional", None) or model, "_inputs_struct", None)
    if isinstance(struct, dict) and len(struct) == len(inputs):
        return dict(zip(sorted(struct), inputs))
    return inputs if len(inputs) > 1 else inputs[0]


def torch_outputs(
    module: Any,
    inputs: list[np.ndarray],
    input_layouts: list[Layout],
    output_layouts: list[Layout],
) -> list[np.ndarray]:
    """Run the module on Keras-layout arrays; return Keras-layout arrays."""
    import torch

    tensors = []
    for array, layout in zip(inputs, input_layouts):
        tensor = torch.from_numpy(np.ascontiguousarray(array))
        if not layout.is_keras_order:
            tensor = tensor.permute(layout.perm)
        tensors.append(tensor)
    with torch.no_grad():
        result = module(*tensors)
    if isinstance(result, dict):  # Keras dict outputs, in the model's output order
        result = list(result.values())
    if not isinstance(result, (list, tuple)):
        result = [result]
    outs = []
    for tensor, layout in zip(result, output_layouts):
        if not layout.is_keras_order:
            keras = Layout(tuple(range(layout.rank)))
            tensor = tensor.permute(permute_between(layout, keras))
        outs.append(tensor.detach().cpu().numpy())
    return outs


def compare(names, expected, actual, tolerance: float = DEFAULT_TOLERANCE) -> list[OutputError]:
    errors = []
    for name, ref, got in zip(names, expected, actual):
        if ref.shape != got.shape:
            errors.append(OutputError(name, float("inf"), float("inf"), False))
            continue
        ref64 = ref.astype(np.float64)
        delta = float(np.max(np.abs(ref64 - got.astype(np.float64)))) if ref.size else 0.0
        scale = max(1.0, float(np.max(np.abs(ref64)))) if ref.size else 1.0
        rel = delta / scale
        errors.append(OutputError(name, delta, rel, bool(rel <= tolerance)))
    return errors

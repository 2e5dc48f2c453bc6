"""Where every weight went: the parameter counts and the weight manifest.

In: the Keras model, the generated top-level :class:`ClassModel` with its weight entries, the
conversion session (nested models), and the loaded torch module with its ``state_dict``.
Out: :class:`ParamCounts` (Keras's trainable/non-trainable counts against torch's) and one
:class:`ManifestRow` per ``state_dict`` entry (which Keras variable it holds, and how it was
transformed), plus the Keras variables no entry holds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from codegen.conversion.model import ClassModel
from codegen.ir.graph import Graph

# How the manifest describes each weight transform (the engine's transform names).
TRANSFORM_NOTES = {
    "identity": "copied as is",
    "dense_kernel": "transposed (in, out) → (out, in)",
    "conv_kernel": "transposed (k…, in, out) → (out, in, k…)",
    "conv_transpose_kernel": "transposed (k…, out, in) → (in, out, k…)",
    "depthwise_kernel": "reshaped (k…, in, mult) → (in·mult, 1, k…)",
    "dense_as_conv_kernel": "transposed and reshaped into a 1×1 convolution kernel",
    "torch counter": "torch's own counter; Keras has no such variable",
}


@dataclass
class ParamCounts:
    keras_trainable: int
    keras_non_trainable: int
    torch_trainable: int  # nn.Parameters with requires_grad that hold a Keras variable
    torch_non_trainable: int  # buffers and frozen parameters that hold a Keras variable
    torch_only: int  # entries with no Keras variable behind them (num_batches_tracked, ...)
    frozen_as_trainable: list[str] = field(default_factory=list)  # state_dict keys

    @property
    def total_ok(self) -> bool:
        keras = self.keras_trainable + self.keras_non_trainable
        return keras == self.torch_trainable + self.torch_non_trainable

    @property
    def split_ok(self) -> bool:
        return self.total_ok and self.keras_trainable == self.torch_trainable


@dataclass
class ManifestRow:
    keras_path: str  # "" for torch-only entries
    keras_shape: tuple | None
    key: str
    torch_shape: tuple
    transform: str
    trainable: bool


def param_counts(model: Any, top: ClassModel, torch_module: Any, state_dict) -> ParamCounts:
    keras_trainable = sum(int(np.prod(v.shape)) for v in model.trainable_weights)
    keras_non = sum(int(np.prod(v.shape)) for v in model.non_trainable_weights)
    torch_only_keys = {w.key for w in top.weights if not w.keras_variable}
    keras_frozen = {w.key for w in top.weights if w.keras_variable and not w.trainable}
    params = dict(torch_module.named_parameters()) if torch_module is not None else {}
    trainable = non = only = 0
    frozen_as_trainable = []
    for key, tensor in state_dict.items():
        n = int(tensor.numel())
        if key in torch_only_keys:
            only += n
        elif key in params and params[key].requires_grad:
            trainable += n
            if key in keras_frozen:
                frozen_as_trainable.append(key)
        else:
            non += n
    return ParamCounts(keras_trainable, keras_non, trainable, non, only, frozen_as_trainable)


def weight_manifest(top: ClassModel, session: Any) -> tuple[list[ManifestRow], list[str]]:
    rows = []
    used: set[tuple[int, str]] = set()
    for entry in top.weights:
        if not entry.keras_variable:
            rows.append(
                ManifestRow("", None, entry.key, tuple(entry.array.shape), entry.transform, False)
            )
            continue
        found = _locate(top.graph, session, entry.keras_layer, entry.keras_variable, entry.key)
        if found is None:
            path, shape = f"{entry.keras_layer}/{entry.keras_variable}", None
        else:
            path, layer = found
            shape = tuple(np.shape(layer.weights[entry.keras_variable]))
            used.add((id(layer), entry.keras_variable))
        rows.append(
            ManifestRow(
                path, shape, entry.key, tuple(entry.array.shape), entry.transform, entry.trainable
            )
        )
    unmapped = []
    for path, layer, name in _all_variables(top.graph):
        if (id(layer), name) not in used:
            unmapped.append(path)
    return rows, unmapped


def _locate(graph: Graph, session: Any, layer_name: str, variable: str, key: str, prefix: str = ""):
    for layer in graph.layers:
        if layer.subgraph is None and layer.name == layer_name and variable in layer.weights:
            return f"{prefix}{layer.name}/{variable}", layer
    for layer in graph.layers:
        sub = session.submodels.get(id(layer)) if layer.subgraph is not None else None
        if sub is None:
            continue
        for w in sub.weights:
            if (
                key.endswith("." + w.key)
                and w.keras_layer == layer_name
                and w.keras_variable == variable
            ):
                found = _locate(
                    layer.subgraph, session, layer_name, variable, w.key, f"{prefix}{layer.name}/"
                )
                if found is not None:
                    return found
    return None


def _all_variables(graph: Graph, prefix: str = ""):
    for layer in graph.layers:
        if layer.subgraph is not None:
            yield from _all_variables(layer.subgraph, f"{prefix}{layer.name}/")
        else:
            for name in layer.weights:
                yield f"{prefix}{layer.name}/{name}", layer, name


def regularization_check(model: Any, torch_module: Any) -> tuple[float, float] | None:
    """Keras's weight penalties (``sum(model.losses)``) and the port's
    ``regularization_loss()``, on the same weights; None when the port has no such method."""
    method = getattr(torch_module, "regularization_loss", None)
    if method is None:
        return None
    keras_total = float(sum(float(np.asarray(loss)) for loss in model.losses))
    return keras_total, float(method().detach())

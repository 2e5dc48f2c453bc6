"""Comparing the Graph the file reader makes with the one read_keras makes from Keras."""

from __future__ import annotations

import re

import numpy as np
import torch

# Keras names operations it adds itself (a mask's not_equal) and unnamed variables by
# process-wide counters: "not_equal_5", "variable_18" depend on what ran before.
_COUNTER = re.compile(r"_\d+$")


def _norm(value):
    if isinstance(value, (list, tuple)):
        return [_norm(x) for x in value]
    if isinstance(value, dict):
        return {k: _norm(x) for k, x in value.items()}
    if isinstance(value, np.ndarray):
        return ("array", value.tolist())
    return value


def _layer_name(layer) -> str:
    return _COUNTER.sub("", layer.name) if layer.is_op else layer.name


def _weight_key(key: str) -> str:
    return _COUNTER.sub("", key) if key.rsplit("/", 1)[-1].startswith("variable") else key


def compare_graphs(a, b, path: str = "", configs: bool = True) -> list[str]:
    """Differences between two Graphs (empty when they are the same model, call by call)."""
    diffs: list[str] = []
    if (a.name, a.class_name, a.input_names) != (b.name, b.class_name, b.input_names):
        diffs.append(
            f"{path} header {(a.name, a.class_name, a.input_names)} != {(b.name, b.class_name, b.input_names)}"
        )
    if len(a.calls) != len(b.calls):
        names_a = [c.layer.name for c in a.calls]
        names_b = [c.layer.name for c in b.calls]
        return diffs + [f"{path}: {len(a.calls)} calls {names_a} != {len(b.calls)} calls {names_b}"]
    ids_a: dict[int, int] = {}
    ids_b: dict[int, int] = {}

    def describe(ids, tensors):
        return [
            (ids.setdefault(id(t), len(ids)), tuple(t.shape), t.dtype, t.masked) for t in tensors
        ]

    describe(ids_a, a.inputs)
    describe(ids_b, b.inputs)
    for ca, cb in zip(a.calls, b.calls):
        la, lb = ca.layer, cb.layer
        where = f"{path}/{la.name}"
        head_a = (_layer_name(la), la.class_name, la.is_op, ca.index)
        head_b = (_layer_name(lb), lb.class_name, lb.is_op, cb.index)
        if head_a != head_b:
            diffs.append(f"{where}: {head_a} != {head_b}")
            continue
        if _norm(ca.args) != _norm(cb.args):
            diffs.append(f"{where}: args {ca.args} != {cb.args}")
        if _norm(ca.kwargs) != _norm(cb.kwargs):
            diffs.append(f"{where}: kwargs {ca.kwargs} != {cb.kwargs}")
        if describe(ids_a, ca.inputs) != describe(ids_b, cb.inputs):
            diffs.append(
                f"{where}: inputs {describe(ids_a, ca.inputs)} != {describe(ids_b, cb.inputs)}"
            )
        if describe(ids_a, ca.outputs) != describe(ids_b, cb.outputs):
            diffs.append(
                f"{where}: outputs {describe(ids_a, ca.outputs)} != {describe(ids_b, cb.outputs)}"
            )
        if ca.index:
            continue
        if configs and not la.is_op:
            # A wrapped model's config is compared as the graph read from it, below.
            skip = {"name", "layer"} if getattr(la, "wrapped", None) is not None else {"name"}
            config_a = {k: v for k, v in la.config.items() if k not in skip}
            config_b = {k: v for k, v in lb.config.items() if k not in skip}
            if _norm(config_a) != _norm(config_b):
                keys = {
                    k
                    for k in set(config_a) | set(config_b)
                    if _norm(config_a.get(k)) != _norm(config_b.get(k))
                }
                diffs.append(
                    f"{where}: config {[(k, config_a.get(k), config_b.get(k)) for k in sorted(keys)]}"
                )
        weights_a = {_weight_key(k): v for k, v in la.weights.items()}
        weights_b = {_weight_key(k): v for k, v in lb.weights.items()}
        if sorted(weights_a) != sorted(weights_b):
            diffs.append(f"{where}: variables {sorted(la.weights)} != {sorted(lb.weights)}")
        else:
            for key, value in weights_a.items():
                if value.shape != weights_b[key].shape or not np.array_equal(value, weights_b[key]):
                    diffs.append(f"{where}: variable {key} differs")
            trainable_a = {_weight_key(k): v for k, v in la.trainable.items()}
            trainable_b = {_weight_key(k): v for k, v in lb.trainable.items()}
            if trainable_a != trainable_b:
                diffs.append(f"{where}: trainable {la.trainable} != {lb.trainable}")
        if (la.subgraph is None) != (lb.subgraph is None):
            diffs.append(f"{where}: a nested model on one side only")
        elif la.subgraph is not None:
            diffs += compare_graphs(la.subgraph, lb.subgraph, where, configs)
        wrapped_a, wrapped_b = getattr(la, "wrapped", None), getattr(lb, "wrapped", None)
        if (wrapped_a is None) != (wrapped_b is None):
            diffs.append(f"{where}: a wrapped model on one side only")
        elif wrapped_a is not None:
            diffs += compare_graphs(wrapped_a, wrapped_b, where, configs)
    if describe(ids_a, a.outputs) != describe(ids_b, b.outputs):
        diffs.append(f"{path} outputs differ")
    return diffs


def same_port(graph_a, graph_b) -> tuple[bool, bool]:
    """(same model.py, same state_dict) generated from the two graphs."""
    from codegen.api import generate

    a = generate(graph_a, command="x", source="s")
    b = generate(graph_b, command="x", source="s")
    same_source = _mask_ops(a.source) == _mask_ops(b.source)
    same_state = list(a.state_dict) == list(b.state_dict) and all(
        torch.equal(a.state_dict[k], b.state_dict[k]) for k in a.state_dict
    )
    return same_source, same_state


def _mask_ops(source: str) -> str:
    """Source with the counters of the mask operations Keras names itself removed."""
    return re.sub(r"\b(not_equal|any)_\d+\b", r"\1", source)

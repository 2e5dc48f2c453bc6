"""Probing Keras: the reference values every layer call and the whole model produce.

In: the Keras model, the :class:`Graph` read from it and the random inputs (Keras layout).
Out: which Keras model each (nested) graph was read from (:func:`keras_models`), Keras's value
of every call output, ``id(graph tensor) -> array`` (:func:`keras_values`, from one
``keras.Model`` over the same graph whose outputs are all intermediate tensors), the final
outputs (:func:`keras_final_outputs`), and the layers whose training-mode output is random
(:func:`stochastic_layers`). Training-mode calls leave the model's state as they found it.
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np

from codegen.ir.graph import Graph, Tensor
from codegen.read.keras_import import import_keras

# Layers whose training-mode output is random: training-mode parity is not checked for them.
from codegen.read.layers import STOCHASTIC_LAYERS

from .compare import keras_outputs

_DROPOUT_KEYS = ("dropout", "recurrent_dropout", "attention_dropout")


def _flatten(value: Any) -> list:
    if isinstance(value, (list, tuple)):
        return [x for v in value for x in _flatten(v)]
    if isinstance(value, dict):
        return [x for k in sorted(value) for x in _flatten(value[k])]
    return [value]


def functional_of(model: Any) -> Any:
    return getattr(model, "_functional", None) or model


def match_tensors(graph: Graph, model: Any) -> dict[int, Any]:
    """Map ``id(graph tensor)`` to the KerasTensor it stands for (one level).

    Walks back from the outputs as the readers do, through each KerasTensor's
    ``_keras_history`` (a Sequential keeps stale nodes from earlier builds: the outputs
    lead to the right ones).
    """
    functional = functional_of(model)
    tmap: dict[int, Any] = {}
    for g, kt in zip(graph.outputs, _flatten(functional.outputs)):
        tmap[id(g)] = kt
    for g, kt in zip(graph.inputs, _flatten(functional.inputs)):
        tmap[id(g)] = kt
    for call in reversed(graph.calls):
        kt = next((tmap[id(t)] for t in call.outputs if id(t) in tmap), None)
        history = getattr(kt, "_keras_history", None)
        if history is None or call.layer.class_name == "InputLayer":
            continue
        op, node_index = history[0], history[1]
        if getattr(op, "name", None) != call.layer.name:
            continue
        try:
            node = op._inbound_nodes[node_index]
            outs, ins = _flatten(node.outputs), _flatten(node.input_tensors)
        except (AttributeError, IndexError, TypeError):
            continue
        if len(outs) == len(call.outputs):
            for g, each in zip(call.outputs, outs):
                tmap.setdefault(id(g), each)
        if len(ins) == len(call.inputs):
            for g, each in zip(call.inputs, ins):
                tmap.setdefault(id(g), each)
    return tmap


def keras_models(model: Any, graph: Graph) -> dict[int, Any]:
    """``id(graph)`` -> the Keras model it was read from, for the model and nested models."""
    found = {id(graph): model}
    tmap = match_tensors(graph, model)
    for call in graph.calls:
        sub = call.layer.subgraph
        if sub is None or id(sub) in found or sub.rewritten:
            continue  # (a KerasHub block the reader wrote as core layers: no Keras model)
        kt = next((tmap[id(t)] for t in call.outputs if id(t) in tmap), None)
        history = getattr(kt, "_keras_history", None)
        if history is not None:
            found.update(keras_models(history[0], sub))
    return found


def keras_operations(functional: Any) -> list:
    """The model's layers and ops in its own order (``model.summary()``'s)."""
    ops = getattr(functional, "operations", None)
    return list(ops if ops is not None else getattr(functional, "layers", []))


def _model_class(model: Any, keras: Any) -> Any:
    """``keras.Model``, or ``tf_keras.Model`` for a reference model tf-keras loaded."""
    root = type(model).__module__.split(".")[0]
    if root == "tf_keras":
        return importlib.import_module(root).Model
    return keras.Model


def keras_values(
    models: dict[int, Any], graph: Graph, inputs: list[np.ndarray], training: bool
) -> dict[int, np.ndarray]:
    """Keras's value of every call output: ``id(graph tensor) -> array``, nested models'
    layers included (for a nested model's first call)."""
    keras = import_keras()
    model = models[id(graph)]
    tmap = match_tensors(graph, model)
    input_ids = {id(t) for t in graph.inputs}
    wanted: list[Tensor] = []
    seen: set[int] = set()
    for call in graph.calls:
        for tensor in call.outputs:
            kt = tmap.get(id(tensor))
            if kt is None or id(tensor) in input_ids or id(kt) in seen:
                continue
            seen.add(id(kt))
            wanted.append(tensor)
    values: dict[int, np.ndarray] = {id(t): np.asarray(a) for t, a in zip(graph.inputs, inputs)}
    if wanted:
        functional = functional_of(model)
        outputs = [tmap[id(t)] for t in wanted]
        probe = _model_class(model, keras)(_flatten(functional.inputs), outputs)
        with _keras_state_kept(model):
            results = _flatten(probe(list(inputs), training=training))
        values.update({id(t): np.asarray(v) for t, v in zip(wanted, results)})
    for call in graph.calls:
        sub = call.layer.subgraph
        if sub is None or call.index != 0 or id(sub) not in models:
            continue
        sub_inputs = [values.get(id(t)) for t in call.inputs]
        if len(sub_inputs) == len(sub.inputs) and all(v is not None for v in sub_inputs):
            values.update(keras_values(models, sub, sub_inputs, training))
    return values


class _keras_state_kept:
    """Training-mode calls update BatchNorm statistics and RNG states: put them back."""

    def __init__(self, model: Any) -> None:
        self.variables = list(getattr(model, "non_trainable_variables", []))

    def __enter__(self):
        self.saved = [np.array(v.numpy()) for v in self.variables]

    def __exit__(self, *exc):
        for v, value in zip(self.variables, self.saved):
            v.assign(value)
        return False


def keras_final_outputs(model: Any, inputs: list[np.ndarray], training: bool) -> list[np.ndarray]:
    with _keras_state_kept(model):
        return keras_outputs(model, inputs, training=training)


def stochastic_layers(graph: Graph) -> list[str]:
    """Layers whose training-mode output is random (non-zero dropout, noise, augmentation)."""
    found = []
    for layer in graph.walk_layers():
        cfg = layer.config if isinstance(layer.config, dict) else {}
        name = layer.class_name
        random = (
            (name in STOCHASTIC_LAYERS and any(_positive(cfg.get(k)) for k in ("rate", "stddev")))
            or (name.startswith("Random") and not layer.is_op)
            or any(_positive(cfg.get(k)) for k in _DROPOUT_KEYS)
            or (layer.is_op and "random" in name.lower())
        )
        if random:
            found.append(f"{layer.name} ({'ops.' if layer.is_op else ''}{name})")
    return found


def _positive(value: Any) -> bool:
    try:
        return float(value) > 0
    except (TypeError, ValueError):
        return False

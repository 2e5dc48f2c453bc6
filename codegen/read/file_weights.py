"""The weights part of the file reader: each layer's variables read from a full-model ``.h5``
(``model_weights/``) or a ``.keras`` file's ``model.weights.h5``, keyed as Keras 3 keys them.

:class:`WeightLoading` is mixed into the model builder of :mod:`codegen.read.from_file`; which
variables a layer has comes from its facts (:func:`codegen.read.layers.stored_variables`).
"""

from __future__ import annotations

import numpy as np

from codegen.errors import InputError
from codegen.ir.graph import Graph, Layer
from codegen.ir.naming import keras_snake_case

from .graph_order import operations
from .keras1_config import keras1_stored, keras1_weights
from .layers import stored_variables
from .legacy_config import LayerSpec, ModelSpec
from .stored_weights import (
    FileReaderUnsupported,
    Var,
    WeightsUnsupported,
    assign_legacy,
    from_cudnn,
    from_theano,
    legacy_group_weights,
    lora_factor,
    name_parts,
)


class WeightLoading:
    """Weight loading for the model builder (one per model spec, nested models included)."""

    spec: ModelSpec
    graph: Graph | None
    layers: dict[str, Layer]
    specs: dict[int, LayerSpec]
    children: dict[int, WeightLoading]
    trainable: bool
    theano: bool

    def _leaves(self):
        """(Layer, LayerSpec, builder) of every weighted layer here and in nested models."""
        for layer in self.graph.layers if self.graph else []:
            spec = self.specs.get(id(layer))
            if spec is None:
                continue
            child = self.children.get(id(layer))
            if child is not None:
                yield from child._leaves()
                if layer.subgraph is not None:
                    continue
            yield layer, spec, self

    def _expected(self, layer: Layer, spec: LayerSpec) -> list[Var] | None:
        if layer.is_op or spec.model is not None:
            return []
        if spec.class_name == "TimeDistributed" and getattr(layer, "wrapped", None) is not None:
            return []
        try:
            return stored_variables(spec.class_name, spec.config)
        except WeightsUnsupported as exc:
            raise FileReaderUnsupported(f"layer {layer.name!r}: {exc}") from None

    def _store(self, layer: Layer, spec: LayerSpec, expected: list[Var], arrays: dict) -> None:
        trainable = self.trainable and spec.trainable
        for var in expected:
            if var.lora and var.key not in arrays:
                prefix, _, base = var.key.rpartition("/")
                kernel_key = (prefix + "/" if prefix else "") + base[len("lora_") : -len("_a")]
                kernel = arrays.get(kernel_key)
                if kernel is None:
                    raise InputError(
                        f"layer {layer.name!r}: no {kernel_key!r} for its LoRA factors"
                    )
                arrays[var.key] = lora_factor(var, kernel, int(spec.config["lora_rank"]))
        for key, array in arrays.items():
            layer.weights[key] = np.asarray(array)
            var = next((v for v in expected if v.key == key), None)
            layer.trainable[key] = bool(trainable and (var.trainable if var else True))

    def check_no_weights(self) -> None:
        for layer, spec, builder in self._leaves():
            expected = builder._expected(layer, spec) or []
            if expected:
                raise InputError(
                    f"the file has no weights, but layer {layer.name!r} ({spec.class_name}) "
                    "needs some"
                )

    def load_legacy_weights(self, root) -> None:
        for layer in self.graph.layers:
            spec = self.specs.get(id(layer))
            if spec is None or layer.class_name == "InputLayer":
                continue
            group = root.get(spec.name)
            if spec.model is not None or id(layer) in self.children:
                stored = legacy_group_weights(group) if group is not None else []
                child = self.children[id(layer)]
                child._set_theano(self.theano)
                child._load_nested_legacy(stored, layer.name)
                continue
            expected = self._expected(layer, spec)
            stored = legacy_group_weights(group) if group is not None else []
            stored = keras1_stored(spec.keras1_kernel, stored)
            if expected is None:
                arrays = {"/".join(name_parts(n)[-1:]): a for n, a in stored}
                self._store(layer, spec, [], arrays)
                continue
            arrays = assign_legacy(layer.name, spec.class_name, expected, stored)
            self._store(layer, spec, expected, self._legacy_arrays(spec, arrays))

    def _set_theano(self, theano: bool) -> None:
        self.theano = theano
        for child in self.children.values():
            child._set_theano(theano)

    def _legacy_arrays(self, spec: LayerSpec, arrays: dict) -> dict:
        """Variables as a Keras 2 file stored them -> as Keras 3 holds them."""
        if spec.cudnn:
            arrays = {k: from_cudnn(k, v) for k, v in arrays.items()}
        if spec.keras1_kernel:
            arrays = {k: keras1_weights(spec.keras1_kernel, k, v) for k, v in arrays.items()}
        if self.theano:
            kind = spec.class_name
            inner = spec.config.get("layer") if kind == "TimeDistributed" else None
            if isinstance(inner, dict):  # Keras 2 flipped the wrapped layer's kernel
                kind = str(inner.get("class_name"))
            arrays = {k: from_theano(kind, k, v) for k, v in arrays.items()}
        return arrays

    def _load_nested_legacy(self, stored: list, model_name: str) -> None:
        """A nested model's weights: one flat list, each name starting with its layer's name."""
        leaves = []
        for layer, spec, builder in self._leaves():
            expected = builder._expected(layer, spec)
            if expected is None:
                raise FileReaderUnsupported(
                    f"layer {layer.name!r} ({spec.class_name}) inside model {model_name!r}"
                )
            if [v for v in expected if not v.lora]:
                leaves.append((layer, spec, builder, expected))
        names = {layer.name: i for i, (layer, *_rest) in enumerate(leaves)}
        groups: list[list] = [[] for _ in leaves]
        by_name = True
        for name, array in stored:
            parts = name_parts(name)
            index = next((names[p] for p in parts[:-1] if p in names), None)
            if index is None:
                by_name = False
                break
            groups[index].append((name, array))
        if by_name:
            for (layer, spec, builder, expected), group in zip(leaves, groups):
                wanted = [v for v in expected if not v.lora]
                if len(group) != len(wanted):
                    by_name = False
                    break
        if not by_name:
            groups = self._keras2_order(leaves, stored, model_name)
        for (layer, spec, builder, expected), group in zip(leaves, groups):
            arrays = assign_legacy(layer.name, spec.class_name, expected, group)
            builder._store(layer, spec, expected, builder._legacy_arrays(spec, arrays))

    def _keras2_order(self, leaves, stored, model_name: str) -> list[list]:
        """Keras 2 lists a model's weights trainable first (layer by layer), then the rest."""
        trainable_slots, frozen_slots = [], []
        for index, (layer, spec, builder, expected) in enumerate(leaves):
            layer_trainable = builder.trainable and spec.trainable
            for var in expected:
                if var.lora:
                    continue
                (trainable_slots if layer_trainable and var.trainable else frozen_slots).append(
                    index
                )
        slots = trainable_slots + frozen_slots
        if len(slots) != len(stored):
            raise InputError(
                f"model {model_name!r}: the file holds {len(stored)} weights, "
                f"its layers have {len(slots)}"
            )
        groups: list[list] = [[] for _ in leaves]
        # Keep each layer's own order: its trainable weights, then its other ones.
        for index, item in zip(slots, stored):
            groups[index].append(item)
        return groups

    def load_zip_weights(self, root, path: str) -> None:
        """Keras 3 ``model.weights.h5``: paths built from snake-cased class names."""
        if self.spec.class_name == "Sequential":
            layers = [layer for layer in self._config_order() if layer.class_name != "InputLayer"]
        elif self.spec.legacy:  # tf-keras lists a model's layers in its config's order
            layers = self._config_order()
        else:
            layers = [layer for layer in self._graph_order() if not layer.is_op]
        used: dict[str, int] = {}
        for layer in layers:
            spec = self.specs.get(id(layer))
            if spec is None:
                continue
            class_name = (
                "Functional"
                if spec.model is not None and spec.class_name == "Functional"
                else spec.class_name
            )
            name = _unique(keras_snake_case(_saved_class(class_name)), used)
            layer_path = f"{path}layers/{name}"
            group = root.get(layer_path)
            group = self._check_zip_group(root, group, layer, layer_path, path)
            child = self.children.get(id(layer))
            if child is not None:
                inner = f"{layer_path}/" if spec.model is not None else f"{layer_path}/layer/"
                child.load_zip_weights(root, inner)
                continue
            expected = self._expected(layer, spec)
            if expected is None:
                arrays = {}
                if group is not None and "vars" in group:
                    for key in sorted(group["vars"], key=int):
                        arrays[f"variable_{key}"] = np.asarray(group["vars"][key])
                self._store(layer, spec, [], arrays)
                continue
            arrays = {}
            for var in expected:
                if not var.zip_path:
                    continue
                dataset = group.get(var.zip_path) if group is not None else None
                if dataset is None:
                    raise InputError(
                        f"layer {layer.name!r}: model.weights.h5 has no {layer_path}/{var.zip_path}"
                    )
                arrays[var.key] = np.asarray(dataset)
            self._store(layer, spec, expected, arrays)

    def _check_zip_group(self, root, group, layer: Layer, layer_path: str, path: str):
        """Newer Keras writes each layer's name next to its variables: use it when present."""
        vars_group = group.get("vars") if group is not None else None
        recorded = vars_group.attrs.get("name") if vars_group is not None else None
        if recorded is None:
            return group
        if isinstance(recorded, bytes):
            recorded = recorded.decode()
        if recorded == layer.name:
            return group
        parent = root.get(f"{path}layers") if path or "layers" in root else None
        if parent is not None:
            for key in parent:
                candidate = parent[key].get("vars")
                name = candidate.attrs.get("name") if candidate is not None else None
                if isinstance(name, bytes):
                    name = name.decode()
                if name == layer.name:
                    return parent[key]
        return group

    def _config_order(self) -> list[Layer]:
        return [self.layers[s.name] for s in self.spec.layers if s.name in self.layers]

    def _graph_order(self) -> list[Layer]:
        return list(operations(self.graph.inputs, self.graph.outputs))


def _saved_class(class_name: str) -> str:
    return {"Model": "Functional", "GroupQueryAttention": "GroupedQueryAttention"}.get(
        class_name, class_name
    )


def _unique(name: str, used: dict[str, int]) -> str:
    if name in used:
        used[name] += 1
        return f"{name}_{used[name]}"
    used[name] = 0
    return name

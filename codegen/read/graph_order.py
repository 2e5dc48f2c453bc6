"""The order of a graph's calls, as Keras and :func:`codegen.read.from_keras.read_model` order
them: what the file reader needs to give the same Graph as the Keras reader."""

from __future__ import annotations

import heapq

from codegen.errors import InputError
from codegen.ir.graph import Call, Graph, Layer, Tensor

from .legacy_config import ModelSpec


def operations(inputs: list[Tensor], outputs: list[Tensor]) -> list[Layer]:
    """Layers in the order of ``Functional.operations`` (keras.src.ops.function.map_graph)."""
    finished: set[int] = set()
    in_progress: set[int] = set()
    order: list[Call] = []
    indices: dict[int, int] = {}
    layers: dict[int, Layer] = {}
    input_ids = {id(t) for t in inputs}

    def visit(tensor: Tensor) -> None:
        call = tensor.producer
        if call is None or id(call) in finished:
            return
        is_input = call.layer.class_name == "InputLayer"
        if not is_input and id(tensor) in input_ids:
            finished.add(id(call))
            return
        if id(call) in in_progress:
            raise InputError("the model's graph has a cycle")
        if id(call.layer) not in indices:
            indices[id(call.layer)] = len(indices)
            layers[id(call.layer)] = call.layer
        in_progress.add(id(call))
        if not is_input:
            for t in call.inputs:
                visit(t)
        finished.add(id(call))
        in_progress.discard(id(call))
        order.append(call)

    for tensor in outputs:
        visit(tensor)
    in_graph = {id(c) for c in order}
    depth: dict[int, int] = {}
    layer_depth: dict[int, int] = {}
    for call in reversed(order):
        d = depth.setdefault(id(call), 0)
        d = max(d, layer_depth.get(id(call.layer), 0))
        layer_depth[id(call.layer)] = d
        depth[id(call)] = d
        for t in call.inputs:
            parent = t.producer
            if parent is None or id(parent) not in in_graph:
                continue
            depth[id(parent)] = max(d + 1, depth.get(id(parent), 0))
    for tensor in inputs:
        call = tensor.producer
        if (
            call is not None
            and id(call.layer) not in layer_depth
            and call.layer.class_name == "InputLayer"
        ):
            layer_depth[id(call.layer)] = 0
            indices[id(call.layer)] = -1
            layers[id(call.layer)] = call.layer
    by_depth: dict[int, list[int]] = {}
    for key, d in layer_depth.items():
        by_depth.setdefault(d, []).append(key)
    result = []
    for d in sorted(by_depth, reverse=True):
        for key in sorted(by_depth[d], key=lambda k: indices[k]):
            result.append(layers[key])
    return result


def ordered_graph(
    spec: ModelSpec, inputs: list[Tensor], outputs: list[Tensor], calls: list[Call]
) -> Graph:
    """read_keras's order: Kahn's algorithm over the calls the outputs need, ties broken by
    the model's operation order, each layer's calls in the order Keras made them."""
    order = {id(layer): i for i, layer in enumerate(operations(inputs, outputs))}
    needed: dict[int, Call] = {}
    stack = [t.producer for t in outputs if t.producer is not None]
    while stack:
        call = stack.pop()
        if id(call) in needed:
            continue
        needed[id(call)] = call
        for t in call.inputs:
            if t.producer is not None:
                stack.append(t.producer)
    creation = {id(c): i for i, c in enumerate(calls)}
    deps: dict[int, set[int]] = {}
    users: dict[int, list[int]] = {}
    for key, call in needed.items():
        parents = {id(t.producer) for t in call.inputs if t.producer is not None}
        deps[key] = parents
        for parent in parents:
            users.setdefault(parent, []).append(key)

    def rank(key: int):
        call = needed[key]
        return (order.get(id(call.layer), len(order)), creation[key])

    ready = [(rank(k), k) for k, d in deps.items() if not d]
    heapq.heapify(ready)
    ordered: list[Call] = []
    while ready:
        _, key = heapq.heappop(ready)
        ordered.append(needed[key])
        for user in users.get(key, []):
            deps[user].discard(key)
            if not deps[user]:
                heapq.heappush(ready, (rank(user), user))
    # Each layer keeps only the calls the model makes, numbered in this order.
    for layer in {id(c.layer): c.layer for c in calls}.values():
        layer.calls = []
    for call in ordered:
        call.index = len(call.layer.calls)
        call.layer.calls.append(call)
    input_names = [
        t.producer.layer.name if t.producer is not None else f"input_{i}"
        for i, t in enumerate(inputs)
    ]
    return Graph(
        name=spec.name,
        class_name=spec.class_name,
        inputs=inputs,
        outputs=outputs,
        calls=ordered,
        input_names=input_names,
        input_keys=spec.input_keys,
        output_keys=spec.output_keys,
        # A nested keras.Model subclass is named after its class (as the Keras reader does).
        own_class=spec.class_name not in ("Functional", "Sequential", "Model"),
    )

"""Statement order that follows the chain: each branch finished before the next one starts.

Keras records calls in the order the model was built, which interleaves branches (the
projection shortcut's convolution in the middle of the main path). Reordering the calls
depth first from the outputs, inputs in argument order, writes each value's whole branch
right before the line that needs it, as a person would.
"""

from __future__ import annotations

from dataclasses import replace

from codegen.ir.graph import Call, Graph


def finish_branches(graph: Graph) -> Graph:
    """``graph`` with its calls in depth-first order from the outputs (a new Graph)."""
    producer: dict[int, Call] = {}
    for call in graph.calls:
        for tensor in call.outputs:
            producer[id(tensor)] = call
    placed: set[int] = set()
    order: list[Call] = [c for c in graph.calls if c.layer.class_name == "InputLayer"]
    placed.update(id(c) for c in order)
    for tensor in graph.outputs:
        root = producer.get(id(tensor))
        if root is None or id(root) in placed:
            continue
        stack: list[tuple[Call, int]] = [(root, 0)]
        while stack:  # post-order, iteratively: deep models exceed the recursion limit
            call, next_input = stack.pop()
            if id(call) in placed:
                continue
            while next_input < len(call.inputs):
                before = producer.get(id(call.inputs[next_input]))
                next_input += 1
                if before is not None and id(before) not in placed:
                    stack.append((call, next_input))
                    stack.append((before, 0))
                    break
            else:
                placed.add(id(call))
                order.append(call)
    order += [c for c in graph.calls if id(c) not in placed]  # calls no output needs
    if [id(c) for c in order] == [id(c) for c in graph.calls]:
        return graph
    return replace(graph, calls=order, labels=graph.labels)

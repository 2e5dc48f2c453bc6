"""Blocks inside a block: the squeeze-excite of an inverted residual becomes its own class
(``self.se = SqueezeExcite(...)``), as torchvision writes it.

Enters: one block instance's calls and their short labels (:mod:`codegen.structure.group`).
Leaves: the calls with each inner block replaced by one call of a nested layer, whose
subgraph holds the inner block's calls, and those layers.

An inner block is a run of consecutive calls entered by one value made inside the block,
that reads nothing else, reads that value more than once (it is not a plain chain: a gate
or a skip) and is left by its last call's value only. The structure allows several such
runs (a gate and the projection after it); names choose: the run's calls share a label
prefix beyond the block's own (``se_squeeze``, ``se_reduce``, ``se_excite``), or, without
names, the run ends in a ``Multiply`` by its entry (a gate).
"""

from __future__ import annotations

from dataclasses import dataclass

from codegen.ir.graph import Call, Graph, Layer, Tensor

from .blocks import MIN_BLOCK_CALLS, Segment, name_prefix, segment_signature, shared_prefix

# Class names for the prefixes Keras applications give their inner blocks.
_CLASS_NAMES = {"se": "SqueezeExcite", "squeeze_excite": "SqueezeExcite", "gate": "Gate"}


@dataclass(eq=False)
class InnerBlock:
    layer: Layer  # the nested layer its calls moved into
    signature: tuple  # equal signatures: one class (unify.py merges them)
    absorbed: list[str]  # the labels its calls had in the outer block
    attribute: str  # its attribute in the outer block (``se``)


def nest_inner_blocks(
    calls: list[Call], labels: list[str], entry: Tensor, skip: frozenset = frozenset()
) -> tuple[list[Call], list[str], list[InnerBlock]]:
    """``calls`` and ``labels`` with each inner block one nested call; the inner blocks.
    ``skip``: keys (:func:`inner_key`) of inner blocks to leave inline."""
    found: list[InnerBlock] = []
    start = 0
    calls, labels = list(calls), list(labels)
    while start < len(calls):
        run = _inner_run(calls, labels, entry, start)
        if run is None:
            start += 1
            continue
        first, last, prefix = run
        inner_calls = calls[first : last + 1]
        inner_entry = inner_calls[0].inputs[0]
        signature = segment_signature(Segment(inner_calls, inner_entry, inner_calls[-1].outputs[0]))
        if inner_key(signature) in skip:
            start = last + 1
            continue
        attribute = prefix.rstrip("_") or "gate"
        inner_labels = [label[len(prefix) :] or label for label in labels[first : last + 1]]
        class_name = _CLASS_NAMES.get(attribute) or "".join(
            w[:1].upper() + w[1:] for w in attribute.split("_")
        )
        sub = Graph(
            name=name_prefix(inner_calls).rstrip("_") or attribute,
            class_name=class_name,
            inputs=[inner_entry],
            outputs=list(inner_calls[-1].outputs),
            calls=inner_calls,
            input_names=["inputs"],
            labels={id(c.layer): label for c, label in zip(inner_calls, inner_labels)},
            caller_layouts=True,
        )
        layer = Layer(name=sub.name, class_name=class_name, config={}, subgraph=sub)
        nested = Call(layer=layer, inputs=[inner_entry], outputs=list(inner_calls[-1].outputs))
        layer.calls.append(nested)
        found.append(InnerBlock(layer, signature, labels[first : last + 1], attribute))
        calls[first : last + 1] = [nested]
        labels[first : last + 1] = [attribute]
        start = first + 1
    return calls, labels, found


def nest_kind(
    instances: list[tuple[list[Call], list[str], Tensor]], skip: frozenset = frozenset()
) -> list[tuple[list[Call], list[str], list[InnerBlock]]]:
    """:func:`nest_inner_blocks` for every instance (calls, labels, entry) of one block kind,
    or for none: where one instance has the steps of an inner block another nests but does
    not nest them itself, the instances would no longer line up step by step."""
    results = [nest_inner_blocks(calls, labels, entry, skip) for calls, labels, entry in instances]
    nested = {tuple(b.absorbed) for _, _, found in results for b in found}
    for (_, labels, _), (_, _, found) in zip(instances, results):
        own = {tuple(b.absorbed) for b in found}
        if any(set(steps) & set(labels) and steps not in own for steps in nested):
            return [(list(calls), list(labels), []) for calls, labels, _ in instances]
    return results


def inner_key(signature: tuple) -> tuple:
    """What identifies a kind of inner block from one conversion round to the next."""
    return ("inner", signature)


def _inner_run(
    calls: list[Call], labels: list[str], entry: Tensor, start: int
) -> tuple[int, int, str] | None:
    """(first, last, label prefix) of the inner block starting at ``start``, or None."""
    if start == 0 or len(calls[start].inputs) != 1:
        return None
    value = calls[start].inputs[0]
    if value is entry or value.producer is None or value.producer is not calls[start - 1]:
        return None
    made = {id(value)}
    reads = 0
    for last in range(start, len(calls)):
        call = calls[last]
        if any(id(t) not in made for t in call.inputs) or call.layer.subgraph is not None:
            return None  # reads a value from outside the run
        reads += sum(t is value for t in call.inputs)
        made.update(id(t) for t in call.outputs)
        if last - start + 1 < MIN_BLOCK_CALLS or reads < 2 or len(call.outputs) != 1:
            continue
        if _read_after(calls, last, made - {id(call.outputs[0])}):
            continue
        if start == 1 and last == len(calls) - 1:
            return None  # all of the block but its first step
        prefix = shared_prefix(labels[start : last + 1])
        if prefix:  # the names say where it ends: where the next call's name leaves the prefix
            beside = [labels[start - 1], labels[last + 1] if last + 1 < len(labels) else ""]
            if not any(label.startswith(prefix) for label in beside):
                return start, last, prefix
        elif call.layer.class_name == "Multiply" and value in call.inputs:
            return start, last, ""  # no names: a gate ends at its multiply
    return None


def _read_after(calls: list[Call], last: int, values: set[int]) -> bool:
    return any(id(t) in values for call in calls[last + 1 :] for t in call.inputs)

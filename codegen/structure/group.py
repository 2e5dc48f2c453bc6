"""Turn every instance of a repeated block into one call of a nested graph.

Enters: a :class:`Graph` and the block kinds :mod:`codegen.structure.blocks` found. Leaves: a
new top-level ``Graph`` (the input graph is not changed) in which each block instance is a
call of a layer whose ``subgraph`` holds the instance's calls, so the engine builds one class
per instance; :mod:`codegen.structure.unify` then merges the classes of one kind.

Inside a block, attributes get short names from the Keras names with what all the block's
layers share taken off (``conv2_block1_1_conv`` -> ``conv1``); automatic names lose their
counter (``conv2d_17`` -> ``conv2d``). The same name is used for the same position in every
instance, so the instances' classes can be compared line by line.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from codegen.ir.graph import Call, Graph, Layer

from .blocks import BlockKind, Segment

_COUNTER = re.compile(r"_\d+$")
_NUMBERED = re.compile(r"^(\d+)_([A-Za-z]\w*)$")


@dataclass(eq=False)
class GroupedKind:
    """One block kind as the engine will see it: a class name and its instances' layers."""

    class_name: str
    key: tuple[int, bool]  # the detected kind (its first instance) and the variant
    layers: list[Layer] = field(default_factory=list)
    keras_names: list[list[str]] = field(default_factory=list)  # per instance, per call


def block_graph(
    graph: Graph, kinds: list[BlockKind], skip: frozenset = frozenset()
) -> tuple[Graph, list[GroupedKind]]:
    """``graph`` with each instance of ``kinds`` as one nested call; the kinds as grouped.
    ``skip`` holds the :attr:`GroupedKind.key` of kinds to leave flat."""
    replaced: dict[int, tuple[Segment, Layer]] = {}
    grouped: list[GroupedKind] = []
    used_names: set[str] = set()
    for kind in kinds:
        # Instances with and without the optional part are grouped apart for now: they are
        # one kind to the detector, two classes here (see the notes).
        variants: dict[bool, list[Segment]] = {}
        for segment in kind.instances:
            variants.setdefault(bool(segment.optional), []).append(segment)
        for variant, instances in variants.items():
            key = (id(kind.instances[0]), variant)
            if len(instances) < 2 or key in skip:
                continue
            labels = _labels(instances[0], graph.name)
            name = _unique(_class_name(instances[0], graph.name), used_names)
            group = GroupedKind(name, key)
            for segment in instances:
                layer = _nested_layer(segment, labels, name)
                replaced[id(segment.calls[0])] = (segment, layer)
                group.layers.append(layer)
                group.keras_names.append([c.layer.name for c in segment.calls])
            grouped.append(group)
    if not grouped:
        return graph, []
    inside = {id(c) for segment, _ in replaced.values() for c in segment.calls}
    calls: list[Call] = []
    for call in graph.calls:
        if id(call) in replaced:
            segment, layer = replaced[id(call)]
            nested = Call(layer=layer, inputs=[segment.entry], outputs=[segment.exit])
            layer.calls.append(nested)
            calls.append(nested)
        elif id(call) not in inside:
            calls.append(call)
    new = Graph(
        name=graph.name,
        class_name=graph.class_name,
        inputs=graph.inputs,
        outputs=graph.outputs,
        calls=calls,
        input_names=graph.input_names,
        labels=dict(graph.labels),
    )
    return new, grouped


def _nested_layer(segment: Segment, labels: list[str], class_name: str) -> Layer:
    sub = Graph(
        name=_layer_prefix(segment).rstrip("_") or class_name,
        class_name=class_name,
        inputs=[segment.entry],
        outputs=[segment.exit],
        calls=list(segment.calls),
        input_names=["inputs"],
        labels={id(c.layer): label for c, label in zip(segment.calls, labels)},
    )
    return Layer(name=sub.name, class_name=class_name, config={}, subgraph=sub)


def _labels(segment: Segment, model_name: str) -> list[str]:
    """Short attribute names for the calls of ``segment``, by position."""
    names = [c.layer.name for c in segment.calls]
    prefix = _layer_prefix(segment)
    labels = []
    for name in names:
        short = name[len(prefix) :] if name.startswith(prefix) else name
        short = short or name
        short = _COUNTER.sub("", short) if not prefix else short
        numbered = _NUMBERED.match(short)
        if numbered:  # "1_conv" -> "conv1": the layer's role, then its place in the block
            short = numbered.group(2) + numbered.group(1)
        labels.append(short)
    return labels


def _layer_prefix(segment: Segment) -> str:
    """The name prefix the segment's layers share (keras.ops calls, named automatically,
    do not count)."""
    return _prefix([c.layer.name for c in segment.calls if not c.layer.is_op])


def _prefix(names: list[str]) -> str:
    """The longest common prefix of ``names`` ending with ``_`` (empty when there is none)."""
    if len(names) < 2:
        return ""
    common = os.path.commonprefix(names)
    cut = common.rfind("_")
    return common[: cut + 1] if cut >= 0 else ""


def _class_name(segment: Segment, model_name: str) -> str:
    """A class name from the instance's name prefix (``conv2_block1_`` -> ``Block``)."""
    prefix = _layer_prefix(segment)
    model_words = set(model_name.lower().split("_"))
    words = [w for w in re.split(r"[^A-Za-z]+", prefix) if w and w.lower() not in model_words]
    words = [w for w in words if len(w) > 1]  # "block2b_": "b" numbers the block
    word = words[-1] if words else "block"
    return word[:1].upper() + word[1:].lower()


def _unique(name: str, used: set[str]) -> str:
    candidate, counter = name, 1
    while candidate in used:
        counter += 1
        candidate = f"{name}{counter}"
    used.add(candidate)
    return candidate

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

import re
from dataclasses import dataclass, field

from codegen.ir.graph import Call, Graph, Layer
from codegen.ir.naming import own_class_name

from .blocks import BlockKind, Segment, name_prefix, segment_signature, segments
from .nest import InnerBlock, inner_key, nest_kind

_COUNTER = re.compile(r"_\d+$")
_NUMBERED = re.compile(r"^(\d+)_([A-Za-z]\w*)$")


@dataclass(eq=False)
class GroupedKind:
    """One block kind as the engine will see it: a class name and its instances' layers."""

    class_name: str
    key: tuple  # the detected kind (its first instance) and the variant (None: both)
    layers: list[Layer] = field(default_factory=list)
    keras_names: list[list[str]] = field(default_factory=list)  # per instance, per call
    # The optional part (a projection shortcut): its attributes, and which instances have it.
    optional_labels: list[str] = field(default_factory=list)
    with_optional: set[int] = field(default_factory=set)  # id(layer)
    # Steps some instances leave out (variants.py): every step's attribute, in order.
    union_labels: list[str] = field(default_factory=list)


def block_graph(
    graph: Graph, kinds: list[BlockKind], skip: frozenset = frozenset()
) -> tuple[Graph, list[GroupedKind]]:
    """``graph`` with each instance of ``kinds`` as one nested call; the kinds as grouped.
    ``skip`` holds the :attr:`GroupedKind.key` of kinds to leave flat."""
    replaced: dict[int, tuple[Segment, Layer]] = {}
    grouped: list[GroupedKind] = []
    used_names: set[str] = set()
    inner_blocks: list[InnerBlock] = []
    for kind in kinds:
        variants: dict[bool, list[Segment]] = {}
        for segment in kind.instances:
            variants.setdefault(bool(segment.optional), []).append(segment)
        together = (id(kind.instances[0]), None)
        if len(variants) == 2 and together not in skip:
            # One class for both: the optional part becomes ``downsample`` (unify.py).
            groups = [(together, sorted(kind.instances, key=lambda s: s.order))]
        else:
            groups = [((id(kind.instances[0]), v), i) for v, i in variants.items()]
        for key, instances in groups:
            if len(instances) < 2 or key in skip:
                continue
            if kind.union is not None:
                group = _variant_group(
                    kind,
                    key,
                    instances,
                    graph.name,
                    used_names,
                    _input_names(graph),
                    (inner_blocks, skip),
                )
                for segment, layer in zip(instances, group.layers):
                    replaced[id(segment.calls[0])] = (segment, layer)
                grouped.append(group)
                continue
            model = next((s for s in instances if s.optional), instances[0])
            base, roles = _base_labels(model)
            numbered = _numbered_roles(base) if roles else _deduplicated(base)
            labels = dict(zip(map(id, model.calls), numbered))
            core_labels = [labels[id(c)] for c in model.core]
            name = _unique(_class_name(model, graph.name), used_names)
            group = GroupedKind(name, key)
            if key == together:  # instances with and without the optional part
                group.optional_labels = [labels[id(c)] for c in model.optional]
            label_lists = []
            for segment in instances:
                by_call = dict(zip(map(id, segment.core), core_labels))
                chain_labels = [labels[id(c)] for c in model.optional]
                by_call.update(zip(map(id, segment.optional), chain_labels))
                label_lists.append([by_call[id(c)] for c in segment.calls])
            role_of = dict(zip(numbered, base)) if roles else None
            nested = _nest(
                instances, label_lists, (inner_blocks, skip), role_of, not group.optional_labels
            )
            for segment, inside in zip(instances, nested):
                layer = _nested_layer(segment, inside, name, _input_names(graph))
                replaced[id(segment.calls[0])] = (segment, layer)
                group.layers.append(layer)
                group.keras_names.append([c.layer.name for c in segment.calls])
                if segment.optional:
                    group.with_optional.add(id(layer))
            grouped.append(group)
    if not grouped:
        return graph, []
    grouped = _inner_kinds(inner_blocks, used_names) + grouped  # merged before their blocks
    inside = {id(c) for segment, _ in replaced.values() for c in segment.calls}
    calls: list[Call] = []
    for call in graph.calls:
        if id(call) in replaced:
            segment, layer = replaced[id(call)]
            nested = Call(
                layer=layer, inputs=[segment.entry, *side_inputs(segment)], outputs=[segment.exit]
            )
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
        input_keys=graph.input_keys,
        output_keys=graph.output_keys,
    )
    return new, grouped


def _variant_group(
    kind: BlockKind,
    key: tuple,
    instances: list[Segment],
    model_name: str,
    used_names: set[str],
    input_names: dict[int, str],
    inner: tuple[list[InnerBlock], frozenset],
) -> GroupedKind:
    """A kind whose instances leave steps out: each step labelled from the first instance
    that has it, the same label for the same step in every instance."""
    by_key: dict[tuple, str] = {}
    roles = False
    for segment in instances:
        base, roles = _base_labels(segment)
        labels = base if roles else _deduplicated(base)
        for step, label in zip(segment.keys, labels):
            by_key.setdefault(step, label)
    role_of = None
    if roles:  # numbered over every step, so a step has one number in every instance
        bases = [by_key[k] for k in kind.union]
        by_key.update(zip(kind.union, _numbered_roles(bases)))
        role_of = {by_key[k]: b for k, b in zip(kind.union, bases)}
    taken: set[str] = set()
    for step in kind.union:  # unique across the union, as each names one attribute
        label, n = by_key[step], 1
        while label in taken:
            n += 1
            label = f"{by_key[step]}_{n}"
        taken.add(label)
        by_key[step] = label
    model = max(instances, key=lambda s: len(s.calls))
    name = _unique(_class_name(model, model_name), used_names)
    group = GroupedKind(name, key)
    nested = _nest(instances, [[by_key[k] for k in s.keys] for s in instances], inner, role_of)
    for segment, inside in zip(instances, nested):
        layer = _nested_layer(segment, inside, name, input_names)
        group.layers.append(layer)
        group.keras_names.append([c.layer.name for c in segment.calls])
    # The steps an inner block took in are one step now, the inner block's.
    absorbed = {label: b.attribute for _, _, found in nested for b in found for label in b.absorbed}
    for step in kind.union:
        label = absorbed.get(by_key[step], by_key[step])
        if not (
            group.union_labels and label in absorbed.values() and group.union_labels[-1] == label
        ):
            group.union_labels.append(label)
    return group


def _inner_kinds(inner_blocks: list[InnerBlock], used_names: set[str]) -> list[GroupedKind]:
    """Inner blocks of one signature: one kind each (one alone stays its own class)."""
    by_signature: dict[tuple, list[Layer]] = {}
    for block in inner_blocks:
        by_signature.setdefault(block.signature, []).append(block.layer)
    kinds = []
    for signature, layers in by_signature.items():
        if len(layers) >= 2:
            name = _unique(layers[0].class_name, used_names)
            kinds.append(GroupedKind(name, inner_key(signature), layers=layers))
    return kinds


def _input_names(graph: Graph) -> dict[int, str]:
    return {id(t): name for t, name in zip(graph.inputs, graph.input_names or [])}


def side_inputs(segment: Segment) -> list:
    """Values the block reads besides its entry: model inputs (a padding mask), in the
    order it first reads them; they become more arguments of its forward."""
    made = {id(t) for c in segment.calls for t in c.outputs}
    found: list = []
    for call in segment.calls:
        for tensor in call.inputs:
            if tensor is segment.entry or id(tensor) in made or any(t is tensor for t in found):
                continue
            found.append(tensor)
    return found


def _nest(
    instances: list[Segment],
    labels: list[list[str]],
    inner: tuple[list[InnerBlock], frozenset],
    role_of: dict[str, str] | None = None,
    renumber_outer: bool = False,
) -> list[tuple[list[Call], list[str], list[InnerBlock]]]:
    """The instances' calls and labels with their inner blocks (a squeeze-excite) nested
    once more, added to ``inner[0]`` unless ``inner[1]`` skips them. ``role_of``: each
    numbered role's role (``conv2`` -> ``conv``) where the labels are roles of automatic
    names: an unnamed gate took some of them, so its roles, and with ``renumber_outer`` the
    outer block's, are counted anew within each class (``conv1``, ``conv2``)."""
    nested = nest_kind([(s.calls, ls, s.entry) for s, ls in zip(instances, labels)], inner[1])
    inner[0].extend(b for _, _, found in nested for b in found)
    if role_of is None:
        return nested
    gates = [b for _, _, found in nested for b in found if b.attribute == "gate"]
    for gate in gates:
        sub = gate.layer.subgraph
        own = [sub.labels[id(c.layer)] for c in sub.calls]
        fresh = _numbered_roles([role_of.get(label, label) for label in own])
        sub.labels = {id(c.layer): label for c, label in zip(sub.calls, fresh)}
    if renumber_outer and gates and len({tuple(ls) for _, ls, _ in nested}) == 1:
        nested = [
            (calls, _numbered_roles([role_of.get(label, label) for label in ls]), found)
            for calls, ls, found in nested
        ]
    return nested


def _nested_layer(
    segment: Segment,
    nested: tuple[list[Call], list[str], list[InnerBlock]],
    class_name: str,
    names: dict[int, str],
) -> Layer:
    """A layer whose subgraph is the instance (``nested``: its calls and labels, inner
    blocks nested); ``names`` are the model inputs' names, for the ones it reads besides
    its entry (a padding mask)."""
    sides = side_inputs(segment)
    calls, labels, found = nested
    by_layer = {id(c.layer): label for c, label in zip(calls, labels)}
    for block in found:  # the value an inner block returns is made by its last call
        by_layer[id(block.layer.subgraph.calls[-1].layer)] = block.attribute
    sub = Graph(
        name=name_prefix(segment.calls).rstrip("_") or class_name,
        class_name=class_name,
        inputs=[segment.entry, *sides],
        outputs=[segment.exit],
        calls=calls,
        input_names=["inputs", *(names.get(id(t), f"input_{i + 1}") for i, t in enumerate(sides))],
        labels=by_layer,
    )
    return Layer(name=sub.name, class_name=class_name, config={}, subgraph=sub)


def _labels(segment: Segment, model_name: str) -> list[str]:
    """Short attribute names for the calls of ``segment``, by position."""
    labels, roles = _base_labels(segment)
    return _numbered_roles(labels) if roles else _deduplicated(labels)


def _base_labels(segment: Segment) -> tuple[list[str], bool]:
    """Each call's name with the block's shared prefix taken off, not yet unique; and
    whether they are roles from automatic names (numbered ``conv1``, ``conv2``)."""
    names = [c.layer.name for c in segment.calls]
    prefix = name_prefix(segment.calls)
    if prefix and all(n[len(prefix) :].isdigit() for n in names if n.startswith(prefix)):
        prefix = ""  # "dense_3", "dense_4": one automatic name's counters, not a prefix
    labels = []
    for name in names:
        short = name[len(prefix) :] if name.startswith(prefix) else name
        short = short or name
        short = _COUNTER.sub("", short) if not prefix else short
        numbered = _NUMBERED.match(short)
        if numbered:  # "1_conv" -> "conv1": the layer's role, then its place in the block
            short = numbered.group(2) + numbered.group(1)
        labels.append(short)
    if not prefix:
        return [_ROLES.get(label, label) for label in labels], True
    return labels, False


# Automatic Keras names (the class's name in snake case) -> the role a person would name
# the attribute by; numbered 1, 2, ... where a block has several (``conv1``, ``bn1``).
_ROLES = {
    "conv1d": "conv",
    "conv2d": "conv",
    "conv3d": "conv",
    "conv1d_transpose": "conv_transpose",
    "conv2d_transpose": "conv_transpose",
    "conv3d_transpose": "conv_transpose",
    "depthwise_conv1d": "depthwise",
    "depthwise_conv2d": "depthwise",
    "separable_conv1d": "separable",
    "separable_conv2d": "separable",
    "batch_normalization": "bn",
    "layer_normalization": "norm",
    "group_normalization": "norm",
    "rms_normalization": "norm",
    "multi_head_attention": "attention",
    "grouped_query_attention": "attention",
    "dense": "linear",
    "einsum_dense": "linear",
    "max_pooling1d": "pool",
    "max_pooling2d": "pool",
    "max_pooling3d": "pool",
    "average_pooling1d": "pool",
    "average_pooling2d": "pool",
    "average_pooling3d": "pool",
    "zero_padding1d": "pad",
    "zero_padding2d": "pad",
    "zero_padding3d": "pad",
}


def _numbered_roles(labels: list[str]) -> list[str]:
    """Roles that occur more than once numbered from 1, in order (``conv1``, ``conv2``)."""
    total: dict[str, int] = {}
    for label in labels:
        total[label] = total.get(label, 0) + 1
    seen: dict[str, int] = {}
    result = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        result.append(f"{label}{seen[label]}" if total[label] > 1 else label)
    return _deduplicated(result)


def _class_name(segment: Segment, model_name: str) -> str:
    """A class name from the instance's name prefix (``conv2_block1_`` -> ``Block``)."""
    prefix = name_prefix(segment.calls)
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


_PLAIN_MODELS = {"Functional", "Sequential", "Model"}


def nested_kinds(graph: Graph, skip: frozenset = frozenset()) -> list[GroupedKind]:
    """Nested Keras models of the same structure (ConvNeXt's downsampling blocks), each
    kind to be merged into one class like a block's instances. Their layers get short
    labels by position (the shared prefix and the counter taken off), so that the
    instances' classes line up."""
    by_signature: dict[tuple, list[Layer]] = {}
    for call in graph.calls:
        layer = call.layer
        if layer.subgraph is None or len(layer.calls) != 1:
            continue
        signature = tuple(segment_signature(s) for s in segments(layer.subgraph))
        by_signature.setdefault(signature, []).append(layer)
    kinds = []
    used: set[str] = set()
    for layers in by_signature.values():
        key = ("nested", id(layers[0]))
        if len(layers) < 2 or key in skip:
            continue
        first = layers[0].subgraph
        inner = [c for c in first.calls if c.layer.class_name != "InputLayer"]
        labels = [_COUNTER.sub("", label) for label in _labels(Segment(inner, None, None), "")]
        labels = _deduplicated(labels)
        for layer in layers:
            calls = [c for c in layer.subgraph.calls if c.layer.class_name != "InputLayer"]
            for call, label in zip(calls, labels):
                layer.subgraph.labels.setdefault(id(call.layer), label)
        model_words = set(graph.name.lower().split("_"))
        words = re.split(r"[^A-Za-z]+", name_prefix(inner) or first.name)
        words = [w for w in words if len(w) > 1 and w.lower() not in model_words]
        name = "".join(w[:1].upper() + w[1:].lower() for w in words) or "Block"
        classes = {layer.subgraph.class_name for layer in layers}
        if len(classes) == 1 and classes.isdisjoint(_PLAIN_MODELS):
            name = own_class_name(classes.pop())  # a KerasHub block: TransformerEncoder
        kinds.append(GroupedKind(_unique(name, used), key, layers=list(layers)))
    return kinds


def _deduplicated(labels: list[str]) -> list[str]:
    """Unique within a block ("conv2d", "conv2d_1", ...), so each names one attribute."""
    seen: dict[str, int] = {}
    unique = []
    for label in labels:
        count = seen.get(label, 0)
        seen[label] = count + 1
        unique.append(label if count == 0 else f"{label}_{count}")
    return unique


def strip_model_prefix(graph: Graph) -> None:
    """keras.applications puts the model's name before every layer's
    (``convnext_tiny_stem``): the labels that name attributes and classes leave it out,
    in nested models too."""
    prefix = f"{graph.name}_"

    def walk(g: Graph) -> None:
        for call in g.calls:
            layer = call.layer
            if layer.name.startswith(prefix) and len(layer.name) > len(prefix):
                g.labels.setdefault(id(layer), layer.name[len(prefix) :])
            if layer.subgraph is not None:
                walk(layer.subgraph)

    walk(graph)

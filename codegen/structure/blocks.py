"""Find repeated blocks in a :class:`~codegen.ir.graph.Graph` from its structure alone.

A *segment* is the run of calls between two consecutive *cut* tensors: points where every
later call depends on one value only (besides model inputs, which any call may read: the
padding mask of a transformer encoder). A residual block, a dense-net layer, an inverted
residual with its skip, an encoder block: each is one segment, entered by one tensor and left
by one. Segments with the same *signature* are instances of one block kind.

The signature is the segment's calls in order, each with its Keras class (or operation),
its wiring (which earlier call of the segment, or the entry, each input comes from) and its
config with what varies between instances taken out: every number (channel counts, kernel
sizes, strides, rates, epsilons) and the layer names. Strings and flags (activation,
padding mode, use_bias, data_format) stay: a block with ``relu`` and one with ``swish``
are different kinds.

An *optional part* is a chain of calls that some instances of a kind have between the entry
and one input of a merge (the projection shortcut of a ResNet block): instances that agree
once it is taken out are one kind with that part optional, written the torchvision way
(``downsample: nn.Module | None``).

Names never decide anything here; they only label what was found.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

from codegen.ir.graph import Call, Graph, Tensor
from codegen.ir.naming import keras_snake_case

# Config keys that never distinguish two instances of a block (they are per-layer labels,
# or training-time options the port does not generate code for).
_IGNORED_KEYS = {"name", "trainable", "dtype", "seed", "batch_input_shape", "input_dim"}
_IGNORED_SUFFIXES = ("_initializer", "_regularizer", "_constraint")
# Merges whose inputs can carry an optional shortcut branch.
_MERGES = {"Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate"}
# Parameter-free activation layers a block may end with.
_ACTIVATIONS = {"Activation", "ReLU", "LeakyReLU", "ELU", "Softmax", "relu", "ops.relu"}
# A block is worth a class from this many calls on (a lone layer stays a line).
MIN_BLOCK_CALLS = 3


@dataclass(eq=False)
class Segment:
    """Calls between two cut tensors: entered by ``entry``, left by ``exit``."""

    calls: list[Call]
    entry: Tensor | None  # None for the segment that starts at the model's inputs
    exit: Tensor
    order: int = 0  # position among the graph's segments
    optional: list[Call] = field(default_factory=list)  # calls of the optional part, if any
    # A template's instances and the pieces matching it (variants.py): the kind they share,
    # and each call's place in the union of the template's steps and the pieces' extra ones.
    kind_key: tuple | None = None
    keys: list[tuple] | None = None

    @property
    def core(self) -> list[Call]:
        """The calls every instance of the kind has (the optional part taken out)."""
        skip = {id(c) for c in self.optional}
        return [c for c in self.calls if id(c) not in skip]


@dataclass(eq=False)
class BlockKind:
    signature: tuple
    instances: list[Segment]
    optional_signature: tuple | None = None  # the optional part, when some instances have it
    # Instances that leave steps out or add some (variants.py): every step's key, in order.
    union: list[tuple] | None = None

    @property
    def calls_per_instance(self) -> int:
        return len(self.instances[0].core)


def segments(graph: Graph) -> list[Segment]:
    """The graph's calls cut at every tensor that alone carries the computation on."""
    calls = [c for c in graph.calls if c.layer.class_name != "InputLayer"]
    # The first block may start right at the model input its first layer reads; the other
    # model inputs (a padding mask) may be read anywhere.
    first = calls[0].inputs[0] if calls and calls[0].inputs else None
    entry = first if any(first is t for t in graph.inputs) else None
    side = {id(t) for t in graph.inputs if t is not entry}
    found = _cut(calls, entry, side, {id(t) for t in graph.outputs})
    return _attach_trailing_activations(_refine(found, side))


def _cut(calls: list[Call], entry: Tensor | None, side: set[int], ends: set[int]) -> list[Segment]:
    """``calls`` cut wherever one value they made is all that later calls (or ``ends``,
    the values read after them) still need; values in ``side`` do not count."""
    position = {id(c): i for i, c in enumerate(calls)}
    last_use: dict[int, int] = {}
    for i, call in enumerate(calls):
        for tensor in call.inputs:
            last_use[id(tensor)] = i
    for tensor_id in ends:
        last_use[tensor_id] = len(calls)
    result: list[Segment] = []
    # the entry counts as live too (read again further on: a residual around the first block)
    live: dict[int, Tensor] = {}
    if entry is not None and id(entry) in last_use and id(entry) not in side:
        live[id(entry)] = entry
    start = 0
    for i, call in enumerate(calls):
        for tensor in call.inputs:
            if last_use.get(id(tensor)) == i:
                live.pop(id(tensor), None)
        for tensor in call.outputs:
            if id(tensor) not in side and last_use.get(id(tensor), -1) > i:
                live[id(tensor)] = tensor
        if len(live) == 1:
            (exit_tensor,) = live.values()
            if exit_tensor.producer is not None and position.get(id(exit_tensor.producer)) == i:
                result.append(Segment(calls[start : i + 1], entry, exit_tensor, len(result)))
                start, entry = i + 1, exit_tensor
    if start < len(calls):
        result.append(Segment(calls[start:], entry, calls[-1].outputs[0], len(result)))
    return result


def _refine(found: list[Segment], side: set[int]) -> list[Segment]:
    """Segments that hold blocks behind a long skip connection, cut again (a U-Net: the
    encoder's output at each level stays live until the decoder concatenates it, so one
    segment runs from there to the decoder). Inside, the skip value may be read anywhere;
    the finer cut is kept where it holds another such level."""
    result: list[Segment] = []
    for segment in found:
        inner = None
        if segment.entry is not None and len(segment.calls) >= 3 * MIN_BLOCK_CALLS:
            inner_side = side | {id(segment.entry)}
            inner = _cut(segment.calls, segment.entry, inner_side, {id(segment.exit)})
            inner = _refine(inner, inner_side) if len(inner) >= 3 else None
        # Another level: a long segment inside, with more after it (the decoder side). A
        # residual block's finer cut ends in its long main path: it stays whole.
        if inner is not None and any(len(s.calls) >= 3 * MIN_BLOCK_CALLS for s in inner[:-1]):
            result.extend(inner)
        else:
            result.append(segment)
    return result


def reads_outside(segment: Segment, side: set[int]) -> bool:
    """Whether a call of ``segment`` reads a value other than its entry, values made inside
    it and ``side`` (the model's inputs): a block then needs more than one input."""
    made = {id(t) for c in segment.calls for t in c.outputs}
    allowed = made | side | ({id(segment.entry)} if segment.entry is not None else set())
    return any(id(t) not in allowed for c in segment.calls for t in c.inputs)


def _attach_trailing_activations(found: list[Segment]) -> list[Segment]:
    """A block's last step is often a parameter-free activation after its merge
    (``relu(x + identity)``): the cut before it is a boundary of equal standing, and the
    block the way people write it includes the activation."""
    merged: list[Segment] = []
    for segment in found:
        previous = merged[-1] if merged else None
        if (
            previous is not None
            and len(segment.calls) == 1
            and len(previous.calls) >= MIN_BLOCK_CALLS
            and _is_activation(segment.calls[0])
            and segment.calls[0].inputs == [previous.exit]
        ):
            previous.calls.append(segment.calls[0])
            previous.exit = segment.exit
            continue
        segment.order = len(merged)
        merged.append(segment)
    return merged


def _is_activation(call: Call) -> bool:
    layer = call.layer
    return (
        not layer.weights
        and layer.subgraph is None
        and len(call.inputs) == 1
        and len(call.outputs) == 1
        and layer.class_name in _ACTIVATIONS
    )


MAX_UNIT_SEGMENTS = 12


def repeating_units(found: list[Segment], min_calls: int = MIN_BLOCK_CALLS) -> list[Segment]:
    """Consecutive segments that repeat together, joined into one segment each time.

    A post-norm transformer block cuts into attention+add | norm | ffn+add | norm; a
    MobileNet block without its skip is a chain of one-layer segments. Where a window of
    segment kinds recurs (two times or more, without overlapping), each occurrence becomes one
    segment. A segment that already repeats as a block on its own only joins a window when
    all its occurrences are inside that window's (two ResNet blocks are not one block).
    Among windows covering the same number of calls, the one whose occurrences carry a
    common Keras name prefix wins, then the earliest: names only choose between boundaries
    the structure allows.
    """
    while True:
        ids: dict[tuple, int] = {}
        kinds = [ids.setdefault(segment_signature(s), len(ids)) for s in found]
        counts: dict[int, int] = {}
        for kind in kinds:
            counts[kind] = counts.get(kind, 0) + 1
        block_on_its_own = [
            counts[k] >= 2 and len(s.calls) >= min_calls for k, s in zip(kinds, found)
        ]
        best = None
        for length in range(2, min(MAX_UNIT_SEGMENTS, len(found) // 2) + 1):
            windows: dict[tuple, list[int]] = {}
            for start in range(len(found) - length + 1):
                if found[start].entry is None:
                    continue
                window = tuple(kinds[start : start + length])
                taken = windows.setdefault(window, [])
                if not taken or taken[-1] + length <= start:
                    taken.append(start)
            for window, starts in windows.items():
                first = starts[0]
                members = found[first : first + length]
                calls = sum(len(m.calls) for m in members)
                if len(starts) < 2 or calls < min_calls:
                    continue
                if all(block_on_its_own[first : first + length]) and not _distinct_halves(
                    members, [counts[k] == len(starts) * window.count(k) for k in window]
                ):
                    continue  # blocks in a row are a stage, not a bigger block
                # A block that repeats on its own joins a larger unit only if it never
                # occurs outside that unit (the FFN half of each transformer block).
                if any(
                    block_on_its_own[first + k] and counts[kind] != len(starts) * window.count(kind)
                    for k, kind in enumerate(window)
                ):
                    continue
                named = sum(
                    bool(name_prefix([c for m in found[i : i + length] for c in m.calls]))
                    for i in starts
                )
                score = (len(starts) * calls, named, -first)
                if best is None or score > best[0]:
                    best = (score, length, starts)
        if best is None:
            return found
        _, length, starts = best
        merged: list[Segment] = []
        index = 0
        starts_set = set(starts)
        while index < len(found):
            if index in starts_set:
                group = found[index : index + length]
                calls = [c for m in group for c in m.calls]
                merged.append(Segment(calls, group[0].entry, group[-1].exit, len(merged)))
                index += length
            else:
                found[index].order = len(merged)
                merged.append(found[index])
                index += 1
        found = merged


def variable_runs(found: list[Segment], min_calls: int = MIN_BLOCK_CALLS) -> list[Segment]:
    """Windows in which one short step repeats a varying number of times, joined: a
    VGG-style stage is some convolutions then a pooling, two in one stage and three in the
    next. With every run of one short kind of segment counted as one step, the windows that
    recur (twice or more) become one segment each; :func:`match_variants` then makes the
    longer ones the shorter ones with steps added. Runs of the same length everywhere are
    left to :func:`repeating_units`."""
    ids: dict[tuple, int] = {}
    kinds = [ids.setdefault(segment_signature(s), len(ids)) for s in found]
    counts: dict[int, int] = {}
    for kind in kinds:
        counts[kind] = counts.get(kind, 0) + 1
    short = [not (counts[k] >= 2 and len(s.calls) >= min_calls) for k, s in zip(kinds, found)]
    runs: list[tuple[int, int]] = []  # (start, end) of each step, a run of one short kind
    for i, kind in enumerate(kinds):
        if runs and short[i] and kinds[runs[-1][0]] == kind and short[runs[-1][0]]:
            runs[-1] = (runs[-1][0], i + 1)
        else:
            runs.append((i, i + 1))
    steps = [kinds[start] for start, _ in runs]
    best = None
    for length in range(2, min(MAX_UNIT_SEGMENTS, len(runs) // 2) + 1):
        windows: dict[tuple, list[int]] = {}
        for start in range(len(runs) - length + 1):
            if found[runs[start][0]].entry is None:
                continue
            taken = windows.setdefault(tuple(steps[start : start + length]), [])
            if not taken or taken[-1] + length <= start:
                taken.append(start)
        for window, starts in windows.items():
            if len(starts) < 2 or len(set(window)) < 2:
                continue
            if not all(short[runs[s + k][0]] for s in starts for k in range(length)):
                continue  # a block that repeats on its own is a stage's member, not a step
            spans = [(runs[s][0], runs[s + length - 1][1]) for s in starts]
            sizes = {tuple(runs[s + k][1] - runs[s + k][0] for k in range(length)) for s in starts}
            if len(sizes) < 2:
                continue  # the same in every occurrence: a fixed window
            calls = [sum(len(found[i].calls) for i in range(a, b)) for a, b in spans]
            if min(calls) < min_calls:
                continue
            score = (sum(calls), -spans[0][0])
            if best is None or score > best[0]:
                best = (score, spans)
    if best is None:
        return found
    merged: list[Segment] = []
    by_start = {a: b for a, b in best[1]}
    index = 0
    while index < len(found):
        if index in by_start:
            group = found[index : by_start[index]]
            calls = [c for m in group for c in m.calls]
            merged.append(Segment(calls, group[0].entry, group[-1].exit, len(merged)))
            index = by_start[index]
        else:
            found[index].order = len(merged)
            merged.append(found[index])
            index += 1
    return merged


def _distinct_halves(members: list[Segment], only_inside: list[bool]) -> bool:
    """Whether blocks that each repeat on their own are the parts of one larger block: a
    pre-norm transformer block is an attention residual then a feed-forward residual, each a
    segment of its own. They join when every occurrence of each is inside the window and no
    two of them are the same block (up to an optional projection or left-out steps): two
    ResNet blocks in a row, one with a projection, stay two blocks of a stage."""
    if not all(only_inside):
        return False
    return not any(_same_block(a, b) for i, a in enumerate(members) for b in members[i + 1 :])


def _same_block(a: Segment, b: Segment) -> bool:
    if segment_signature(a) == segment_signature(b):
        return True
    if a.kind_key is not None and a.kind_key == b.kind_key:
        return True
    for x, y in ((a, b), (b, a)):
        chain = optional_part(x)
        if chain:
            skip = {id(c) for c in chain}
            core = [c for c in x.calls if id(c) not in skip]
            if base_signature(x, core) == base_signature(y, y.calls):
                return True
    return False


def name_prefix(calls: list[Call]) -> str:
    """The Keras name prefix the calls' layers share, up to an ``_`` (``conv2_block1_``);
    keras.ops calls, named automatically, do not count. Empty when there is none."""
    layers = [c.layer for c in calls if not c.layer.is_op]
    names = [layer.name for layer in layers]
    chosen = [layer.name for layer in layers if not _automatic(layer.name, layer.class_name)]
    if len(chosen) >= 2:  # ``max_pooling2d_1`` among ``conv2_block3_*``: Keras named it
        names = chosen
    return shared_prefix(names) if len(names) >= 2 else ""


def shared_prefix(names: list[str]) -> str:
    """The prefix, up to an ``_``, that all of ``names`` share (``conv2_block1_``, ``se_``)."""
    common = os.path.commonprefix(names)
    return common[: common.rfind("_") + 1] if "_" in common else ""


def _automatic(name: str, class_name: str) -> bool:
    """Whether ``name`` is one Keras gives a layer nobody named (``max_pooling2d_1``)."""
    snake = keras_snake_case(class_name)
    return re.fullmatch(rf"{re.escape(snake)}(_\d+)?", name) is not None


def _structural(value: Any) -> Any:
    """The part of a config value that must be equal between instances of one kind."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, str):
        # 'same' or 'valid' padding becomes numbers in torch (or a ZeroPadding2D step more)
        return "#" if value in ("same", "valid") else value
    if isinstance(value, (int, float)):
        return "#"  # a number: varies between instances, becomes a constructor argument
    if isinstance(value, (list, tuple)):
        return tuple(_structural(v) for v in value)
    if isinstance(value, dict):
        return tuple(
            (k, _structural(v))
            for k, v in sorted(value.items())
            if k not in _IGNORED_KEYS and not k.endswith(_IGNORED_SUFFIXES)
        )
    return type(value).__name__


def call_signature(call: Call, local: dict[int, tuple]) -> tuple:
    """One call's class, structural config and wiring (inputs as local references)."""
    layer = call.layer
    wiring = tuple(local.get(id(t), ("outside",)) for t in call.inputs)
    kind = ("ops." if layer.is_op else "") + layer.class_name
    nested = None
    if layer.subgraph is not None:  # a nested model: its own structure is part of the kind
        nested = tuple(segment_signature(s) for s in segments(layer.subgraph))
    return (kind, _structural(layer.config), wiring, len(call.outputs), nested)


def segment_signature(segment: Segment, calls: list[Call] | None = None) -> tuple:
    calls = segment.calls if calls is None else calls
    local: dict[int, tuple] = {}
    if segment.entry is not None:
        local[id(segment.entry)] = ("entry",)
    parts = []
    for index, call in enumerate(calls):
        parts.append(call_signature(call, local))
        for k, tensor in enumerate(call.outputs):
            local[id(tensor)] = ("call", index, k)
    return tuple(parts)


def optional_part(segment: Segment) -> list[Call]:
    """Calls forming a chain from the entry to one input of a merge, other than the path
    the block's own exit comes through (a projection shortcut); empty when there is none."""
    if segment.entry is None:
        return []
    inside = {id(c) for c in segment.calls}
    for merge in segment.calls:
        if merge.layer.class_name not in _MERGES or len(merge.inputs) != 2:
            continue
        # Both inputs come from the entry through calls: the shorter path is the optional
        # one (a shortcut that is the entry itself in the other instances).
        chains = [_chain_from_entry(t, segment.entry, inside) for t in merge.inputs]
        if not all(chains):
            continue
        chain = min(chains, key=len)
        if len(chain) < max(len(c) for c in chains) and not _read_elsewhere(chain, merge, segment):
            return chain
    return []


def _chain_from_entry(tensor: Tensor, entry: Tensor, inside: set[int]) -> list[Call]:
    """The single-input calls leading from ``entry`` to ``tensor`` (in order), if any."""
    chain = []
    while tensor is not entry:
        call = tensor.producer
        if call is None or id(call) not in inside or len(call.inputs) != 1:
            return []
        chain.append(call)
        tensor = call.inputs[0]
    return list(reversed(chain))


def _read_elsewhere(chain: list[Call], merge: Call, segment: Segment) -> bool:
    """Whether a value of the chain is read by a call other than the next one (or the merge)."""
    produced = {id(t) for c in chain for t in c.outputs}
    allowed = {id(c) for c in chain[1:]} | {id(merge)}
    return any(
        id(t) in produced and id(call) not in allowed for call in segment.calls for t in call.inputs
    )


def base_signature(segment: Segment, core: list[Call]) -> tuple:
    """The signature of ``core``, where the merge input an optional chain fed reads the entry."""
    local: dict[int, tuple] = {}
    if segment.entry is not None:
        local[id(segment.entry)] = ("entry",)
    kept = {id(c) for c in core}
    for call in segment.calls:  # values of dropped calls stand for the entry they come from
        if id(call) not in kept:
            for tensor in call.outputs:
                local[id(tensor)] = ("entry",)
    parts = []
    for index, call in enumerate(core):
        parts.append(call_signature(call, local))
        for k, tensor in enumerate(call.outputs):
            local[id(tensor)] = ("call", index, k)
    return tuple(parts)

"""Kinds of repeated blocks in a graph: segments and the units they repeat in
(:mod:`codegen.structure.blocks`), variants with steps left out
(:mod:`codegen.structure.variants`), and kinds that differ only by a projection shortcut.
"""

from __future__ import annotations

from codegen.ir.graph import Graph

from .blocks import (
    MIN_BLOCK_CALLS,
    BlockKind,
    base_signature,
    optional_part,
    reads_outside,
    repeating_units,
    segment_signature,
    segments,
    variable_runs,
)
from .variants import match_variants


def find_blocks(
    graph: Graph, min_calls: int = MIN_BLOCK_CALLS, left_flat: list[str] | None = None
) -> list[BlockKind]:
    """Kinds of blocks that repeat (two instances or more), in order of first appearance.

    A repeat that calls a shared layer (one Keras layer called in several places) is not a
    block: each instance would get its own copy of the weights Keras shares. Such layers'
    names are added to ``left_flat``."""
    kinds: dict[tuple, BlockKind] = {}
    found = match_variants(segments(graph))
    # Units whose steps repeat a varying number of times: the longer are variants too.
    found = match_variants(variable_runs(found, min_calls))
    found = repeating_units(found, min_calls)
    for segment in found:
        if len(segment.calls) < min_calls or segment.entry is None:
            continue
        if reads_outside(segment, {id(t) for t in graph.inputs}):
            continue  # a value from further back (a skip connection): not one-input
        shared = [c.layer.name for c in segment.calls if len(c.layer.calls) > 1]
        if shared:
            if left_flat is not None:
                left_flat.extend(n for n in shared if n not in left_flat)
            continue
        full = segment.kind_key or segment_signature(segment)
        kind = kinds.get(full)
        if kind is None:
            kind = kinds[full] = BlockKind(full, [])
        kind.instances.append(segment)
    _merge_optional_parts(kinds)
    for kind in kinds.values():
        if kind.instances[0].keys is not None:
            kind.union = sorted({k for s in kind.instances for k in s.keys}, key=_union_order)
    return [k for k in kinds.values() if _worth_a_class(k)]


def _worth_a_class(kind: BlockKind) -> bool:
    """Two instances of a short block (a stem and a head that are both conv, norm,
    activation) read better written out than as a class of their own."""
    return len(kind.instances) >= 3 or (len(kind.instances) == 2 and kind.calls_per_instance >= 5)


def _merge_optional_parts(kinds: dict[tuple, BlockKind]) -> None:
    """Join kinds that are equal once one of them loses its optional shortcut chain."""
    for signature, kind in list(kinds.items()):
        segment = kind.instances[0]
        if segment.kind_key is not None:
            continue  # steps some instances lack are handled as variants
        chain = optional_part(segment)
        if not chain:
            continue
        skip = {id(c) for c in chain}
        core = [c for c in segment.calls if id(c) not in skip]
        base = base_signature(segment, core)
        for other_signature, other in list(kinds.items()):
            if other is kind or other_signature not in kinds:
                continue
            if other.instances[0].kind_key is not None:
                continue
            if base_signature(other.instances[0], other.instances[0].calls) != base:
                continue
            for instance in kind.instances:
                instance.optional = optional_part(instance)
            other.instances = sorted(other.instances + kind.instances, key=lambda s: s.order)
            other.optional_signature = segment_signature(segment, chain)
            del kinds[signature]
            break


def _union_order(key: tuple) -> tuple:
    """Template steps in order, each step added after template step j right after it."""
    if key[0] == "t":
        return (key[1], 0, 0)
    return (key[1], 1, key[2], repr(key[3]))

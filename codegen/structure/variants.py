"""Instances of a block that lack some of its steps, or carry a step more: one block with options.

An inverted residual keeps its skip only where the shape allows it, has no expansion
convolution where the expansion ratio is 1, and Keras's applications pad before a stride-2
depthwise convolution. Each is the same block written with ``if`` around a step, which is
how a person writes it (torchvision's ``InvertedResidual``); found here from the structure.

A *template* is a kind of segment that repeats exactly (two instances or more). Runs of
other segments are then split into *pieces*, each the template with some steps left out
(*deletions*) and some extra one-input steps (*insertions*): a piece matches when, once both
are taken out (each value of a left-out step standing for the step's input), the two have
the same signature (classes, structural configs and wiring). Among the ways to split a run,
the one matching most calls wins, calls of pieces that share a Keras name prefix counting
double: names only choose between splits the structure allows.

Each call of every instance gets a *key*, its place in the union of the template and the
insertions; :mod:`codegen.structure.group` labels the calls by key, and
:mod:`codegen.structure.options` writes the steps some instances lack under ``if``.
"""

from __future__ import annotations

from codegen.ir.graph import Call, Tensor

from .blocks import (
    MIN_BLOCK_CALLS,
    Segment,
    call_signature,
    name_prefix,
    optional_part,
    segment_signature,
)

# A piece may carry this many calls more than the template (its insertions).
MAX_INSERTED = 3


def match_variants(found: list[Segment]) -> list[Segment]:
    """``found`` with the pieces that match a template joined into one segment each; every
    instance of a template and its pieces gets ``kind_key`` and per-call ``keys``."""
    counts: dict[tuple, list[Segment]] = {}
    for segment in found:
        if segment.kind_key is not None:
            continue  # a kind found in an earlier pass
        if segment.entry is not None and len(segment.calls) >= MIN_BLOCK_CALLS:
            counts.setdefault(segment_signature(segment), []).append(segment)
    templates = [group for group in counts.values() if len(group) >= 2]
    templates.sort(key=lambda group: (-len(group[0].calls), group[0].order))
    for group in templates:
        found = _split_runs(found, group)
    for position, segment in enumerate(found):
        segment.order = position
    return found


def _split_runs(found: list[Segment], instances: list[Segment]) -> list[Segment]:
    template = instances[0]
    members = {id(s) for s in instances}
    tokens = [_token(c) for c in template.calls]
    shortcut = {id(c) for c in optional_part(template)}  # never a step to leave out
    result: list[Segment] = []
    run: list[Segment] = []
    pieces: list[Segment] = []

    def flush() -> None:
        if run:
            chosen = _best_split(run, template, tokens, shortcut)
            result.extend(chosen)
            pieces.extend(s for s in chosen if s.keys)
            run.clear()

    for segment in found:
        if id(segment) in members or segment.kind_key is not None:
            flush()
            result.append(segment)
        else:
            run.append(segment)
    flush()
    if not pieces:
        return found
    key = ("variants", id(template))
    for segment in instances:
        segment.kind_key = key
        segment.keys = [("t", j) for j in range(len(segment.calls))]
    for piece in pieces:
        piece.kind_key = key
    return result


def _best_split(
    run: list[Segment], template: Segment, tokens: list[tuple], shortcut: set[int]
) -> list[Segment]:
    """The run with its best-scoring pieces joined (dynamic programming over split points)."""
    limit = len(template.calls) + MAX_INSERTED
    best: list[tuple[int, list]] = [(0, [])] * (len(run) + 1)
    for start in range(len(run) - 1, -1, -1):
        score, plan = best[start + 1]
        choice = (score, [("keep", start)] + plan)
        calls: list[Call] = []
        for end in range(start, len(run)):
            calls = calls + run[end].calls
            if len(calls) > limit:
                break
            if run[start].entry is None:
                break
            keys = _match(calls, run[start].entry, template, tokens, shortcut)
            if keys is None:
                continue
            weight = 2 if name_prefix(calls) else 1
            matched = sum(1 for k in keys if k[0] == "t")
            total = matched * weight + best[end + 1][0]
            if total > choice[0]:
                choice = (total, [("piece", start, end, keys)] + best[end + 1][1])
        best[start] = choice
    result = []
    for step in best[0][1]:
        if step[0] == "keep":
            result.append(run[step[1]])
            continue
        _, start, end, keys = step
        calls = [c for s in run[start : end + 1] for c in s.calls]
        piece = Segment(calls, run[start].entry, run[end].exit)
        piece.keys = keys
        result.append(piece)
    return result


def _match(
    calls: list[Call], entry: Tensor, template: Segment, tokens: list[tuple], shortcut: set[int]
):
    """Per-call keys when ``calls`` are the template with some steps left out and some
    added, else None."""
    mine = [_token(c) for c in calls]
    pairs = _common_subsequence(mine, tokens)
    if len(pairs) < max(MIN_BLOCK_CALLS, (len(tokens) + 1) // 2):
        return None  # too little in common
    matched_mine = {i for i, _ in pairs}
    matched_template = {j for _, j in pairs}
    inserted = {id(c) for i, c in enumerate(calls) if i not in matched_mine}
    deleted = {id(c) for j, c in enumerate(template.calls) if j not in matched_template}
    if len(inserted) > MAX_INSERTED:
        return None
    if any(entry in c.inputs for c in calls if id(c) in inserted):
        return None  # a branch beside the block (a projection shortcut), not a step of it
    if deleted & shortcut:
        return None  # the template's shortcut branch: an optional part (kinds.py), not a step
    ours = _elided_signature(calls, entry, inserted)
    theirs = _elided_signature(template.calls, template.entry, deleted)
    if ours is None or ours != theirs:
        return None
    deleted_at = {j for j in range(len(tokens)) if j not in matched_template}
    keys: list[tuple] = []
    previous, run = -1, 0
    by_mine = dict(pairs)
    for i in range(len(calls)):
        if i in by_mine:
            previous, run = by_mine[i], 0
            keys.append(("t", previous))
        else:
            if previous + 1 in deleted_at:
                return None  # a step replaced by another: a different block, not an option
            keys.append(("i", previous, run, mine[i]))
            run += 1
    return keys


def _common_subsequence(a: list[tuple], b: list[tuple]) -> list[tuple[int, int]]:
    """Index pairs of a longest common subsequence of ``a`` and ``b``."""
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) - 1, -1, -1):
        for j in range(len(b) - 1, -1, -1):
            if a[i] == b[j]:
                table[i][j] = table[i + 1][j + 1] + 1
            else:
                table[i][j] = max(table[i + 1][j], table[i][j + 1])
    pairs, i, j = [], 0, 0
    while i < len(a) and j < len(b):
        if a[i] == b[j]:
            pairs.append((i, j))
            i, j = i + 1, j + 1
        elif table[i + 1][j] >= table[i][j + 1]:
            i += 1
        else:
            j += 1
    return pairs


def _token(call: Call) -> tuple:
    """What two calls must share to be the same step: the signature without the wiring."""
    kind, config, _wiring, outputs, nested = call_signature(call, {})
    return (kind, config, len(call.inputs), outputs, nested)


def _elided_signature(calls: list[Call], entry: Tensor | None, elided: set[int]):
    """The signature of ``calls`` without the elided ones, each elided call's value standing
    for its one input besides the block's entry; None when an elided call has more, or is
    not on the main path."""
    local: dict[int, tuple] = {}
    if entry is not None:
        local[id(entry)] = ("entry",)
    parts = []
    for index, call in enumerate(calls):
        if id(call) in elided:
            main = [t for t in call.inputs if t is not entry] or call.inputs
            if len(main) != 1 or len(call.outputs) != 1:
                return None
            # A step on the block's main path reads the value just computed (a branch
            # beside it, like a projection shortcut, is not a step that may be left out).
            if main[0] is not (calls[index - 1].outputs[0] if index else entry):
                return None
            local[id(call.outputs[0])] = local.get(id(main[0]), ("outside",))
            continue
        parts.append(call_signature(call, local))
        for k, tensor in enumerate(call.outputs):
            local[id(tensor)] = ("call", len(parts) - 1, k)
    return tuple(parts)

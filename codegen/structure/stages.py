"""Chains of blocks become stages: ``self.conv2 = nn.Sequential(Block(...), Block2(...))``.

Enters: a class whose forward calls block modules (after :mod:`codegen.structure.unify`).
Leaves: the same class with every run of block calls that feed each other (each value read
only by the next block) held in one ``nn.Sequential`` per stage, and the weight keys moved to
follow the module tree (``conv2_block1.conv1.weight`` -> ``conv2.0.conv1.weight``).

Where a run splits into stages comes from the Keras names when they say it (``conv2_block*``,
``conv3_block*``); otherwise a new stage starts at each block that changes the shape of the
tensor (the block that downsamples or widens).
"""

from __future__ import annotations

import re
from dataclasses import replace

from codegen.conversion.model import ClassModel, Statement, WeightEntry

from .unify import SELF_CALL as _CALL

_BLOCK = re.compile(r"^(\w+)\(.*\)$")


def make_stages(cls: ClassModel, block_classes: set[str]) -> None:
    declared = dict(cls.declarations)
    blocks = {
        attr
        for attr, expr in cls.declarations
        if (m := _BLOCK.match(expr)) is not None and m.group(1) in block_classes
    }
    runs: list[list[int]] = []
    for index, stmt in enumerate(cls.statements):
        match = _CALL.match(stmt.expr)
        if match is None or match.group(1) not in blocks or len(stmt.names) != 1:
            continue
        previous = cls.statements[index - 1] if index else None
        chained = (
            runs
            and runs[-1][-1] == index - 1
            and previous is not None
            and previous.names == ["x"]
            and match.group(2) == "x"
        )
        if chained:
            runs[-1].append(index)
        else:
            runs.append([index])
    stages = [stage for run in runs for stage in _split(run, cls, declared) if len(stage) >= 2]
    if not stages:
        return
    names = _stage_names(stages, cls)
    renamed: dict[str, str] = {}
    replaced: dict[int, Statement] = {}
    removed: set[int] = set()
    stage_declarations: dict[str, tuple[str, str]] = {}
    for name, stage in zip(names, stages):
        attrs = [_CALL.match(cls.statements[i].expr).group(1) for i in stage]
        for position, attr in enumerate(attrs):
            renamed[attr] = f"{name}.{position}"
        modules = ", ".join(declared[attr] for attr in attrs)
        stage_declarations[attrs[0]] = (name, f"nn.Sequential({modules})")
        first, last = cls.statements[stage[0]], cls.statements[stage[-1]]
        source = _CALL.match(first.expr).group(2)
        labels = [cls.statements[i].label or attrs[k] for k, i in enumerate(stage)]
        replaced[stage[0]] = Statement(
            expr=f"self.{name}({source})",
            outputs=last.outputs,
            comment=f"{_span(labels)}: {len(stage)} blocks",
            reads=first.reads,
            names=last.names,
            label=_span(labels),
        )
        removed.update(stage[1:])
    cls.statements = [
        replaced.get(i, stmt) for i, stmt in enumerate(cls.statements) if i not in removed
    ]
    declarations = []
    for attr, expr in cls.declarations:
        if attr in stage_declarations:
            declarations.append(stage_declarations[attr])
        elif attr not in renamed:
            declarations.append((attr, expr))
    cls.declarations = declarations
    cls.weights = [_moved(w, renamed) for w in cls.weights]


def _moved(entry: WeightEntry, renamed: dict[str, str]) -> WeightEntry:
    head, _, rest = entry.key.partition(".")
    if head not in renamed:
        return entry
    return replace(entry, key=f"{renamed[head]}.{rest}")


def _split(run: list[int], cls: ClassModel, declared: dict[str, str]) -> list[list[int]]:
    attrs = [_CALL.match(cls.statements[i].expr).group(1) for i in run]
    prefixes = [_stage_prefix(a) for a in attrs]
    if any(prefixes):
        stages: list[list[int]] = []
        for index, prefix in zip(run, prefixes):
            if stages and prefix and _stage_prefix(_attr(cls, stages[-1][-1])) == prefix:
                stages[-1].append(index)
            else:
                stages.append([index])
        return stages
    # A stage starts where a block changes the shape of what flows through (the block
    # that downsamples or widens, as in torchvision's ``_make_layer``).
    stages = []
    for index in run:
        stmt = cls.statements[index]
        changes = bool(stmt.reads) and stmt.reads[0].shape[1:] != stmt.outputs[0].shape[1:]
        if stages and not changes:
            stages[-1].append(index)
        else:
            stages.append([index])
    return stages


def _attr(cls: ClassModel, index: int) -> str:
    return _CALL.match(cls.statements[index].expr).group(1)


def _stage_prefix(attr: str) -> str:
    """``conv2_block1`` -> ``conv2``; empty when the name has no such part."""
    head, _, tail = attr.rpartition("_")
    # "conv2_block1": the stage is conv2; "block_1" is a counter Keras added, not a stage
    return head if head and re.search(r"\d", tail) and re.search(r"[A-Za-z]", tail) else ""


def _stage_names(stages: list[list[int]], cls: ClassModel) -> list[str]:
    taken = {attr for attr, _ in cls.declarations} | {attr for attr, _ in cls.buffers}
    prefixes = []
    for stage in stages:  # a name every block of the stage carries, or none
        found = {_stage_prefix(_attr(cls, index)) for index in stage}
        prefixes.append(found.pop() if len(found) == 1 else "")
    names = []
    for number, prefix in enumerate(prefixes, start=1):
        candidate = prefix if prefix and prefixes.count(prefix) == 1 else ""
        if not candidate:
            candidate = "blocks" if len(stages) == 1 else f"stage{number}"
        while candidate in taken:
            candidate += "_"
        taken.add(candidate)
        names.append(candidate)
    return names


def _span(labels: list[str]) -> str:
    first = labels[0].split(" (")[0]
    last = labels[-1].split(" (")[0]
    return first if first == last else f"{first} ... {last}"

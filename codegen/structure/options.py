"""Steps some instances of a block leave out, written once under ``if self.use_<step>:``.

Enters: the instance classes of a kind found by :mod:`codegen.structure.variants` (labels
by step, :attr:`GroupedKind.union_labels`). Leaves: every instance class in the union's
shape, the steps it lacks filled in from an instance that has them (their numbers marked as
*wildcards*: they say nothing about this instance), ready for :func:`unify._merge`; and,
after the merge, the flags that switch each optional run on.

The main value is ``x`` throughout, so that a step left out simply leaves ``x`` as it was:
every class starts with ``x = inputs`` (dropped again when the first step always runs).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace

from codegen.conversion.model import ClassModel, Statement

from .group import GroupedKind

PRELUDE = "inputs"  # the label of the ``x = inputs`` line
# ``self.conv(F.pad(x, (0, 1, 0, 1)))``: a module called on a padded value.
_PADDED_CALL = re.compile(r"^self\.(\w+)\(F\.pad\((\w+), (\([\d, ]+\)(?:, value=[^()]*)?)\)\)$")


@dataclass
class Filled:
    classes: list[ClassModel]
    wildcards: list[set[int]]  # per class: indices (declarations, then statements) filled in
    present: dict[str, tuple[bool, ...]]  # label -> which instances have the step
    step_of: list[str]  # the step each statement of the union computes
    attr_step: dict[str, str]  # the step each declared module belongs to
    union: list[str]  # every step, in order


def fill_variants(classes: list[ClassModel], kind: GroupedKind) -> Filled | None:
    steps: list[dict[str, list[Statement]]] = []
    for cls in classes:
        by_label = _statements_by_label(cls)
        if by_label is None or len(cls.params) != 1:
            return None
        steps.append(by_label)
    union = [PRELUDE]
    for label in kind.union_labels or _steps_in_order(
        classes[0]
    ):  # a padding step split off goes right before its step
        if any(f"{label}:pad" in own for own in steps):
            union.append(f"{label}:pad")
        union.append(label)
    present = {label: tuple(label in own for own in steps) for label in union}
    donors: dict[str, int] = {}
    for label in union:
        if not any(present[label]):
            return None
        donors[label] = present[label].index(True)
    owners = []
    for cls, own in zip(classes, steps):
        owner = _declaration_steps(cls, own)
        if owner is None:
            return None
        owners.append(owner)
    filled_classes, wildcards = [], []
    for index, cls in enumerate(classes):
        statements: list[Statement] = []
        declarations: list[tuple[str, str]] = []
        filled_declarations: set[int] = set()
        filled_statements: set[int] = set()
        step_of: list[str] = []
        for label in union:
            own = label in steps[index]
            source = index if own else donors[label]
            lines = steps[source][label]
            if not own:
                filled_statements.update(range(len(statements), len(statements) + len(lines)))
            statements.extend(_copy(st) for st in lines)
            step_of.extend([label] * len(lines))
            for attr, expr in classes[source].declarations:
                if owners[source][attr] == label:
                    if not own:
                        filled_declarations.add(len(declarations))
                    declarations.append((attr, expr))
        copy = replace(
            cls, declarations=declarations, statements=statements, params=[PRELUDE], weights=[]
        )
        filled_classes.append(copy)
        wildcards.append(filled_declarations | {len(declarations) + i for i in filled_statements})
        if index == 0:
            steps_in_order = step_of
        elif step_of != steps_in_order:
            return None  # a step written in more lines in one instance than in another
    for copy in filled_classes:
        if [a for a, _ in copy.declarations] != [a for a, _ in filled_classes[0].declarations]:
            return None
    attr_step = {attr: step for owner in owners for attr, step in owner.items()}
    return Filled(filled_classes, wildcards, present, steps_in_order, attr_step, union)


def _steps_in_order(cls: ClassModel) -> list[str]:
    """The steps of a class, in the order its forward computes them."""
    labels = cls.graph.labels if cls.graph is not None else {}
    steps = []
    for stmt in cls.statements:
        label = _step(stmt, labels)
        if label is not None and label not in steps:
            steps.append(label)
    return steps


def _step(stmt: Statement, labels: dict[int, str]) -> str | None:
    """The step a line computes: its layer's label (the shortcut line: its own label)."""
    if not stmt.outputs:
        return stmt.label or None
    steps = {labels.get(id(t.producer.layer)) if t.producer else None for t in stmt.outputs}
    return steps.pop() if len(steps) == 1 and None not in steps else None


def _declaration_steps(cls: ClassModel, steps: dict[str, list[Statement]]) -> dict[str, str] | None:
    """The step each declared module belongs to: the one whose lines use it."""
    owner: dict[str, str] = {}
    for attr, _ in cls.declarations:
        used = re.compile(rf"\bself\.{re.escape(attr)}\b")
        found = {
            label for label, lines in steps.items() if any(used.search(st.expr) for st in lines)
        }
        if len(found) != 1:
            return None
        owner[attr] = found.pop()
    return owner


def _statements_by_label(cls: ClassModel) -> dict[str, list[Statement]] | None:
    """The class's forward, in the canonical form, grouped by the step each line computes."""
    labels = cls.graph.labels if cls.graph is not None else {}
    param = cls.params[0] if cls.params else PRELUDE
    prelude = Statement(expr=PRELUDE, outputs=[], comment="", reads=[], names=["x"], label=PRELUDE)
    grouped: dict[str, list[Statement]] = {PRELUDE: [prelude]}
    order: list[str] = []
    param_live, first = True, True
    for stmt in cls.statements:
        label = _step(stmt, labels)
        if label is None:
            return None
        if label in grouped and order and order[-1] != label:
            return None  # one step's lines must be together
        stmt = _copy(stmt)
        if param_live:  # the parameter is ``inputs``; the first line reads the chain's ``x``
            stmt.expr = re.sub(rf"\b{param}\b", PRELUDE, stmt.expr)
        if first:
            stmt.expr = re.sub(rf"\b{PRELUDE}\b", "x", stmt.expr)
            first = False
        if param in stmt.names:
            param_live = False
        padded = _PADDED_CALL.match(stmt.expr)
        if padded is not None and padded.group(2) == "x":
            # TensorFlow's uneven 'same' padding (stride 2): a step of its own, which the
            # instances that pad evenly (stride 1: padding= in the module) leave out.
            note = f"{stmt.label}: 'same' padding, uneven as TensorFlow pads"
            pad = replace(_copy(stmt), expr=f"F.pad(x, {padded.group(3)})", label=note, names=["x"])
            pad.comment = note
            grouped[f"{label}:pad"] = [pad]
            order.append(f"{label}:pad")
            stmt.expr = f"self.{padded.group(1)}(x)"
        grouped.setdefault(label, []).append(stmt)
        if not order or order[-1] != label:
            order.append(label)
    return grouped


def flag_names(filled: Filled, union: list[str], taken: set[str]) -> dict[str, str]:
    """A ``use_<step>`` flag for each run of optional steps that come and go together."""
    runs: list[list[str]] = []
    previous = None
    for label in union:
        pattern = filled.present[label]
        if all(pattern):
            previous = None
            continue
        if previous == pattern and runs:
            runs[-1].append(label)
        else:
            runs.append([label])
        previous = pattern
    flags: dict[str, str] = {}
    by_pattern: dict[tuple, str] = {}
    for run in runs:
        pattern = filled.present[run[0]]
        if pattern not in by_pattern:
            name = f"use_{_stem(run)}"
            base, n = name, 1
            while name in taken:
                n += 1
                name = f"{base}{n}"
            taken.add(name)
            by_pattern[pattern] = name
        for label in run:
            flags[label] = by_pattern[pattern]
    return flags


def _stem(labels: list[str]) -> str:
    labels = [label.replace(":", "_") for label in labels]  # "conv:pad", the padding split off
    common = os.path.commonprefix(labels)
    if common in labels or common.endswith("_"):
        return common.rstrip("_") or labels[0]
    if "_" in common:
        return common[: common.rfind("_")]
    return labels[0]


def apply_flags(unified: ClassModel, filled: Filled, flags: dict[str, str]) -> list[list[str]]:
    """Guard the optional steps of the merged class; returns each instance's flag keywords."""
    if not flags:
        _drop_prelude(unified)
        return [[] for _ in filled.classes]
    order = list(dict.fromkeys(flags.values()))
    defaults: dict[str, bool] = {}
    for flag in order:
        label = next(lab for lab, f in flags.items() if f == flag)
        pattern = filled.present[label]
        defaults[flag] = sum(pattern) * 2 >= len(pattern)
    statements = []
    for index, stmt in enumerate(unified.statements):
        label = filled.step_of[index]
        if label in flags:
            stmt = replace(stmt, guard=f"self.{flags[label]}")
        statements.append(stmt)
    unified.statements = statements
    declarations = []
    for attr, expr in unified.declarations:
        flag = flags.get(filled.attr_step.get(attr, ""))
        declarations.append((attr, f"{expr} if {flag} else None" if flag else expr))
    unified.declarations = declarations
    unified.declarations[:0] = [(flag, flag) for flag in order]
    unified.init_params.extend(f"{flag}: bool = {defaults[flag]}" for flag in order)
    keywords = []
    for position in range(len(filled.classes)):
        mine = []
        for flag in order:
            label = next(lab for lab, f in flags.items() if f == flag)
            value = filled.present[label][position]
            if value != defaults[flag]:
                mine.append(f"{flag}={value}")
        keywords.append(mine)
    _drop_prelude(unified)
    return keywords


def _drop_prelude(cls: ClassModel) -> None:
    """``x = inputs`` only stays when the first step may be left out."""
    rest = cls.statements[1:]
    if not rest or rest[0].guard:
        return
    rest[0] = replace(rest[0], expr=re.sub(r"\bx\b", PRELUDE, rest[0].expr))
    readers = [st for st in rest if re.search(rf"\b{PRELUDE}\b", st.expr)]
    if len(readers) == 1 and readers[0] is rest[0]:  # read once: the engine's own ``x``
        rest[0] = replace(rest[0], expr=re.sub(rf"\b{PRELUDE}\b", "x", rest[0].expr))
        cls.params = ["x"]
    cls.statements = rest


def _copy(stmt: Statement) -> Statement:
    return replace(stmt, outputs=list(stmt.outputs), reads=list(stmt.reads), names=list(stmt.names))

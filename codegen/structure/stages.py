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

import ast
import re
import textwrap
from dataclasses import replace

from codegen.conversion.model import ClassModel, Statement, WeightEntry

from .builders import stage_builder, unique_name
from .columns import (
    compute_flags,
    compute_widths,
    derived_flags,
    derived_widths,
    guards,
    unread_as_none,
)
from .parameters import parameter_name

# ``self.<module>(<argument>)``: a block call; only the first of a stage may read more
# than the value before it (``self.block1(token_embedding + x)``).
_CALL = re.compile(r"^self\.(\w+)\((.+)\)$")
_BLOCK = re.compile(r"^(\w+)\(.*\)$")


def make_stages(
    cls: ClassModel, block_classes: dict[str, ClassModel], classes: list[ClassModel] = ()
) -> dict[str, str]:
    """Returns where each block moved (``conv2_block1`` -> ``conv2.0``). ``classes``: every
    class of the port (a block's constructor may change only where all its calls are seen)."""
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
    # Each group of block calls becomes one module: a table-built stack of stages, or a stage.
    groups: list[tuple[str, list[list[int]], list | None]] = []  # kind, stages, table rows
    for run in runs:
        rest: list[int] = []
        for part in _same_class(run, cls, declared):
            split = _split(part, cls, declared)
            rows = _table_rows(split, cls, declared, block_classes)
            if rows is None:
                rest.extend(part)
                continue
            if rest:
                groups.extend(_stage_groups(rest, cls, declared))
                rest = []
            groups.append(("table", split, rows))
        if rest:
            groups.extend(_stage_groups(rest, cls, declared))
    if not groups:
        return {}
    names = _stage_names([g for kind, stages, _ in groups for g in stages if kind == "stage"], cls)
    used = set(names)  # a second stack of stages must not take the first one's name
    renamed: dict[str, str] = {}
    replaced: dict[int, Statement] = {}
    removed: set[int] = set()
    group_declarations: dict[str, tuple[str, str]] = {}
    built = _built_stages(groups, cls, declared, block_classes)
    for group_index, (kind, stages, rows) in enumerate(groups):
        indices = [i for stage in stages for i in stage]
        attrs = [_attr(cls, i) for i in indices]
        # the block itself, not keras.ops calls written into its argument
        labels = [
            (cls.statements[i].label or attrs[k]).split(", ")[-1] for k, i in enumerate(indices)
        ]
        if kind == "table":
            name = _unique_name("stages", cls, used)
            used.add(name)
            expr, note = _table(cls, name, stages, rows, declared, block_classes, classes)
            for number, stage in enumerate(stages):
                for position, index in enumerate(stage):
                    renamed[_attr(cls, index)] = f"{name}.{number}.{position}"
            plural = "s" if len(stages) != 1 else ""
            comment = (
                f"{_span(labels)}: {len(indices)} blocks in {len(stages)} stage{plural} ({note})"
            )
        else:
            name = names.pop(0)
            for position, attr in enumerate(attrs):
                renamed[attr] = f"{name}.{position}"
            expr = built.get(group_index) or (
                "nn.Sequential(" + ", ".join(_compressed([declared[a] for a in attrs])) + ")"
            )
            comment = f"{_span(labels)}: {len(indices)} blocks"
        group_declarations[attrs[0]] = (name, expr)
        first, last = cls.statements[indices[0]], cls.statements[indices[-1]]
        replaced[indices[0]] = Statement(
            expr=f"self.{name}({_CALL.match(first.expr).group(2)})",
            outputs=last.outputs,
            comment=comment,
            reads=first.reads,
            names=last.names,
            label=_span(labels),
        )
        removed.update(indices[1:])
    cls.statements = [
        replaced.get(i, stmt) for i, stmt in enumerate(cls.statements) if i not in removed
    ]
    declarations = []
    for attr, expr in cls.declarations:
        if attr in group_declarations:
            declarations.append(group_declarations[attr])
        elif attr not in renamed:
            declarations.append((attr, expr))
    cls.declarations = declarations
    cls.weights = [_moved(w, renamed) for w in cls.weights]
    return renamed


def _built_stages(groups, cls, declared, block_classes) -> dict[int, str]:
    """Stages of one block class built by one function (``make_stage(...)``), by group."""
    by_class: dict[str, list[int]] = {}
    for number, (kind, stages, _) in enumerate(groups):
        callees = {_BLOCK.match(declared[_attr(cls, i)]).group(1) for i in stages[0]}
        if kind == "stage" and len(callees) == 1:
            by_class.setdefault(callees.pop(), []).append(number)
    taken = _module_names(cls)
    built: dict[int, str] = {}
    for block_name, numbers in by_class.items():
        stages = [[declared[_attr(cls, i)] for i in groups[n][1][0]] for n in numbers]
        parameters = [parameter_name(p) for p in block_classes[block_name].init_params]
        found = stage_builder(block_name, parameters, stages, taken)
        if found is None:
            continue
        source, calls = found
        cls.constants.append(source)
        taken.add(source.split("(", 1)[0].removeprefix("def "))
        built.update(zip(numbers, calls))
    return built


def _stage_groups(run: list[int], cls: ClassModel, declared: dict[str, str]) -> list[tuple]:
    """The run's stages of two blocks or more, each a group of its own."""
    split = _split(run, cls, declared)
    if len(run) >= 2 and all(len(s) == 1 for s in split):
        split = [run]  # every block changes the shape (VGG's stages): the chain is one stage
    return [("stage", [s], None) for s in split if len(s) >= 2]


def _same_class(run: list[int], cls: ClassModel, declared: dict[str, str]) -> list[list[int]]:
    """The run cut where the block class changes."""
    parts: list[list[int]] = []
    previous = None
    for index in run:
        callee = _BLOCK.match(declared[_attr(cls, index)]).group(1)
        if parts and callee == previous:
            parts[-1].append(index)
        else:
            parts.append([index])
        previous = callee
    return parts


# A stack of stages is built from a table from this many block constructor calls on (fewer
# read better written out).
TABLE_FROM = 9


def _table_rows(stages, cls, declared, block_classes) -> list[list[list[str]]] | None:
    """Every block's arguments in order of its class's constructor, stage by stage; None
    when the run is short, mixes classes, or passes something other than plain values."""
    exprs = [declared[_attr(cls, i)] for stage in stages for i in stage]
    if len(exprs) < TABLE_FROM or len(_compressed(exprs)) < TABLE_FROM:
        return None
    callees = {_BLOCK.match(e).group(1) for e in exprs}
    if len(callees) != 1:
        return None
    block = block_classes[callees.pop()]
    parameters = [(parameter_name(p), _default(p)) for p in block.init_params]
    rows = []
    for stage in stages:
        row = []
        for index in stage:
            call = ast.parse(declared[_attr(cls, index)], mode="eval").body
            values = [a for a in call.args]
            given = {k.arg: k.value for k in call.keywords}
            if not all(map(_literal, [*values, *given.values()])):
                return None
            arguments = []
            for position, (name, default) in enumerate(parameters):
                if position < len(values):
                    arguments.append(ast.unparse(values[position]))
                elif name in given:
                    arguments.append(ast.unparse(given[name]))
                elif default is not None:
                    arguments.append(default)
                else:
                    return None
            row.append(arguments)
        rows.append(row)
    return rows


def _table(cls, name, stages, rows, declared, block_classes, classes) -> tuple[str, str]:
    """The table as a module constant before ``cls``; the expression building the stages.
    Runs of equal blocks are written once with their count where that is shorter (depth as
    data); a column that grows with the block's index over the whole stack (EfficientNet's
    stochastic-depth rates) is then computed, not tabled."""
    block_name = _BLOCK.match(declared[_attr(cls, stages[0][0])]).group(1)
    block = block_classes[block_name]
    constant = name.upper()
    taken = _module_names(cls)
    while constant in taken:
        constant += "_"
    names = [parameter_name(p) for p in block.init_params]
    only = _only_in(block_name, [cls, *classes], rows)
    by_index = _index_linear(rows, names, block) if only else None
    column = None if by_index is None else by_index[0]
    derived: dict[int, str] = {}
    if only:
        unread_as_none(rows, names, block)
        derived = derived_flags(rows, names, block)
        compute_flags(block, {names[j]: expr for j, expr in derived.items()})
        widths = derived_widths(rows, names, block)
        compute_widths(block, {names[j]: expr for j, expr in widths.items()})
        derived.update(widths)
    plain_names, plain_rows = _without_columns(names, rows, set(derived))
    kept, stripped = _without_columns(names, rows, {*derived, column})
    runs = [_runs(stage) for stage in stripped]
    # Table lines either way; runs take a longer header and builder (a function with a
    # computed column).
    plain = [_stage_line([f"({_tuple(arguments)})" for arguments in row]) for row in plain_rows]
    run_items = [[f"(({_tuple(a)}), {count})" for a, count in stage] for stage in runs]
    run_text = [_stage_line(items) for items in run_items]
    plain_lines = sum(map(_line_count, plain))
    run_lines = sum(map(_line_count, run_text)) + 6 + 12 * (column is not None)
    # A computed column says more than its values (the schedule, not its digits): worth a
    # few lines more.
    slack = 3 if column is not None else 0
    if run_lines > plain_lines + slack or all(count == 1 for stage in runs for _, count in stage):
        lines = [*_table_header(block, plain_names), f"{constant} = (", *plain, ")"]
        cls.constants.append("\n".join(lines))
        expr = (
            f"nn.Sequential(*[nn.Sequential(*[{block_name}(*arguments) for arguments in stage])"
            f" for stage in {constant}])"
        )
        return expr, f"their arguments in {constant}"
    text = (
        f"The blocks of each stage as runs of equal {block_name}s: (arguments, how many), the"
        f" arguments being ({', '.join(kept)})."
    )
    if column is not None:
        text += f" {names[column]} grows with the block's index: {by_index[1]}."
    lines = ["# " + line for line in textwrap.wrap(text, 86)]
    lines += [f"{constant} = (", *run_text, ")"]
    cls.constants.append("\n".join(lines))
    if column is None:
        expr = (
            f"nn.Sequential(*[nn.Sequential(*[{block_name}(*arguments) for arguments, count"
            f" in stage for _ in range(count)]) for stage in {constant}])"
        )
        return expr, f"their arguments in {constant}"
    # The column moves to the end of the constructor, a keyword with the neutral default.
    parameter = next(p for p in block.init_params if parameter_name(p) == names[column])
    block.init_params.remove(parameter)
    block.init_params.append(f"{parameter_name(parameter)}: float = 0.0")
    builder = f"make_{name}"
    cls.constants.append(
        "\n".join(
            [
                f"def {builder}(table):",
                f'    """The stages of {block_name}s the table describes."""',
                "    stages, index = [], 0",
                "    for runs in table:",
                "        blocks = []",
                "        for arguments, count in runs:",
                "            for _ in range(count):",
                f"                rate = {by_index[1]}",
                f"                blocks.append({block_name}(*arguments,"
                f" {names[column]}=rate))",
                "                index += 1",
                "        stages.append(nn.Sequential(*blocks))",
                "    return nn.Sequential(*stages)",
            ]
        )
    )
    return f"{builder}({constant})", f"their arguments in {constant}"


def _literal(node: ast.expr) -> bool:
    """A number, string, bool or None, or a tuple of them (a padding)."""
    if isinstance(node, ast.Tuple):
        return all(isinstance(e, ast.Constant) for e in node.elts)
    return isinstance(node, ast.Constant)


def _without_columns(names: list[str], rows, dropped: set) -> tuple[list[str], list]:
    """The table's parameter names and rows without the columns ``dropped``."""
    kept = [n for j, n in enumerate(names) if j not in dropped]
    rows = [[[a for j, a in enumerate(r) if j not in dropped] for r in stage] for stage in rows]
    return kept, rows


def _stage_line(items: list[str]) -> str:
    """One stage of the table as one line; black leaves it so where it fits (no trailing
    comma inside), else writes one block per line."""
    return f"    ({_tuple(items)}),"


def _line_count(line: str) -> int:
    """Lines black makes of one stage line of the table."""
    return 1 if len(line) <= 88 else line.count("), (") + 3


def _tuple(arguments: list[str]) -> str:
    return f"{', '.join(arguments)}{',' * (len(arguments) == 1)}"


def _runs(stage: list[list[str]]) -> list[tuple[list[str], int]]:
    runs: list[tuple[list[str], int]] = []
    for arguments in stage:
        if runs and runs[-1][0] == arguments:
            runs[-1] = (arguments, runs[-1][1] + 1)
        else:
            runs.append((arguments, 1))
    return runs


def _only_in(block_name: str, classes: list[ClassModel], rows) -> bool:
    """Whether every call of the block class, in any class or module-level code of the
    port, is a row of this table (its constructor may then change)."""
    call = re.compile(rf"\b{re.escape(block_name)}\(")
    texts = {id(c): c for c in classes}.values()  # the staged class may be listed twice
    calls = sum(
        len(call.findall(text))
        for c in texts
        for text in [*(expr for _, expr in c.declarations), *c.constants]
    )
    return calls == sum(len(stage) for stage in rows)


def _index_linear(rows, names: list[str], block: ClassModel) -> tuple[int, str] | None:
    """A float column equal to ``rate * index / blocks`` for every block of the stack (the
    stochastic-depth schedule of EfficientNet), to the bit; a block whose flags turn off
    every step that reads the column may hold any value. (column, expression)."""
    blocks = [r for stage in rows for r in stage]
    n = len(blocks)
    for j in range(len(names)):
        try:
            values = [float(r[j]) for r in blocks]
        except ValueError:
            continue
        if not all("." in r[j] or "e" in r[j] for r in blocks) or len(set(values)) < 3:
            continue
        # The rate from any block (the last may be a filler, where its step is left out).
        for rate in dict.fromkeys(float(f"{values[b] * n / b:.10g}") for b in range(n - 1, 0, -1)):
            if _fills_only_unread(rate, values, rows, names, block, j):
                return j, f"{rate!r} * index / {n}"
    return None


def _fills_only_unread(rate: float, values, rows, names, block: ClassModel, j: int) -> bool:
    """Whether every block off ``rate * index / n`` is a filler: the column unread there."""
    blocks = [r for stage in rows for r in stage]
    n = len(blocks)
    misses = [b for b in range(n) if rate * b / n != values[b]]
    if len(misses) > len(rows):  # no more than one filler per stage
        return False
    if not misses:
        return True
    flags = guards(block, names[j])
    if flags is None or not flags <= set(names):
        return False
    columns = [names.index(g) for g in flags]
    return all(blocks[b][f] == "False" for b in misses for f in columns)


def _table_header(block: ClassModel, names: list[str]) -> list[str]:
    text = f"The arguments of each {block.name}, stage by stage: ({', '.join(names)})."
    return ["# " + line for line in textwrap.wrap(text, 86)]


def _default(text: str) -> str | None:
    return text.split("=", 1)[1].strip() if "=" in text else None


def _compressed(exprs: list[str]) -> list[str]:
    """Block constructor calls, runs of them written as one comprehension: ``*[Block(256,
    64) for _ in range(5)]`` where they are equal, ``*[Block(64 + 32 * i) for i in
    range(6)]`` where whole-number arguments step evenly."""
    calls = [_call_parts(e) for e in exprs]
    items: list[str] = []
    start = 0
    while start < len(exprs):
        end = start + 1  # calls[start:end]: the longest run one expression covers
        while end < len(exprs) and _progression(calls[start : end + 1]) is not None:
            end += 1
        pattern = _progression(calls[start:end]) if end - start > 1 else None
        if pattern is not None and (end - start >= 3 or not pattern[1]):
            variable = "i" if pattern[1] else "_"
            items.append(f"*[{pattern[0]} for {variable} in range({end - start})]")
            start = end
        else:
            items.append(exprs[start])
            start += 1
    return items


def _call_parts(expr: str):
    try:
        call = ast.parse(expr, mode="eval").body
    except SyntaxError:
        return None
    if not isinstance(call, ast.Call) or not isinstance(call.func, ast.Name):
        return None
    return call


def _progression(calls) -> tuple[str, bool] | None:
    """One expression for all ``calls`` (same callee and keywords; each argument the same
    text in all, or whole numbers stepping evenly), with whether it uses ``i``."""
    if any(c is None for c in calls):
        return None
    first = calls[0]
    if any(
        ast.unparse(c.func) != ast.unparse(first.func)
        or len(c.args) != len(first.args)
        or [k.arg for k in c.keywords] != [k.arg for k in first.keywords]
        for c in calls
    ):
        return None
    columns = list(zip(*[[*c.args, *(k.value for k in c.keywords)] for c in calls]))
    texts = []
    uses_i = False
    for column in columns:
        values = [ast.unparse(v) for v in column]
        if len(set(values)) == 1:
            texts.append(values[0])
            continue
        numbers = [v.value for v in column if isinstance(v, ast.Constant)]
        if len(numbers) != len(column) or not all(
            type(n) is int for n in numbers  # noqa: E721 (bool is not a width)
        ):
            return None
        step = numbers[1] - numbers[0]
        if any(b - a != step for a, b in zip(numbers, numbers[1:])):
            return None
        texts.append(f"{numbers[0]} + {step} * i" if step > 0 else f"{numbers[0]} - {-step} * i")
        uses_i = True
    positional = texts[: len(first.args)]
    keywords = [f"{k.arg}={t}" for k, t in zip(first.keywords, texts[len(first.args) :])]
    return f"{ast.unparse(first.func)}({', '.join([*positional, *keywords])})", uses_i


def _unique_name(wanted: str, cls: ClassModel, used: set[str]) -> str:
    """``stages``, else ``stages2``, ``stages3``..."""
    taken = {attr for attr, _ in cls.declarations} | {attr for attr, _ in cls.buffers} | used
    return unique_name(wanted, taken)


def _module_names(cls: ClassModel) -> set[str]:
    """The names the module-level code before ``cls`` defines (tables, builders)."""
    names = {c.split(" = ", 1)[0].splitlines()[-1] for c in cls.constants}
    return names | {m for c in cls.constants for m in re.findall(r"^def (\w+)", c, re.MULTILINE)}


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
    # that downsamples or widens, as in torchvision's ``_make_layer``), unless the block
    # before it changed it the same way (dense blocks each add the same channels).
    stages = []
    previous = None
    for index in run:
        change = _change(cls.statements[index])
        if stages and (change is None or change == previous):
            stages[-1].append(index)
        else:
            stages.append([index])
        previous = change
    return stages


def _change(stmt: Statement) -> tuple | None:
    """How a block call changes its input's shape (per axis: the difference), None if not."""
    if not stmt.reads or not stmt.outputs:
        return None
    before, after = stmt.reads[0].shape[1:], stmt.outputs[0].shape[1:]
    if before == after:
        return None
    if len(before) != len(after) or None in before or None in after:
        return ("other",)
    return tuple(b - a for a, b in zip(before, after))


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

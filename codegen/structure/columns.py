"""The columns of a stage table (one row of constructor arguments per block), made shorter
where the rows themselves say how.

- A ``use_*`` flag that one comparison of the block's other arguments gives in every row
  is computed in the constructor, as a person writes it (``self.use_add = in_channels ==
  out_channels``, ``self.use_pad = stride != 1``), and leaves the table.
- An argument read only under flags that are all False in a row is never read there: the
  row holds ``None``, not a value copied from another block.
"""

from __future__ import annotations

import ast
import re

from codegen.conversion.model import ClassModel

from .parameters import parameter_name


def unread_as_none(rows, names: list[str], block: ClassModel) -> None:
    """Write ``None`` (in place) where a row's flags leave an argument unread. Flags and
    widths keep their values: a block's widths are its own even where a step is left out."""
    for j, name in enumerate(names):
        if name.startswith("use_") or name.endswith("channels"):
            continue
        flags = guards(block, name)
        if not flags or not flags <= set(names):
            continue
        columns = [names.index(flag) for flag in flags]
        for stage in rows:
            for row in stage:
                if all(row[f] == "False" for f in columns):
                    row[j] = "None"


def derived_flags(rows, names: list[str], block: ClassModel) -> dict[int, str]:
    """Flag columns a comparison of other columns gives in every row: column -> expression
    of the constructor's parameters. Widths are compared with each other (the residual of
    equal widths, the expansion of a wider middle); other numbers with one of their values,
    a stride's first (``stride != 1``)."""
    flat = [row for stage in rows for row in stage]
    numbers = [j for j in range(len(names)) if all(_is_int(row[j]) for row in flat)]
    widths = [j for j in numbers if names[j].endswith("channels")]
    strides = _stride_parameters(block)
    others = sorted(
        (j for j in numbers if j not in widths), key=lambda j: (names[j] not in strides, j)
    )
    found: dict[int, str] = {}
    for f, name in enumerate(names):
        if not name.startswith("use_") or any(row[f] not in ("True", "False") for row in flat):
            continue
        wanted = [row[f] == "True" for row in flat]
        found_expr = _comparison(flat, names, wanted, widths, others)
        if found_expr is not None:
            found[f] = found_expr
    return found


def compute_flags(block: ClassModel, derived: dict[str, str]) -> None:
    """Move the derived flags from the constructor's parameters into its body."""
    block.init_params = [p for p in block.init_params if parameter_name(p) not in derived]
    declarations = []
    for attr, expr in block.declarations:
        if attr in derived and expr == attr:
            expr = derived[attr]
        else:
            for flag in derived:
                expr = re.sub(rf" if {flag} else None$", f" if self.{flag} else None", expr)
        declarations.append((attr, expr))
    block.declarations = declarations


def guards(block: ClassModel, parameter: str) -> set[str] | None:
    """The ``use_*`` flags every use of ``parameter`` in ``block`` runs under (all of them
    False: the value is never read), or None when some use runs unconditionally."""
    used = re.compile(rf"\b{re.escape(parameter)}\b")
    found: set[str] = set()
    for statement in block.statements:
        if used.search(statement.expr):
            if not statement.guard.startswith("self.use_"):
                return None
            found.add(statement.guard.removeprefix("self."))
    for attr, expr in block.declarations:
        if attr == parameter or not used.search(expr):
            continue  # ``self.drop_rate = drop_rate`` only stores it
        optional = re.search(r"\bif (?:self\.)?(use_\w+)\s+else None$", expr)
        if optional is None:
            return None
        found.add(optional.group(1))
    return found or None


def _comparison(flat, names, wanted, widths, others) -> str | None:
    for position, i in enumerate(widths):
        for j in widths[position + 1 :]:
            same = [row[i] == row[j] for row in flat]
            if same == wanted:
                return f"{names[i]} == {names[j]}"
            if [not s for s in same] == wanted:
                return f"{names[i]} != {names[j]}"
    for j in others:
        off = {row[j] for row, on in zip(flat, wanted) if not on}
        on = {row[j] for row, on in zip(flat, wanted) if on}
        if len(off) == 1 and not off & on:
            return f"{names[j]} != {off.pop()}"
        if len(on) == 1 and not off & on:
            return f"{names[j]} == {on.pop()}"
    return None


def _is_int(text: str) -> bool:
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return False
    return type(value) is int


def _stride_parameters(block: ClassModel) -> set[str]:
    """Parameters passed as a module's ``stride=``."""
    return {name for _, expr in block.declarations for name in re.findall(r"\bstride=(\w+)", expr)}


def derived_widths(rows, names: list[str], block: ClassModel) -> dict[int, str]:
    """Width columns another width column gives in every row by a whole ratio (a
    squeeze-excite's ``in_channels // 4``): column -> expression. Only widths passed as
    whole arguments in the constructor, never read by forward."""
    flat = [row for stage in rows for row in stage]
    widths = [
        j
        for j, name in enumerate(names)
        if name.endswith("channels") and all(_is_int(row[j]) for row in flat)
    ]
    kept = {attr for attr, expr in block.declarations if attr == expr}
    found: dict[int, str] = {}
    for j in widths:
        if names[j] in kept or not _whole_arguments(block, names[j]):
            continue
        for i in widths:
            if i == j or i in found:
                continue
            pairs = [(int(row[i]), int(row[j])) for row in flat]
            if any(b <= 0 for _, b in pairs):
                continue
            ratio = pairs[0][0] // pairs[0][1]
            if ratio > 1 and all(a // ratio == b for a, b in pairs):
                found[j] = f"{names[i]} // {ratio}"
                break
            ratio = pairs[0][1] // max(pairs[0][0], 1)
            if ratio > 1 and all(a * ratio == b for a, b in pairs):
                found[j] = f"{names[i]} * {ratio}"
                break
    return found


def compute_widths(block: ClassModel, derived: dict[str, str]) -> None:
    """Write the derived widths into the constructor's calls; drop their parameters."""
    block.init_params = [p for p in block.init_params if parameter_name(p) not in derived]
    declarations = []
    for attr, expr in block.declarations:
        for name, value in derived.items():
            expr = _as_argument(name).sub(value, expr)
        declarations.append((attr, expr))
    block.declarations = declarations


def _as_argument(name: str) -> re.Pattern:
    """``name`` as a whole argument of a call: ``f(name, ...)``, ``f(a, name)``."""
    return re.compile(rf"(?<=[(,] ){name}(?=[,)])|(?<=\(){name}(?=[,)])")


def _whole_arguments(block: ClassModel, name: str) -> bool:
    """Whether every use of ``name`` in the constructor is a whole call argument."""
    anywhere = re.compile(rf"\b{name}\b")
    whole = _as_argument(name)
    texts = [expr for _, expr in block.declarations] + [s.expr for s in block.statements]
    uses = sum(len(anywhere.findall(t)) for t in texts)
    return uses > 0 and uses == sum(len(whole.findall(t)) for t in texts)

"""Last checks on generated code before it is rendered.

Converters write numbers from the config with ``repr()``; a config holding ``nan`` or
``inf`` (a damaged or hostile file) would give code naming an undefined ``nan``/``inf``
that compiles and then fails at run time. Such a layer is reported as unsupported instead.
"""

from __future__ import annotations

import ast

from codegen.conversion.statements import PLACEHOLDER
from codegen.errors import UnsupportedError

_NON_FINITE = {"nan", "inf"}


def _names(expr: str) -> set[str]:
    try:
        tree = ast.parse(PLACEHOLDER.sub("x", expr), mode="eval")
    except SyntaxError:
        return set()
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}


def check_session(session) -> None:
    """Raise :class:`UnsupportedError` for declarations/statements using ``nan``/``inf``."""
    problems = []
    for cls in session.classes:
        for attr, expr in cls.declarations:
            if _names(expr) & _NON_FINITE:
                problems.append(
                    f"{attr!r} ({cls.name}): its config has a non-finite number (nan or inf)"
                )
        for stmt in cls.statements:
            if _names(stmt.expr) & _NON_FINITE:
                problems.append(f"{stmt.label}: its config has a non-finite number (nan or inf)")
    if problems:
        raise UnsupportedError(problems)

"""Instrumenting the forward: a module source in, compiled code that records each value out.

In: the module's source text (the generated one, or the user's edited ``model.py``) and the
generated :class:`ClassModel` of every class. Out: :class:`Instrumented`, the source compiled
in memory with each forward assignment that matches a generated statement wrapped in a
recording call (``x = _k2t_tap(key, <expr>)``), and which generated statements matched.
Executed with a :class:`Recorder` as the tap (:func:`load_instrumented`), the module records
each matched statement's first value as numpy. Nothing instrumented is ever written to disk.

Statements are matched to the generated ones by their syntax tree, so a hand-edited
``model.py`` is still compared layer by layer wherever its structure still matches.
"""

from __future__ import annotations

import ast
import difflib
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codegen.conversion.model import ClassModel, Statement

TAP = "_k2t_tap"


def statement_line(stmt: Statement) -> str:
    return f"{', '.join(stmt.names)} = {stmt.expr}"


@dataclass
class Instrumented:
    code: Any  # compiled module code
    # (class name, generated statement index) -> "same" | "edited"
    matched: dict[tuple[str, int], str]
    # (class name, generated statement index) -> the user's line, where edited
    user_lines: dict[tuple[str, int], str]
    missing_classes: list[str] = field(default_factory=list)


def instrument(
    source: str, classes: list[ClassModel], filename: str = "<keras2torch report>"
) -> Instrumented:
    """Compile ``source`` with every forward assignment that matches a generated one recorded.

    Each class's forward statements are aligned with the generated ones by syntax tree
    (difflib over ``ast.dump``); where the user replaced lines one for one and kept their
    targets, the edited line is compared too. Raises SyntaxError for source that does not parse.
    """
    tree = ast.parse(source, filename=filename)
    result = Instrumented(None, {}, {})
    for cls in classes:
        forward = _find_forward(tree, cls.name)
        if forward is None:
            result.missing_classes.append(cls.name)
            continue
        assigns = [node for node in forward.body if isinstance(node, ast.Assign)]
        generated = []
        for stmt in cls.statements:
            try:
                generated.append(ast.dump(ast.parse(statement_line(stmt)).body[0]))
            except SyntaxError:  # cannot happen for generated code; never match it then
                generated.append(f"<unparsable {id(stmt)}>")
        users = [ast.dump(node) for node in assigns]
        pairs: list[tuple[int, int, str]] = []
        matcher = difflib.SequenceMatcher(None, generated, users, autojunk=False)
        for tag, i1, i2, j1, j2 in matcher.get_opcodes():
            if tag == "equal":
                pairs += [(i1 + k, j1 + k, "same") for k in range(i2 - i1)]
            elif tag == "replace" and i2 - i1 == j2 - j1:
                for k in range(i2 - i1):
                    targets = ast.parse(statement_line(cls.statements[i1 + k])).body[0].targets
                    theirs = assigns[j1 + k].targets
                    if [ast.dump(t) for t in targets] == [ast.dump(t) for t in theirs]:
                        pairs.append((i1 + k, j1 + k, "edited"))
        for gen_index, user_index, how in pairs:
            node = assigns[user_index]
            key = (cls.name, gen_index)
            result.matched[key] = how
            if how == "edited":
                result.user_lines[key] = ast.unparse(node)
            node.value = ast.Call(
                func=ast.Name(id=TAP, ctx=ast.Load()),
                args=[
                    ast.Constant(value=cls.name),
                    ast.Constant(value=gen_index),
                    node.value,
                    ast.Name(id="self", ctx=ast.Load()),
                ],
                keywords=[],
            )
    ast.fix_missing_locations(tree)
    result.code = compile(tree, filename, "exec")
    return result


def _find_forward(tree: ast.Module, class_name: str) -> ast.FunctionDef | None:
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name == "forward":
                    return item
    return None


class Recorder:
    """The tap: stores each statement's first value (as numpy) and returns it unchanged,
    also by the module that ran it (``paths``: id(module) -> its path in the model, set
    once the model is built), so each instance of a block class is seen apart."""

    def __init__(self) -> None:
        self.values: dict[tuple, Any] = {}
        self.paths: dict[int, str] = {}

    def __call__(self, class_name: str, index: int, value: Any, module: Any = None) -> Any:
        keys = [(class_name, index)]
        if module is not None and id(module) in self.paths:
            keys.append((class_name, index, self.paths[id(module)]))
        for key in keys:
            if key not in self.values:  # a nested model called twice: its first call
                self.values[key] = to_numpy(value)
        return value


def to_numpy(value: Any) -> Any:
    import torch

    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy().copy()
    if isinstance(value, (tuple, list)):
        return type(value)(to_numpy(v) for v in value)
    return value


def load_instrumented(
    instrumented: Instrumented, recorder: Recorder, filename: str, search_path: Path | None = None
) -> types.ModuleType:
    name = f"keras2torch_report_{abs(hash(filename))}"
    module = types.ModuleType(name)
    module.__file__ = filename
    module.__dict__[TAP] = recorder
    sys.modules[name] = module  # dataclasses & co. look their module up
    added = False
    if search_path is not None and str(search_path) not in sys.path:
        sys.path.insert(0, str(search_path))
        added = True
    try:
        exec(instrumented.code, module.__dict__)  # noqa: S102 - the generated/user's own module
    finally:
        sys.modules.pop(name, None)
        if added:
            sys.path.remove(str(search_path))
    return module

"""Stages that differ only in their numbers, built by one function, as torchvision's
``_make_layer`` builds ResNet's: ``self.conv3 = make_stage(256, 512, 128, 2, blocks=4)``.

Enters: the block constructor calls of each stage of one block class (a first block, with
its projection shortcut passed as a module, then equal blocks). Leaves: the function's
source and each stage's call of it; or None where the stages do not follow one pattern.

Every number in the function is either the same in all stages (written as it is) or equal,
in every stage, to one of the first block's arguments (written as that argument's name), so
each call builds exactly the modules it replaces.
"""

from __future__ import annotations

import ast

from codegen.ir.naming import keras_snake_case

from .aligned import with_defaults

# A builder is worth its lines from this many stages on.
MIN_STAGES = 2


def stage_builder(
    block_name: str,
    parameters: list[str],
    stages: list[list[str]],
    taken: set[str],
) -> tuple[str, list[str]] | None:
    """``parameters``: the block constructor's parameter names, in order; ``stages``: each
    stage's block constructor calls. (function source, one call per stage) or None."""
    if len(stages) < MIN_STAGES or any(len(stage) < 2 for stage in stages):
        return None
    if any(len(set(stage[1:])) != 1 for stage in stages):
        return None  # the blocks after the first are not all one call
    firsts = with_defaults([stage[0] for stage in stages])
    rests = with_defaults([stage[1] for stage in stages])
    if firsts is None or rests is None:
        return None
    first_trees = [ast.parse(e, mode="eval").body for e in firsts]
    rest_trees = [ast.parse(e, mode="eval").body for e in rests]
    head = first_trees[0]
    if not all(_shape(t) == _shape(head) for t in first_trees):
        return None
    if not all(_shape(t) == _shape(rest_trees[0]) for t in rest_trees):
        return None
    if not isinstance(head, ast.Call) or not any(
        isinstance(k.value, ast.Call) for k in head.keywords
    ):
        return None  # no module passed in (a downsample): the calls are short as they are
    if len(head.args) > len(parameters) or any(k.arg is None for k in head.keywords):
        return None
    # The builder's parameters: the first block's positional arguments that vary.
    names = parameters[: len(head.args)]
    columns = [[_constant(t.args[j]) for t in first_trees] for j in range(len(head.args))]
    if any(None in column for column in columns):
        return None
    varying = [j for j, column in enumerate(columns) if len(set(map(repr, column))) > 1]
    given = {names[j]: columns[j] for j in varying}
    function = unique_name(
        f"make_{keras_snake_case(block_name)}_stage".replace("make_block_", "make_"), taken
    )
    first = _template(first_trees, given, own={j: names[j] for j in varying})
    rest = _template(rest_trees, given, own=None)
    if first is None or rest is None:
        return None
    # Modules passed by keyword become local variables named after the keyword.
    locals_ = []
    for keyword in first.keywords:
        if isinstance(keyword.value, ast.Call):
            locals_.append(f"    {keyword.arg} = {ast.unparse(keyword.value)}")
            keyword.value = ast.Name(keyword.arg, ast.Load())
    arguments = [names[j] for j in varying]
    passed = " and ".join(k.arg for k in first.keywords if isinstance(k.value, ast.Name))
    doc = (
        f'    """A stage of {block_name}s: the first with its {passed}, then ``blocks - 1``'
        ' equal ones."""'
    )
    source = "\n".join(
        [
            f"def {function}({', '.join([*arguments, 'blocks'])}):",
            doc,
            *locals_,
            "    return nn.Sequential(",
            f"        {ast.unparse(first)},",
            f"        *[{ast.unparse(rest)} for _ in range(blocks - 1)],",
            "    )",
        ]
    )
    calls = []
    for s, stage in enumerate(stages):
        values = [repr(columns[j][s]) for j in varying]
        calls.append(f"{function}({', '.join([*values, f'blocks={len(stage)}'])})")
    return source, calls


def _template(
    trees: list[ast.expr], given: dict[str, list], own: dict[int, str] | None
) -> ast.Call | None:
    """The first tree with each constant written as a literal (the same in every stage) or
    as the name of the builder parameter equal to it in every stage; None if neither.
    ``own``: for the first block's call, its positional arguments that are parameters."""
    template = ast.parse(ast.unparse(trees[0]), mode="eval").body
    nodes = [[n for n in ast.walk(t) if isinstance(n, ast.Constant)] for t in [template, *trees]]
    positions = {id(arg): j for j, arg in enumerate(template.args)} if own is not None else {}
    replacements: dict[int, str] = {}
    for node, *values in zip(*nodes):
        if id(node) in positions:  # the first block's own argument: itself or a literal
            if positions[id(node)] in own:
                replacements[id(node)] = own[positions[id(node)]]
            continue
        column = [v.value for v in values]
        if len({repr(v) for v in column}) == 1:
            continue
        match = next((n for n in given if _equal(given[n], column)), None)
        if match is None:
            return None
        replacements[id(node)] = match
    return _Substitute(replacements).visit(template)


class _Substitute(ast.NodeTransformer):
    def __init__(self, replacements: dict[int, str]) -> None:
        self.replacements = replacements

    def visit_Constant(self, node: ast.Constant) -> ast.expr:
        name = self.replacements.get(id(node))
        return node if name is None else ast.Name(name, ast.Load())


def _equal(a: list, b: list) -> bool:
    return all(type(x) is type(y) and x == y for x, y in zip(a, b))


def _constant(node: ast.expr):
    return node.value if isinstance(node, ast.Constant) else None


def _shape(tree: ast.expr) -> str:
    """The tree with its constants blanked: stages that differ only in numbers agree."""
    blank = ast.parse(ast.unparse(tree), mode="eval").body
    for node in ast.walk(blank):
        if isinstance(node, ast.Constant):
            node.value = 0
    return ast.dump(blank)


def unique_name(wanted: str, taken: set[str]) -> str:
    """``wanted``, else ``wanted2``, ``wanted3``... (the first not in ``taken``)."""
    candidate, number = wanted, 1
    while candidate in taken:
        number += 1
        candidate = f"{wanted}{number}"
    return candidate

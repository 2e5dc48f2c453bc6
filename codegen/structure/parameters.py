"""Names for what varies between the instances of a block: its constructor arguments.

A number that varies fills an argument of a module constructor (``nn.Conv2d``'s
``out_channels``, ``stride``): the argument's name is the first guess; the block's input and
output widths become ``in_channels`` and ``out_channels`` wherever they appear.
"""

from __future__ import annotations

import ast
import inspect
import re
import tokenize
from dataclasses import dataclass

from torch import nn

from codegen.conversion.model import ClassModel

# Positional arguments of the helper modules converters write (torch's own modules tell
# theirs through their signatures).
_HELPER_POSITIONAL = {"BatchNorm": ("num_features",)}
# torch's terse argument names, as constructor arguments of a block
_READABLE = {"p": "drop_rate", "negative_slope": "slope"}
_INPUT_ARGS = ("in_channels", "in_features", "num_features")
CHANNEL_ARGS = (
    "in_channels",
    "out_channels",
    "in_features",
    "out_features",
    "num_features",
    "num_channels",
    "normalized_shape",
)


@dataclass
class Slot:
    declaration: int  # index in the declarations (then the forward statements)
    token: int  # index of the number among the expression's tokens
    attr: str
    argument: str


def block_widths(classes: list[ClassModel], side: str) -> tuple[str, ...] | None:
    """Each instance's channel count (last Keras axis) of its one input or output."""
    counts = []
    for cls in classes:
        tensors = getattr(cls.graph, side) if cls.graph is not None else []
        if len(tensors) != 1 or not tensors[0].shape or tensors[0].shape[-1] is None:
            return None
        counts.append(str(tensors[0].shape[-1]))
    return tuple(counts)


def width_role(vector: tuple[str, ...], inputs, outputs) -> str:
    """``in_channels``/``out_channels`` for numbers that are the block's input/output width
    (``inputs``/``outputs``: :func:`block_widths`)."""
    if vector == inputs:
        return "in_channels"
    if vector == outputs:
        return "out_channels"
    return ""


def widths_first(groups: dict, inputs, outputs) -> dict:
    """The block's input and output widths first, as torch's own modules take them."""
    rank = {inputs: 0, outputs: 1}
    order = sorted(enumerate(groups), key=lambda item: (rank.get(item[1], 2), item[0]))
    return {vector: groups[vector] for _, vector in order}


def _positional(callee: str) -> tuple[str, ...]:
    """Names of a constructor's positional parameters: torch's signature for ``nn``
    modules, the table above for keras2torch's helper modules."""
    if callee in _HELPER_POSITIONAL:
        return _HELPER_POSITIONAL[callee]
    module = getattr(nn, callee, None) or getattr(nn.functional, callee, None)
    try:
        parameters = inspect.signature(module).parameters.values()
    except (TypeError, ValueError):
        return ()
    return tuple(p.name for p in parameters if p.kind is p.POSITIONAL_OR_KEYWORD)


def parameter_name(text: str) -> str:
    """A constructor parameter's name from its text (``use_expand: bool = True``)."""
    return text.split(":")[0].split("=")[0].strip()


# Marks an argument of a block class made here (a squeeze-excite's ``channels``): the
# block's parameter is named after the attribute too (``se_channels``).
INNER = "inner:"


def argument_names(
    tokens: list[tokenize.TokenInfo], blocks: dict[str, tuple[str, ...]] | None = None
) -> dict[int, str]:
    """For each token index inside a call's arguments: the argument it belongs to.
    ``blocks``: the block classes already made, with their parameters."""
    blocks = blocks or {}
    names: dict[int, str] = {}
    stack: list[list] = []  # [callee, positional index, keyword or None]
    previous_name = ""
    for k, token in enumerate(tokens):
        if token.string == "(":
            callee = previous_name.rsplit(".", 1)[-1]
            if callee:
                stack.append([callee, 0, None])
            else:  # a tuple: it belongs to the enclosing argument
                stack.append(list(stack[-1]) if stack else ["", 0, None])
                stack[-1][0] = "(tuple)" + (stack[-1][0] or "")
        elif token.string == ")":
            if stack:
                stack.pop()
        elif token.string == "," and stack:
            frame = stack[-1]
            if not frame[0].startswith("(tuple)"):
                frame[1] += 1
                frame[2] = None
        elif token.string == "=" and stack and k > 0 and tokens[k - 1].type == tokenize.NAME:
            stack[-1][2] = tokens[k - 1].string
        elif token.type == tokenize.NUMBER and stack:
            callee, position, keyword = stack[-1]
            callee = callee.replace("(tuple)", "")
            if callee in blocks:
                known = blocks[callee]
                if keyword is None and position < len(known):
                    keyword = known[position]
                names[k] = INNER + (keyword or f"arg{position}")
                continue
            if keyword is None:
                known = _positional(callee)
                keyword = known[position] if position < len(known) else f"arg{position}"
            names[k] = _READABLE.get(keyword, keyword)
        if token.type == tokenize.NAME:
            previous_name = (
                previous_name + token.string if previous_name.endswith(".") else token.string
            )
        elif token.string == "." and previous_name:
            previous_name += "."
        else:
            previous_name = ""
    return names


def parameter_names(
    groups: list[list[Slot]], n_declarations: int, roles: list[str] | None = None
) -> list[str]:
    """A readable, unique name for each group of slots that vary together: the block's
    ``in_channels`` and ``out_channels`` (its input's and output's widths, from ``roles``;
    else the first layer's input and the last layer's output), ``channels`` for the width
    in between, else the argument's own name (``stride``), prefixed with the attribute
    where two groups would share it."""
    proposals = []
    roles = roles or [""] * len(groups)
    widths = 0
    for members, role in zip(groups, roles):
        arguments = {m.argument for m in members}
        channel_like = bool(arguments & set(CHANNEL_ARGS))
        if role:
            proposals.append(role)
        elif members[0].argument.startswith(INNER):
            proposals.append(f"{members[0].attr}_{members[0].argument.removeprefix(INNER)}")
        elif channel_like and any(roles):  # widths inside a block: "channels", then by layer
            proposals.append("channels" if widths == 0 else f"{members[0].attr}_channels")
            widths += 1
        elif any(m.declaration == 0 and m.argument in _INPUT_ARGS for m in members):
            proposals.append("in_channels")
        elif channel_like and any(m.declaration == n_declarations - 1 for m in members):
            proposals.append("out_channels")
        elif channel_like:
            proposals.append("channels")
        else:
            proposals.append(members[0].argument)
    counts = {p: proposals.count(p) for p in proposals}
    names, used = [], set()
    for proposal, members in zip(proposals, groups):
        argument = members[0].argument.removeprefix(INNER)
        name = proposal if counts[proposal] == 1 else f"{members[0].attr}_{argument}"
        base, n = name, 1
        while name in used:
            n += 1
            name = f"{base}_{n}"
        used.add(name)
        names.append(name)
    return names


def join_tuple_parameters(block: ClassModel, arguments: list[list[str]]) -> None:
    """A tuple written of parameters only, ``nn.ZeroPad2d((pad, pad_2, pad, pad_2))``, where
    they are read nowhere else, becomes one parameter holding the tuple (in place)."""
    names = [parameter_name(p) for p in block.init_params]
    texts = [expr for _, expr in block.declarations] + [s.expr for s in block.statements]
    for d, (attr, expr) in enumerate(block.declarations):
        for node in ast.walk(ast.parse(expr, mode="eval")):
            if not isinstance(node, ast.Tuple) or len(node.elts) < 2:
                continue
            parts = [e.id if isinstance(e, ast.Name) else None for e in node.elts]
            if None in parts or not set(parts) <= set(names) or len(set(parts)) < 2:
                continue
            uses = sum(len(re.findall(rf"\b{p}\b", t)) for t in texts for p in set(parts))
            if uses != len(parts):
                continue
            positions = [names.index(p) for p in dict.fromkeys(parts)]
            for row in arguments:
                values = dict(zip(names, row))
                row[positions[0]] = f"({', '.join(values[p] for p in parts)})"
                for position in sorted(positions[1:], reverse=True):
                    del row[position]
            segment = ast.get_source_segment(expr, node)
            block.declarations[d] = (attr, expr.replace(segment, parts[0], 1))
            for position in sorted(positions[1:], reverse=True):
                del block.init_params[position]
            return join_tuple_parameters(block, arguments)  # the next tuple, if any

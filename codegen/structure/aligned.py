"""Declarations of one block kind's instances written alike, so that they line up token by
token (:mod:`codegen.structure.unify` then compares them number by number): torch's defaults
filled in where a converter left a keyword out, an int written as the tuple it stands for.
"""

from __future__ import annotations

import ast
import inspect
import re

from torch import nn


def with_defaults(exprs: list[str]) -> list[str] | None:
    """The expressions with every keyword any of them passes to a ``nn.<Module>`` written
    out in all (torch's default where a converter left it out), so they line up token by
    token; None when they cannot (a keyword without a known default)."""
    trees = [ast.parse(e, mode="eval") for e in exprs]
    calls = [[n for n in ast.walk(t) if isinstance(n, ast.Call)] for t in trees]
    if any(len(c) != len(calls[0]) for c in calls):
        return None
    for nodes in zip(*calls):
        keywords = []
        for node in nodes:
            for kw in node.keywords:
                if kw.arg is not None and kw.arg not in keywords:
                    keywords.append(kw.arg)
        defaults = _defaults(nodes[0].func)
        for node in nodes:
            present = {kw.arg: kw for kw in node.keywords}
            ordered = []
            for name in keywords:
                if name in present:
                    ordered.append(present[name])
                elif name in defaults:
                    ordered.append(ast.keyword(arg=name, value=ast.Constant(defaults[name])))
                else:
                    return None
            node.keywords = ordered
        _tuples_where_any_has_one(nodes)
    return [ast.unparse(t) for t in trees]


# Arguments a single int stands for the same int on every side or axis (torch's own rule).
_PER_AXIS = {"kernel_size", "stride", "padding", "dilation", "output_padding"}


def _tuples_where_any_has_one(nodes: tuple[ast.Call, ...]) -> None:
    """``nn.ZeroPad2d(1)`` next to ``nn.ZeroPad2d((0, 1, 0, 1))`` (a stride-2 'same' pad that
    is even at one size and uneven at another), ``padding=1`` next to ``padding=(1, 2)``:
    the int written as the tuple it means, so the instances line up token by token."""
    func = nodes[0].func
    if not (isinstance(func, ast.Attribute) and re.search(r"(Conv|Pool|Pad)\dd$", func.attr)):
        return

    def slots(node: ast.Call) -> dict:
        found = {kw.arg: kw for kw in node.keywords if kw.arg in _PER_AXIS}
        if "Pad" in func.attr and node.args:
            found[0] = node
        return found

    def value(holder):
        return holder.args[0] if isinstance(holder, ast.Call) else holder.value

    def put(holder, new):
        if isinstance(holder, ast.Call):
            holder.args[0] = new
        else:
            holder.value = new

    for key in {k for node in nodes for k in slots(node)}:
        holders = [slots(node).get(key) for node in nodes]
        lengths = {
            len(value(h).elts) for h in holders if h is not None and isinstance(value(h), ast.Tuple)
        }
        if len(lengths) != 1:
            continue
        (length,) = lengths
        for holder in holders:
            if holder is None:
                continue
            v = value(holder)
            if isinstance(v, ast.Constant) and type(v.value) is int:
                put(holder, ast.Tuple([ast.Constant(v.value) for _ in range(length)], ast.Load()))


def _defaults(func: ast.expr) -> dict:
    """Default keyword values of ``nn.<Name>`` (torch's own signature)."""
    if not (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)):
        return {}
    if func.value.id != "nn" or not hasattr(nn, func.attr):
        return {}
    try:
        parameters = inspect.signature(getattr(nn, func.attr)).parameters.values()
    except (TypeError, ValueError):
        return {}
    return {
        p.name: p.default
        for p in parameters
        if p.default is not inspect.Parameter.empty
        and isinstance(p.default, (int, float, str, bool, type(None)))
    }

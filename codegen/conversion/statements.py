"""Forward statements while converting: placeholders for tensors, then tidying.

Converters refer to a tensor by a placeholder (:func:`placeholder`); names are chosen once
every statement is known. Before naming, :func:`drop_aliases` removes statements that only
rename a value and :func:`inline_operations` writes keras.ops calls inside the statement
that uses them, as the Keras source did.
"""

from __future__ import annotations

import ast
import re

from codegen.ir.graph import Tensor

from .model import ClassModel, Statement

# A tensor inside an expression, until names are chosen: NUL, id(tensor), NUL (a NUL byte
# can never come from the model file into the code).
PLACEHOLDER = re.compile("\x00(\\d+)\x00")


def placeholder(tensor: Tensor) -> str:
    return f"\x00{id(tensor)}\x00"


# An inlined expression keeps the line short enough to read at a glance.
INLINE_MAX_LENGTH = 72


def drop_aliases(
    statements: list[Statement], input_ids: set[int]
) -> tuple[list[Statement], dict[int, Tensor]]:
    """Drop statements that only rename a value (``x = x``: a transpose the layout absorbed,
    a Flatten of a flat tensor); later reads use the value itself.

    Returns the remaining statements and ``id(renamed tensor) -> tensor``.
    """
    aliases: dict[int, Tensor] = {}
    kept: list[Statement] = []

    def redirect(match: re.Match) -> str:
        key = int(match.group(1))
        return f"\x00{id(aliases[key]) if key in aliases else key}\x00"

    for stmt in statements:
        if aliases:
            stmt.expr = PLACEHOLDER.sub(redirect, stmt.expr)
            stmt.reads = [aliases.get(id(t), t) for t in stmt.reads]
        bare = PLACEHOLDER.fullmatch(stmt.expr)
        if bare and len(stmt.outputs) == 1 and id(stmt.outputs[0]) not in input_ids:
            source = next((t for t in stmt.reads if id(t) == int(bare.group(1))), None)
            if source is not None:
                aliases[id(stmt.outputs[0])] = source
                continue
        kept.append(stmt)
    return kept, aliases


def inline_operations(statements: list[Statement], keep: set[int]) -> list[Statement]:
    """Write a keras.ops call inside the statement that uses it, as the Keras source did.

    ``x = x + 3.0; x = F.relu6(x); x = x * 0.1666`` becomes ``x = F.relu6(x + 3.0) * 0.1666``:
    a statement is folded into the next one when it comes from a keras.ops call (or is a
    plain function feeding one), its only value is read exactly once, by that next statement
    only, and must not stay named (``keep``: ids of model inputs and outputs). Python's own
    parser places the parentheses, so the meaning cannot change.
    """
    readers: dict[int, int] = {}
    for stmt in statements:
        for tensor in {id(t): t for t in stmt.reads}.values():
            readers[id(tensor)] = readers.get(id(tensor), 0) + 1
    result: list[Statement] = []
    for stmt in statements:
        previous = result[-1] if result else None
        if previous is not None and _can_inline(previous, stmt, keep, readers):
            merged = _substitute(stmt.expr, previous.outputs[0], previous.expr)
            if merged is not None and len(PLACEHOLDER.sub("x", merged)) <= INLINE_MAX_LENGTH:
                tensor = previous.outputs[0]
                reads = [t for t in previous.reads] + [t for t in stmt.reads if t is not tensor]
                if previous.label and stmt.label and stmt.comment.startswith(stmt.label):
                    label = _joined_labels(previous.label, stmt.label)
                    comment = label + stmt.comment[len(stmt.label) :]
                else:
                    label = f"{previous.label}, {stmt.label}"
                    comment = f"{previous.label}, {stmt.comment}"
                result[-1] = Statement(
                    expr=merged,
                    outputs=stmt.outputs,
                    comment=comment if len(comment) <= 110 else stmt.comment,
                    reads=reads,
                    op=stmt.op,  # a layer call ends the chain: it may not be inlined further
                    label=label,
                )
                continue
        result.append(stmt)
    return result


def _joined_labels(first: str, second: str) -> str:
    """Both statements' labels, each once (a Lambda's operations share the Lambda's)."""
    parts = [*first.split(", "), *second.split(", ")]
    return ", ".join(dict.fromkeys(parts))


def _can_inline(producer: Statement, consumer: Statement, keep: set, readers: dict) -> bool:
    if len(producer.outputs) != 1:
        return False
    # A layer's own line stays a line, unless it is a plain function (no submodule) that
    # feeds an operation, as in ``layers.ReLU(6.0)(x + 3.0) * (1.0 / 6.0)``.
    if not producer.op and not (consumer.op and "self." not in producer.expr):
        return False
    tensor = producer.outputs[0]
    if id(tensor) in keep or readers.get(id(tensor), 0) != 1:
        return False
    return consumer.expr.count(f"\x00{id(tensor)}\x00") == 1


def _substitute(expr: str, tensor: Tensor, value: str) -> str | None:
    """``expr`` with the placeholder of ``tensor`` replaced by the expression ``value``."""

    def to_names(text: str) -> str:
        return PLACEHOLDER.sub(lambda m: f"__k2t_{m.group(1)}__", text)

    target = f"__k2t_{id(tensor)}__"
    try:
        tree = ast.parse(to_names(expr), mode="eval")
        replacement = ast.parse(to_names(value), mode="eval").body
    except SyntaxError:
        return None

    class Replace(ast.NodeTransformer):
        def visit_Name(self, node):
            return replacement if node.id == target else node

    merged = ast.unparse(Replace().visit(tree))
    return re.sub(r"__k2t_(\d+)__", lambda m: f"\x00{m.group(1)}\x00", merged)


# Activations torch computes in place exactly, whose backward needs only their result; of a
# name, or of a module call written inside them (``torch.relu(self.conv(x))``).
_ACTIVATION = re.compile(
    r"^(torch\.relu|F\.relu6|F\.leaky_relu)\((\w+|self\.\w+\(\w+\))((?:, [-\w.e]+)?)\)$"
)
# Modules whose output is a new tensor (never their input, a view of it, or a parameter).
_FRESH_MODULES = re.compile(r"^nn\.(Conv\w*|BatchNorm\dd|Linear|LayerNorm|GroupNorm)\(")


def in_place_activations(cls: ClassModel) -> None:
    """``F.relu(x, inplace=True)`` where ``x`` is a value only that activation reads: the
    output of a convolution, normalisation, linear layer or sum computed just before it
    (as torchvision writes ``nn.ReLU(inplace=True)``). The values are the same; a new
    tensor for each activation costs about a fifth of MobileNetV2's time at batch 8."""
    fresh = {attr for attr, expr in cls.declarations if _FRESH_MODULES.match(expr)}

    def made_fresh(expr: str) -> bool:
        call = re.fullmatch(r"self\.(\w+)\(\w+\)", expr)
        return (call is not None and call.group(1) in fresh) or bool(
            re.fullmatch(r"\w+ \+ \w+", expr)
        )

    for index, stmt in enumerate(cls.statements):
        match = _ACTIVATION.match(stmt.expr)
        if match is None:
            continue
        value = match.group(2)
        if value.startswith("self."):  # the module's output, read by nothing else
            in_place = made_fresh(value)
        else:  # the value the statement before made, under the same guard and name
            producer = cls.statements[index - 1] if index else None
            in_place = (
                producer is not None
                and stmt.names == [value] == producer.names
                and producer.guard == stmt.guard
                and made_fresh(producer.expr)
            )
        if in_place:
            stmt.expr = _in_place(match)


def _in_place(match: re.Match) -> str:
    function, value, rest = match.groups()
    function = "F.relu" if function == "torch.relu" else function
    return f"{function}({value}{rest}, inplace=True)"

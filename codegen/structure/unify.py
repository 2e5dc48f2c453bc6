"""Merge the classes the engine built for the instances of one block kind into one class.

Enters: a converted :class:`Session` and the kinds :mod:`codegen.structure.group` made.
Leaves: the session with one class per kind whose constructor takes what varies between
instances, and the parent's declarations calling it with each instance's values.

Two instance classes merge when their forward statements are equal to the letter and their
declarations differ only in numbers (channel counts, strides, kernel sizes...). Numbers that
vary together become one constructor argument, named after the argument they fill
(``in_channels`` for the first layer's input channels, ``stride``, ``conv2_out_channels``).
A kind whose instances differ otherwise is reported back, and is left flat.
"""

from __future__ import annotations

import io
import os
import re
import tokenize
from dataclasses import replace

from codegen.conversion.model import ClassModel, Session, Statement, unique_class

from .aligned import with_defaults
from .group import GroupedKind
from .parameters import (
    CHANNEL_ARGS,
    Slot,
    argument_names,
    block_widths,
    join_tuple_parameters,
    parameter_name,
    parameter_names,
    width_role,
    widths_first,
)
from .options import apply_flags, fill_variants, flag_names


def unify(session: Session, kinds: list[GroupedKind]) -> tuple[list[GroupedKind], set[str]]:
    """Merge each kind's instance classes; returns the kinds that could not be merged and
    the names of the block classes made."""
    failed, made = [], set()
    # The instance classes go away: give them internal names (so that references to them
    # are unambiguous) and free their names for the kinds.
    renamed: dict[str, str] = {}
    instances: dict[str, ClassModel] = {}
    for kind in kinds:
        for layer in kind.layers:
            cls = session.submodels[id(layer)]
            session.class_names.taken.discard(cls.name)
            internal = f"__k2t_instance_{len(renamed)}"
            renamed[f"{cls.name}()"] = f"{internal}()"
            instances[f"{cls.name}()"] = cls
            cls.name = internal
    for cls in session.classes:
        for attr, expr in cls.declarations:
            if expr in instances:  # where each instance sits, for the report
                instances[expr].tap_parent, instances[expr].tap_path = cls.name, attr
        cls.declarations = [(attr, renamed.get(expr, expr)) for attr, expr in cls.declarations]
    for kind in kinds:
        classes = [session.submodels[id(layer)] for layer in kind.layers]
        shortcuts: dict[int, str] = {}  # id(class) -> its downsample module, written out
        if kind.optional_labels:
            shortcuts = _take_out_optional(classes, kind) or {}
            if not shortcuts:
                failed.append(kind)
                continue
        filled = None
        if kind.union_labels:  # steps some instances leave out (options.py)
            filled = fill_variants(classes, kind)
            if filled is None:
                failed.append(kind)
                continue
            merged = _merge(filled.classes, kind, session, filled.wildcards)
        else:
            merged = _merge(classes, kind, session)
            if merged is None:
                # TensorFlow's uneven 'same' padding in some instances only: a step of its own
                filled = fill_variants(classes, kind)
                if filled is not None:
                    merged = _merge(filled.classes, kind, session, filled.wildcards)
        if merged is None:
            failed.append(kind)
            continue
        unified, arguments = merged
        join_tuple_parameters(unified, arguments)
        if filled is not None:
            taken = set(unified.init_params) | {a for a, _ in unified.declarations}
            flags = flag_names(filled, filled.union, taken)
            for args, keywords in zip(arguments, apply_flags(unified, filled, flags)):
                args.extend(keywords)
        if kind.optional_labels:
            reflow(unified)
            unified.init_params.append("downsample: nn.Module | None = None")
            unified.declarations.append(("downsample", "downsample"))
            for cls, args in zip(classes, arguments):
                if id(cls) in shortcuts:
                    args.append(f"downsample={shortcuts[id(cls)]}")
            _move_optional_weights(session, classes, kind)
        _record_taps(classes, unified)
        instance_names = {cls.name for cls in classes}
        position = min(i for i, c in enumerate(session.classes) if c.name in instance_names)
        session.classes = [c for c in session.classes if c.name not in instance_names]
        session.classes.insert(position, unified)
        made.add(unified.name)
        calls = {
            f"{cls.name}()": f"{unified.name}({', '.join(args)})"
            for cls, args in zip(classes, arguments)
        }
        for cls in session.classes:
            cls.declarations = [(attr, calls.get(expr, expr)) for attr, expr in cls.declarations]
    return failed, made


def _record_taps(classes: list[ClassModel], unified: ClassModel) -> None:
    """For each instance class: which line of the merged class computes each of its lines
    (by the step, the layer's label, a line computes)."""
    labels: dict[int, str] = {}
    for cls in classes:
        if cls.graph is not None:
            labels.update(cls.graph.labels)

    def step(stmt: Statement) -> str | None:
        steps = {labels.get(id(t.producer.layer)) for t in stmt.outputs if t.producer}
        return steps.pop() if len(steps) == 1 else None

    last = {step(st): j for j, st in enumerate(unified.statements) if st.outputs}
    for cls in classes:
        lines = {i: last.get(step(st)) for i, st in enumerate(cls.statements) if st.outputs}
        cls.tap_as = (unified.name, {i: j for i, j in lines.items() if j is not None})


_NAME = re.compile(r"\b[A-Za-z_]\w*\b")
# ``self.<module>(<value>)``: a statement that only calls a submodule on one value.
SELF_CALL = re.compile(r"^self\.(\w+)\((\w+)\)$")
IDENTITY = "identity"


def _take_out_optional(classes: list[ClassModel], kind: GroupedKind) -> dict[int, str] | None:
    """Rewrite every instance class to the shape of one class whose optional part is the
    ``downsample`` module: the part's declarations and statements go, one statement
    ``identity = x if self.downsample is None else self.downsample(x)`` takes their place
    before the statement that reads it. Instances without the part must compute the same
    thing once ``identity`` is their input (checked up to local names); they then share
    the first instance's forward. Returns the ``nn.Sequential`` of each instance with the
    part, or None when the instances do not line up."""
    chain = kind.optional_labels
    with_part = [c for c, layer in zip(classes, kind.layers) if id(layer) in kind.with_optional]
    shortcuts: dict[int, str] = {}
    reference = None
    for cls in with_part:
        declared = dict(cls.declarations)
        if any(label not in declared for label in chain):
            return None
        rewritten = _without_chain(cls, chain)
        if rewritten is None:
            return None
        statements, compare_form = rewritten
        if reference is None:
            reference = (statements, compare_form)
        elif _unpadded(_canonical(compare_form, cls.params)) != _unpadded(
            _canonical(reference[1], cls.params)
        ):
            return None
        shortcuts[id(cls)] = "nn.Sequential(" + ", ".join(declared[label] for label in chain) + ")"
        cls.declarations = [(a, e) for a, e in cls.declarations if a not in chain]
        cls.weights = [w for w in cls.weights if w.key.split(".", 1)[0] not in chain]
        cls.statements = statements
    if reference is None:
        return None
    core_attrs = [a for a, _ in with_part[0].declarations]
    for cls in classes:
        if id(cls) in shortcuts:
            continue
        if sorted(a for a, _ in cls.declarations) != sorted(core_attrs):
            return None
        if _unpadded(_canonical(cls.statements, cls.params)) != _unpadded(
            _canonical(reference[1], cls.params)
        ):
            return None
        declared = dict(cls.declarations)
        cls.declarations = [(a, declared[a]) for a in core_attrs]
        own = iter(cls.statements)
        statements = []
        for st in reference[0]:
            copy = _copy(st)
            if st.names != [IDENTITY]:  # this instance's own line, Keras names and values
                mine = next(own)
                copy.label, copy.comment, copy.outputs = mine.label, mine.comment, mine.outputs
                copy.expr = _padded_as(copy.expr, mine.expr)
                if copy.expr is None:
                    return None
            statements.append(copy)
        cls.statements = statements
    return shortcuts


# TensorFlow's uneven 'same' padding written around a module call's input.
_PAD = re.compile(r"F\.pad\((\w+), (\([\d, ]+\)(?:, value=[^()]*)?)\)")


def _unpadded(canonical: list[tuple]) -> list[tuple]:
    """Canonical statements with the padding left out (compared apart: options.py)."""
    return [(_PAD.sub(r"\1", expr), names) for expr, names in canonical]


def _padded_as(reference: str, mine: str) -> str | None:
    """``reference`` padded as ``mine`` is (or not at all); None when that is not clear."""
    pads = _PAD.findall(mine)
    if not pads:
        return _PAD.sub(r"\1", reference)
    if len(_PAD.findall(reference)) == 1 and len(pads) == 1:
        return _PAD.sub(lambda m: f"F.pad({m.group(1)}, {pads[0][1]})", reference)
    return None


def reflow(cls: ClassModel) -> None:
    """Name ``x`` every value read only by the next line (as the engine does), once taking
    out the optional part has made more values so."""
    statements = cls.statements
    for i, st in enumerate(statements[:-1]):
        if len(st.names) != 1 or st.names[0] in ("x", IDENTITY, *cls.params):
            continue
        name = st.names[0]
        pattern = re.compile(rf"\b{re.escape(name)}\b")
        after = statements[i + 1 :]
        uses = [k for k, later in enumerate(after) if pattern.search(later.expr)]
        reassigned = next((k for k, later in enumerate(after) if name in later.names), None)
        if uses != [0] or any(pattern.search(r) for r in cls.returns):
            continue
        if reassigned is not None and reassigned != 0:
            continue
        if re.search(r"\bx\b", after[0].expr):  # the next line still needs the old x
            continue
        st.names = ["x"]
        after[0].expr = pattern.sub("x", after[0].expr)


def _without_chain(cls: ClassModel, chain: list[str]):
    """``(statements with the identity line, the same without it)`` for a class with the
    optional part; None when the part is not a plain chain read from the block's input."""
    graph = cls.graph
    labels = graph.labels if graph is not None else {}

    def label_of(stmt: Statement) -> str | None:
        producers = {t.producer.layer for t in stmt.outputs if t.producer is not None}
        names = {labels.get(id(layer)) for layer in producers}
        return names.pop() if len(names) == 1 else None

    marked = [i for i, st in enumerate(cls.statements) if label_of(st) in chain]
    if len(marked) != len(chain) or len(cls.params) != 1:
        return None
    first = SELF_CALL.match(cls.statements[marked[0]].expr)
    if first is None or first.group(2) != cls.params[0]:
        return None
    final = cls.statements[marked[-1]].names
    if len(final) != 1:
        return None
    final = final[0]
    kept = [_copy(st) for i, st in enumerate(cls.statements) if i not in marked]
    compare_form = [_copy(st) for st in kept]
    after = sum(1 for i in range(len(cls.statements)) if i < marked[-1] and i not in marked)
    statements: list[Statement] = []
    renaming = True
    for index, st in enumerate(kept):
        if index >= after and renaming:
            if re.search(rf"\b{final}\b", st.expr) and not _has_identity(statements):
                statements.append(_identity_statement(cls.params[0]))
            compare_form[index].expr = re.sub(rf"\b{final}\b", cls.params[0], st.expr)
            st.expr = re.sub(rf"\b{final}\b", IDENTITY, st.expr)
            if final in st.names:
                renaming = False
        statements.append(st)
    if not _has_identity(statements):
        return None
    return statements, compare_form


def _has_identity(statements: list[Statement]) -> bool:
    return any(st.names == [IDENTITY] for st in statements)


def _identity_statement(block_input: str) -> Statement:
    return Statement(
        expr=f"{block_input} if self.downsample is None else self.downsample({block_input})",
        outputs=[],
        comment="the shortcut: the block's input, projected where the Keras block has a projection",
        reads=[],
        names=[IDENTITY],
        label="shortcut",
    )


def _copy(stmt: Statement) -> Statement:
    """A statement whose lists can change without changing the original's."""
    return replace(stmt, outputs=list(stmt.outputs), reads=list(stmt.reads), names=list(stmt.names))


def _canonical(statements: list[Statement], params: list[str]) -> list[tuple]:
    """Statements with local names replaced by their order of assignment."""
    names = {p: f"p{i}" for i, p in enumerate(params)}
    result = []
    counter = 0
    for st in statements:
        expr = _NAME.sub(lambda m: names.get(m.group(0), m.group(0)), st.expr)
        for name in st.names:  # every assignment is a new value, whatever its name
            names[name] = f"v{counter}"
            counter += 1
        result.append((expr, tuple(names[n] for n in st.names)))
    return result


def _move_optional_weights(session: Session, classes: list[ClassModel], kind: GroupedKind) -> None:
    """State-dict keys of the optional part: ``<block>.<conv0>.weight`` ->
    ``<block>.downsample.0.weight``, in every class that holds them."""
    internal = {f"{cls.name}()" for cls in classes}
    attrs = {attr for cls in session.classes for attr, expr in cls.declarations if expr in internal}
    if not attrs:
        return
    pattern = re.compile(
        r"(^|\.)("
        + "|".join(map(re.escape, sorted(attrs)))
        + r")\.("
        + "|".join(map(re.escape, kind.optional_labels))
        + r")\."
    )
    position = {label: i for i, label in enumerate(kind.optional_labels)}

    def moved(match: re.Match) -> str:
        return f"{match.group(1)}{match.group(2)}.downsample.{position[match.group(3)]}."

    for cls in session.classes:
        for entry in cls.weights:
            entry.key = pattern.sub(moved, entry.key, count=1)


def _tokens(expr: str) -> list[tokenize.TokenInfo]:
    return [
        t
        for t in tokenize.generate_tokens(io.StringIO(expr).readline)
        if t.type not in (tokenize.NEWLINE, tokenize.NL, tokenize.ENDMARKER)
    ]


def _merge(
    classes: list[ClassModel],
    kind: GroupedKind,
    session: Session,
    wildcards: list[set[int]] | None = None,
):
    """One class for ``classes``; ``wildcards`` marks, per class, the declarations and
    statements (by index, declarations first) filled in from another instance, whose numbers
    say nothing about this one."""
    first = classes[0]
    wildcards = wildcards or [set() for _ in classes]
    for other in classes[1:]:
        if (
            [s.names for s in other.statements] != [s.names for s in first.statements]
            or other.params != first.params
            or other.returns != first.returns
            or other.buffers != first.buffers
            or [a for a, _ in other.declarations] != [a for a, _ in first.declarations]
            or other.input_layouts != first.input_layouts
            or other.output_layouts != first.output_layouts
            or [w.key for w in other.weights] != [w.key for w in first.weights]
        ):
            return None
    n_decl = len(first.declarations)
    blocks = {  # block classes merged before this one (inner blocks), with their parameters
        c.name: tuple(parameter_name(p) for p in c.init_params)
        for c in session.classes
        if c.keras_class == "block"
    }
    # Declarations first, then forward statements: numbers that vary in either become
    # constructor arguments (kept as attributes where forward needs them).
    expressions = [
        [expr for _, expr in cls.declarations] + [st.expr for st in cls.statements]
        for cls in classes
    ]
    for d in range(n_decl):
        normalized = with_defaults([exprs[d] for exprs in expressions])
        if normalized is None:
            return None
        for exprs, text in zip(expressions, normalized):
            exprs[d] = text
    tokens = [[_tokens(expr) for expr in exprs] for exprs in expressions]
    attrs = [a for a, _ in first.declarations] + ["forward"] * len(first.statements)
    slots: list[Slot] = []
    values: list[tuple[str | None, ...]] = []
    soft: set[int] = set()  # slots kept as written unless a varying group agrees
    for d, attr in enumerate(attrs):
        streams = [t[d] for t in tokens]
        if any(len(s) != len(streams[0]) for s in streams):
            return None
        known = [i for i in range(len(classes)) if d not in wildcards[i]]
        arguments = argument_names(streams[0], blocks)
        for k, token in enumerate(streams[0]):
            if len({s[k].string for s in streams}) == 1 and len(known) == len(streams):
                continue
            if any(s[k].string != streams[0][k].string for s in streams) and any(
                streams[i][k].type != tokenize.NUMBER for i in range(len(streams))
            ):
                return None
            argument = arguments.get(k, "value")
            if len({streams[i][k].string for i in known}) == 1:
                # The same in every instance that has the step: a width still follows the
                # block's arguments where they agree (conv3 of the stages that have one).
                if argument in CHANNEL_ARGS:
                    soft.add(len(slots))
                else:
                    continue
            slots.append(Slot(d, k, attr, argument))
            values.append(
                tuple(streams[i][k].string if i in known else None for i in range(len(streams)))
            )
    inputs, outputs = block_widths(classes, "inputs"), block_widths(classes, "outputs")
    widths = [w for w in (inputs, outputs) if w is not None]
    groups = _group_values(values, widths, soft)
    groups = widths_first(groups, inputs, outputs)
    names = parameter_names(
        [[slots[i] for i in members] for members in groups.values()],
        n_decl,
        [width_role(vector, inputs, outputs) for vector in groups],
    )
    substitution: dict[tuple[int, int], str] = {}
    kept: list[str] = []  # arguments forward reads: stored as attributes
    for name, members in zip(names, groups.values()):
        for i in members:
            in_forward = slots[i].declaration >= n_decl
            substitution[(slots[i].declaration, slots[i].token)] = (
                f"self.{name}" if in_forward else name
            )
            if in_forward and name not in kept:
                kept.append(name)
    texts = [
        _join(
            tokens[0][d], [substitution.get((d, k), t.string) for k, t in enumerate(tokens[0][d])]
        )
        for d in range(len(attrs))
    ]
    declarations = [(name, name) for name in kept]
    declarations += [(attr, text) for (attr, _), text in zip(first.declarations, texts)]
    statements = [_pattern_statement(i, classes) for i in range(len(first.statements))]
    for statement, text in zip(statements, texts[n_decl:]):
        statement.expr = text
    unified = ClassModel(
        name=_class_name(session, kind.class_name, classes),
        keras_name=first.keras_name,
        keras_class="block",
        docstring="",
        declarations=declarations,
        init_params=names,
        params=first.params,
        statements=statements,
        returns=first.returns,
        weights=first.weights,
        buffers=first.buffers,
        input_layouts=first.input_layouts,
        output_layouts=first.output_layouts,
        graph=first.graph,
        tensor_layouts=first.tensor_layouts,
        aliases=first.aliases,
        title=(
            f"A block the Keras model repeats {len(classes)} times "
            f"({_names_of([c.keras_name for c in classes])})."
        ),
    )
    arguments = [[vector[i] for vector in groups] for i in range(len(classes))]
    return unified, arguments


def _group_values(
    values: list[tuple[str | None, ...]],
    widths: list[tuple[str, ...]],
    soft: set[int] = frozenset(),
) -> dict[tuple[str, ...], list[int]]:
    """Slots whose numbers vary together, keyed by the numbers (one per instance). A slot
    an instance lacks (None) joins the first group it agrees with where it has numbers, or
    the block's input or output width when that agrees; a ``soft`` slot (one number in all
    the instances that have it) joins only a group that varies, else stays as written."""
    groups: dict[tuple[str, ...], list[int]] = {}
    for index, vector in enumerate(values):
        if None not in vector:
            groups.setdefault(vector, []).append(index)
    for index, vector in enumerate(values):
        if None not in vector:
            continue
        candidates = [*groups, *widths]
        if index in soft:
            candidates = [g for g in candidates if len(set(g)) > 1]
        agreeing = next(
            (g for g in candidates if all(v is None or v == w for v, w in zip(vector, g))),
            None,
        )
        if agreeing is None and index in soft:
            continue
        if agreeing is None:
            some = next(v for v in vector if v is not None)
            agreeing = tuple(some if v is None else v for v in vector)
        groups.setdefault(agreeing, []).append(index)
    return groups


def _class_name(session: Session, wanted: str, instances: list[ClassModel]) -> str:
    """``wanted``, unique among the classes (the instance classes' names are free again)."""
    return unique_class(session, wanted)


def _join(tokens: list[tokenize.TokenInfo], parts: list[str]) -> str:
    """Tokens back to text, keeping the original spacing between them."""
    out, last = [], None
    for token, text in zip(tokens, parts):
        if last is not None and token.start[1] > last:
            out.append(" " * (token.start[1] - last))
        out.append(text)
        last = token.end[1]
    return "".join(out)


def _pattern(names: list[str]) -> str:
    """``conv2_block1``, ``conv2_block2``... -> ``conv*_block*``: the numbers that vary
    starred; names that differ otherwise keep what they share at both ends
    (``block2b_expand_conv``, ``block3c_expand_conv`` -> ``block*_expand_conv``)."""
    if len(set(names)) == 1:
        return names[0]
    split = [re.split(r"(\d+)", n) for n in names]
    if all(len(s) == len(split[0]) for s in split):
        columns = list(zip(*split))
        if all(len(set(c)) == 1 for c in columns[0::2]):  # only numbers differ
            return "".join(c[0] if len(set(c)) == 1 else "*" for c in columns)
    head = os.path.commonprefix(names)
    tail = os.path.commonprefix([n[len(head) :][::-1] for n in names])[::-1]
    return f"{head}*{tail}"


def _names_of(names: list[str]) -> str:
    """The instances' Keras names as a pattern, or the first and last where the names share
    too little for one."""
    pattern = _pattern(names)
    if len(pattern.replace("*", "").strip("_")) >= 3:
        return pattern
    return f"{names[0]} ... {names[-1]}"


def _pattern_statement(index: int, classes: list[ClassModel]) -> Statement:
    stmt = classes[0].statements[index]
    labels = [c.statements[index].label or c.statements[index].comment for c in classes]
    label = _pattern(labels)
    comments = {c.statements[index].comment for c in classes}
    comment = stmt.comment if len(comments) == 1 else label
    return replace(stmt, comment=comment, label=label)

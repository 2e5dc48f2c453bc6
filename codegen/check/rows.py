"""The report's table: one row per Keras layer call, and the errors measured for each.

In: the generated :class:`ClassModel` (its statements, aliases and tensor layouts), the
conversion session (nested models), the Keras models per graph, and for an edited
``model.py`` the :class:`Instrumented` match. Out: :class:`LayerRow` objects in
``model.summary()``'s order, each saying where its torch value is (:func:`build_rows`);
:func:`fill_errors` then sets each row's error from the recorded torch values and Keras's
values, and :func:`first_jump` names the layer where the error first appears.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from codegen.conversion.model import ClassModel
from codegen.ir.graph import Call, Graph, Tensor
from codegen.ir.naming import comment_text

from .instrument import Instrumented, statement_line
from .keras_values import functional_of, keras_operations
from .torch_values import to_keras_layout, torch_value, value_errors

# An error "jumps" at a layer when it grows this much over every error before it.
JUMP_FACTOR = 10.0
# Below tolerance / JUMP_NOISE an error is rounding noise, never a jump.
JUMP_NOISE = 100.0


@dataclass
class LayerRow:
    keras_name: str
    keras_class: str  # "Conv2D", "ops.Add", "InputLayer"
    call_index: int
    kind: str  # "input" | "line" | "alias" | "inlined" | "unmatched"
    code: str = ""  # the forward line (or a note)
    module: str = ""  # the torch module constructor the line calls, if any
    shape: str = ""
    params: int | None = None
    max_abs: float | None = None
    max_rel: float | None = None
    train_rel: float | None = None
    # The float64 noise floor, measured when the float32 comparison failed (noise_floor.py):
    noise_rel: float | None = None  # float32 port vs float64 port
    keras64_rel: float | None = None  # Keras vs float64 port
    passed: bool | None = None
    edited: bool = False
    note: str = ""
    depth: int = 0  # 1 for a layer of a nested model, ...
    prefix: str = ""  # "nested_model/" for a layer of a nested model
    call: Any = field(default=None, repr=False)
    # Topological place, nested layers before their model's own row.
    position: tuple = field(default=(), repr=False)
    sources: list = field(default_factory=list, repr=False)

    @property
    def label(self) -> str:
        call = f" call {self.call_index + 1}" if self.call_index else ""
        return f"{self.prefix}{self.keras_name} ({self.keras_class}){call}"


def first_jump(rows: list[LayerRow], tolerance: float) -> LayerRow | None:
    """The first layer over the tolerance; else the first whose error grows by JUMP_FACTOR."""
    measured = sorted((r for r in rows if r.max_rel is not None), key=lambda r: r.position)
    for row in measured:
        if not row.passed:
            return row
    worst = tolerance / JUMP_NOISE
    for row in measured:
        if row.max_rel > worst * JUMP_FACTOR:
            return row
        worst = max(worst, row.max_rel)
    return None


def summary_order(graph: Graph, model: Any) -> list[Call]:
    """Calls in ``model.summary()``'s order (its layer order, each layer's calls in turn)."""
    functional = functional_of(model) if model is not None else None
    names = [op.name for op in keras_operations(functional)] if functional is not None else []
    position = {name: i for i, name in enumerate(names)}
    sequential = type(model).__name__ == "Sequential" or graph.class_name == "Sequential"
    calls = [c for c in graph.calls if not (sequential and c.layer.class_name == "InputLayer")]
    order = {id(c): i for i, c in enumerate(calls)}
    return sorted(
        calls, key=lambda c: (position.get(c.layer.name, len(names)), c.index, order[id(c)])
    )


def layer_params(call: Call) -> int:
    layer = call.layer
    if layer.subgraph is not None:
        layers = [each for each in layer.subgraph.walk_layers() if each.subgraph is None]
    else:
        layers = [layer]
    return sum(int(np.prod(w.shape)) for each in layers for w in each.weights.values())


def shape_text(shapes: list[tuple]) -> str:
    parts = [
        "("
        + ", ".join("None" if d is None else str(d) for d in s)
        + ("," if len(s) == 1 else "")
        + ")"
        for s in shapes
    ]
    return ", ".join(parts)


_LAST = 10**9  # a nested model's own row sorts after its layers' rows


def build_rows(
    cls: ClassModel,
    session: Any,
    models: dict[int, Any],
    inst: Instrumented | None,
    *,
    depth: int = 0,
    prefix: str = "",
    position: tuple = (),
    path: str = "",
) -> list[LayerRow]:
    """Table rows for ``cls`` in summary order; a nested model's layers follow its row.

    Each row's ``sources`` says, per output, where its torch value is: ``(class name,
    statement index, output position, layout)``, ``("input", position, layout)``, or
    ``None`` (no torch value: inlined into another line, or not found in an edited file).
    """
    produced: dict[int, tuple[int, int]] = {}
    for i, stmt in enumerate(cls.statements):
        for k, tensor in enumerate(stmt.outputs):
            produced[id(tensor)] = (i, k)
    declarations = dict(cls.declarations)
    graph = cls.graph
    rows: list[LayerRow] = []
    params_seen: set[int] = set()
    input_pos = {id(t): i for i, t in enumerate(graph.inputs)}
    topological = {id(c): i for i, c in enumerate(graph.calls)}
    for call in summary_order(graph, models.get(id(graph))):
        layer = call.layer
        kind = f"ops.{layer.class_name}" if layer.is_op else layer.class_name
        row = LayerRow(
            layer.name, kind, call.index, kind="line", call=call, depth=depth, prefix=prefix
        )
        row.position = (*position, topological.get(id(call), 0), _LAST)
        row.shape = shape_text([t.shape for t in call.outputs])
        if id(layer) not in params_seen:
            params_seen.add(id(layer))
            row.params = layer_params(call)
        rows.append(row)
        if layer.class_name == "InputLayer":
            row.kind = "input"
            at = input_pos.get(id(call.outputs[0]))
            if at is not None and at < len(cls.params):
                row.code = cls.params[at]
            continue
        found = []
        for tensor in call.outputs:
            if id(tensor) in produced:
                found.append(("line", tensor, tensor))
            elif id(tensor) in cls.aliases:
                found.append(("alias", tensor, cls.aliases[id(tensor)]))
            else:
                found.append(("inlined", tensor, None))
        for how, tensor, value_tensor in found:
            layout = cls.tensor_layouts.get(id(tensor))
            if how == "inlined" or layout is None:
                row.sources.append(None)
            elif id(value_tensor) in produced:
                index, k = produced[id(value_tensor)]
                row.sources.append(_source(cls, index, k, layout, inst, path))
            elif id(value_tensor) in input_pos:
                row.sources.append(("input", input_pos[id(value_tensor)], layout))
            else:
                row.sources.append(None)
        hows = {how for how, _, _ in found}
        if "line" in hows:
            index = produced[id(next(t for how, t, _ in found if how == "line"))][0]
            stmt = cls.statements[index]
            row.code = statement_line(stmt)
            attrs = re.findall(r"\bself\.([A-Za-z_][A-Za-z0-9_]*)", stmt.expr)
            modules = [
                f"self.{a} = {declarations[a]}" for a in dict.fromkeys(attrs) if a in declarations
            ]
            row.module = "; ".join(modules)
            how = inst.matched.get(_tapped(cls, index)) if inst is not None else "same"
            if how is None:
                row.kind = "unmatched"
                row.note = "line changed in model.py; not compared"
            elif how == "edited":
                row.edited = True
                row.code = inst.user_lines.get((cls.name, index), row.code)
                row.note = "edited in model.py"
        elif hows == {"alias"}:
            row.kind = "alias"
            row.code = ", ".join(_value_name(cls, value, produced) for _, _, value in found)
            if any(s is None for s in row.sources):
                row.kind = "unmatched"
                row.note = "line changed in model.py; not compared"
        else:
            row.kind = "inlined"
            label = f"{comment_text(layer.name)} ({kind})"
            host = next(
                (
                    s
                    for s in cls.statements
                    if len(s.label.split(", ")) > 1
                    and label in [p.strip() for p in s.label.split(", ")]
                ),
                None,
            )
            row.code = statement_line(host) if host is not None else ""
            row.note = "written inside the line that uses it"
            if host is None and cls.tap_as is not None:  # moved into a module passed in
                row.code = "in the block's downsample module: compared at the block's output"
        sub = session.submodels.get(id(layer)) if layer.subgraph is not None else None
        if sub is not None and call.index == 0:
            rows += build_rows(
                sub,
                session,
                models,
                inst,
                depth=depth + 1,
                prefix=f"{prefix}{sub.tap_path or layer.name}/",
                position=(*position, topological.get(id(call), 0)),
                path=_join(path, sub.tap_path or _attribute(cls, call, produced)),
            )
    return rows


def _tapped(cls: ClassModel, index: int) -> tuple[str, int] | None:
    """The (class, line) that computes line ``index`` of ``cls`` in model.py: itself, or
    for a block instance merged into a block class, that class's line."""
    if cls.tap_as is None:
        return (cls.name, index)
    name, lines = cls.tap_as
    return (name, lines[index]) if index in lines else None


def _source(cls, index, k, layout, inst, path):
    tapped = _tapped(cls, index)
    if tapped is None or (inst is not None and tapped not in inst.matched):
        return None
    if cls.tap_as is None:
        return (*tapped, k, layout)
    return (*tapped, k, path, layout)  # the layout stays last


def _attribute(cls: ClassModel, call: Call, produced: dict) -> str:
    """The attribute a nested model's call runs (``self.<attr>(...)``), or ""."""
    where = produced.get(id(call.outputs[0])) if call.outputs else None
    if where is None:
        return ""
    match = re.match(r"^self\.(\w+)\(", cls.statements[where[0]].expr)
    return match.group(1) if match else ""


def _join(path: str, attr: str) -> str:
    return f"{path}.{attr}" if path and attr else attr or path


def _value_name(cls: ClassModel, tensor: Tensor, produced: dict) -> str:
    if id(tensor) in produced:
        index, k = produced[id(tensor)]
        names = cls.statements[index].names
        return names[k] if k < len(names) else "?"
    for at, each in enumerate(cls.graph.inputs):
        if each is tensor and at < len(cls.params):
            return cls.params[at]
    return "?"


def fill_errors(
    rows: list[LayerRow],
    classes: dict[str, ClassModel],
    recorded: dict,
    keras_vals: dict,
    attr: str,
    tolerance: float,
) -> None:
    """Set ``attr`` ("max_rel", with max_abs and passed, or "train_rel") on each row."""
    for row in rows:
        if not row.sources or row.kind in ("input", "inlined", "unmatched"):
            continue
        worst_abs, worst_rel, compared = 0.0, 0.0, False
        for tensor, src in zip(row.call.outputs, row.sources):
            ref = keras_vals.get(id(tensor))
            got = torch_value(src, classes, recorded, keras_vals)
            if ref is None or got is None:
                continue
            try:
                got = to_keras_layout(got, src[-1])
            except (ValueError, IndexError):
                got = None
            delta, rel = value_errors(ref, got)
            worst_abs, worst_rel, compared = max(worst_abs, delta), max(worst_rel, rel), True
        if not compared:
            continue
        if attr == "max_rel":
            row.max_abs, row.max_rel = worst_abs, worst_rel
            row.passed = bool(worst_rel <= tolerance)
        else:
            row.train_rel = worst_rel
            if worst_rel > tolerance:
                row.passed = False

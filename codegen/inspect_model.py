"""``keras2torch inspect MODEL``: what the tool sees in a model, writing nothing.

Every layer (nested models' too) with its class, output shape, parameter count and the
converter it gets: a built-in one, a plugin's, a skeleton (``--allow-unsupported``) or none.
A dry-run conversion in memory also finds the layers whose *options* cannot be ported.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .convert import Options, convert_graph, shape_text
from .errors import ConversionError, UnsupportedError
from .graph import Graph
from .naming import comment_text


@dataclass
class Row:
    depth: int
    name: str
    class_name: str
    output_shapes: list[str]
    parameters: int
    converter: str
    status: str  # "ok", "plugin", "nested", "input", "skeleton", "unsupported"
    problem: str = ""


@dataclass
class Inspection:
    source: str
    model_name: str
    model_class: str
    reader: str
    inputs: list[str]
    outputs: list[str]
    rows: list[Row] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    standins: list[str] = field(default_factory=list)
    other_problems: list[str] = field(default_factory=list)  # not tied to one row

    @property
    def parameters(self) -> int:
        return sum(r.parameters for r in self.rows)

    @property
    def unsupported(self) -> list[Row]:
        return [r for r in self.rows if r.status == "unsupported"]

    def to_json(self) -> dict:
        data = asdict(self)
        data["parameters"] = self.parameters
        data["convertible"] = not self.problems
        return data


def inspect_path(
    path: str | os.PathLike,
    *,
    plugins: Any = None,
    reader: str | None = None,
    allow_unsupported: bool = False,
) -> Inspection:
    from .api import read_path
    from .plugins import activate

    activate(plugins)
    graph, model, used = read_path(path, reader)
    standins = []
    if model is not None:
        from .standins import standin_layers

        standins = [f"{name} ({cls})" for name, cls in standin_layers(model)]
    return inspect_graph(
        graph, source=str(path), reader=used, allow_unsupported=allow_unsupported, standins=standins
    )


def inspect_graph(
    graph: Graph,
    *,
    source: str = "",
    reader: str = "",
    allow_unsupported: bool = False,
    standins: list[str] | None = None,
) -> Inspection:
    problems: list[str] = []
    try:
        convert_graph(graph, Options(allow_unsupported=allow_unsupported))
    except UnsupportedError as exc:
        problems = list(exc.problems)
    except ConversionError as exc:
        problems = [f"(conversion) {exc}"]
    result = Inspection(
        source=source,
        model_name=graph.name,
        model_class=graph.class_name,
        reader=reader,
        inputs=[shape_text(t.shape) for t in graph.inputs],
        outputs=[shape_text(t.shape) for t in graph.outputs],
        problems=problems,
        standins=list(standins or []),
    )
    shown: set[str] = set()
    _rows(graph, 0, problems, allow_unsupported, result.rows, shown)
    result.other_problems = [p for p in problems if p not in shown]
    return result


def _rows(
    graph: Graph, depth: int, problems: list[str], allow: bool, rows: list[Row], shown: set
) -> None:
    from .plugins import lookup, owner

    for layer in graph.layers:
        shapes = [shape_text(t.shape) for t in (layer.calls[0].outputs if layer.calls else [])]
        params = sum(int(np.asarray(w).size) for w in layer.weights.values())
        prefix = f"{layer.name!r} ({comment_text(layer.class_name)}): "
        matched = [p for p in problems if p.startswith(prefix)]
        problem = "; ".join(p[len(prefix) :] for p in matched)
        shown.update(matched)
        if layer.class_name == "InputLayer":
            converter, status = "input", "input"
        elif layer.subgraph is not None:
            converter, status = f"nested {layer.subgraph.class_name} (its own class)", "nested"
        else:
            conv = lookup(layer.class_name, layer.is_op)
            plugin = owner(conv.key) if conv is not None else None
            if conv is None:
                if allow:
                    converter, status = "skeleton (--allow-unsupported)", "skeleton"
                else:
                    converter, status = "none", "unsupported"
                    problem = problem or "no converter"
            else:
                function = conv.function
                where = function.__module__.replace("codegen.layers.", "")
                converter = f"{where}.{function.__name__}"
                status = "ok"
                if plugin is not None:
                    converter = f"plugin {plugin.origin}: {function.__name__}"
                    status = "plugin"
            if problem and status != "skeleton":
                status = "unsupported"
        rows.append(Row(depth, layer.name, layer.kind, shapes, params, converter, status, problem))
        if layer.subgraph is not None:
            _rows(layer.subgraph, depth + 1, problems, allow, rows, shown)


def format_inspection(result: Inspection, color: bool = False) -> str:
    from .summary import BOLD, DIM, GREEN, RED, YELLOW, Style

    s = Style(color)
    head = (
        f"{comment_text(result.source, None)}: Keras {result.model_class} "
        f"{comment_text(result.model_name)!r}, {len(result.rows)} layers, "
        f"{result.parameters:,} parameters"
    )
    lines = [s(head, BOLD)]
    lines.append(f"  inputs {', '.join(result.inputs)} → outputs {', '.join(result.outputs)}")
    if result.reader:
        lines.append(
            s(f"  read by {'h5py (no TensorFlow)' if result.reader == 'file' else 'Keras'}", DIM)
        )
    table = [("layer", "class", "output shape", "params", "converter")]
    for row in result.rows:
        name = "  " * row.depth + comment_text(row.name, 40)
        converter = row.converter
        if row.status == "unsupported":
            converter = f"UNSUPPORTED: {row.problem}" if row.problem else "UNSUPPORTED"
        table.append(
            (
                name,
                comment_text(row.class_name, 40),
                ", ".join(row.output_shapes),
                f"{row.parameters:,}",
                comment_text(converter, 90),
            )
        )
    widths = [max(len(r[i]) for r in table) for i in range(4)]
    colors = {
        "unsupported": (BOLD, RED),
        "skeleton": (YELLOW,),
        "plugin": (GREEN,),
        "input": (DIM,),
        "nested": (DIM,),
    }
    for index, row in enumerate(table):
        text = "  ".join(cell.ljust(widths[i]) if i < 4 else cell for i, cell in enumerate(row))
        if index == 0:
            lines.append("  " + s(text, DIM))
            continue
        status = result.rows[index - 1].status
        lines.append("  " + s(text.rstrip(), *colors.get(status, ())))
    if result.standins:
        lines.append(
            s("  loaded without their Keras class (config and weights only): ", YELLOW)
            + ", ".join(comment_text(n) for n in result.standins)
        )
    skeletons = [r for r in result.rows if r.status == "skeleton"]
    if result.problems:
        lines.append(
            s(f"{len(result.problems)} problem(s) block the conversion", BOLD, RED)
            + ": write a converter plugin (--plugin) or use --allow-unsupported for skeletons"
        )
        for problem in result.other_problems:
            lines.append(f"  - {comment_text(problem, 160)}")
    elif skeletons:
        lines.append(
            s(f"convertible with {len(skeletons)} skeleton(s) to write by hand", BOLD, YELLOW)
        )
    else:
        lines.append(s("every layer can be converted", BOLD, GREEN))
    return "\n".join(lines)

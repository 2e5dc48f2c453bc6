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

from codegen.conversion.engine import convert_graph
from codegen.conversion.model import Options, shape_text
from codegen.conversion.pipeline import converter_registry
from codegen.conversion.registry import Registry
from codegen.errors import ConversionError, UnsupportedError
from codegen.ir.graph import Graph
from codegen.ir.naming import comment_text
from codegen.read.paths import read_path
from codegen.read.standins import standin_layers


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
    registry = converter_registry(plugins, allow_unsupported=allow_unsupported)
    graph, model, used = read_path(path, reader, converts=registry.converts)
    standins = []
    if model is not None:
        standins = [f"{name} ({cls})" for name, cls in standin_layers(model)]
    return inspect_graph(
        graph,
        registry,
        source=str(path),
        reader=used,
        allow_unsupported=allow_unsupported,
        standins=standins,
    )


def inspect_graph(
    graph: Graph,
    registry: Registry,
    *,
    source: str = "",
    reader: str = "",
    allow_unsupported: bool = False,
    standins: list[str] | None = None,
) -> Inspection:
    problems: list[str] = []
    try:
        convert_graph(graph, Options(), registry=registry)
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
    _rows(graph, registry, 0, problems, allow_unsupported, result.rows, shown)
    result.other_problems = [p for p in problems if p not in shown]
    return result


def _rows(
    graph: Graph,
    registry: Registry,
    depth: int,
    problems: list[str],
    allow: bool,
    rows: list[Row],
    shown: set,
) -> None:
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
            conv = registry.lookup(layer.class_name, layer.is_op)
            if conv is None:
                if allow:
                    converter, status = "skeleton (--allow-unsupported)", "skeleton"
                else:
                    converter, status = "none", "unsupported"
                    problem = problem or "no converter"
            else:
                function = conv.function
                where = function.__module__.replace("codegen.conversion.layers.", "")
                converter = f"{where}.{function.__name__}"
                status = "ok"
                if conv.origin is not None:
                    converter = f"plugin {conv.origin}: {function.__name__}"
                    status = "plugin"
            if problem and status != "skeleton":
                status = "unsupported"
        rows.append(Row(depth, layer.name, layer.kind, shapes, params, converter, status, problem))
        if layer.subgraph is not None:
            _rows(layer.subgraph, registry, depth + 1, problems, allow, rows, shown)

"""Structure recovery end to end: find blocks, convert with each instance nested, merge.

A kind whose instances cannot be merged into one class is left flat and the model is
converted again without it (at most a few rounds; each round only drops kinds).
"""

from __future__ import annotations

import textwrap

from codegen.conversion.engine import convert_graph
from codegen.conversion.model import Options, Session
from codegen.conversion.registry import Registry
from codegen.errors import ConversionError
from codegen.ir.graph import Graph

from .kinds import find_blocks
from .order import finish_branches
from .group import block_graph, nested_kinds, strip_model_prefix
from .stages import make_stages
from .unify import unify

MAX_ROUNDS = 4


def convert_structured(
    graph: Graph, options: Options, class_name: str | None, registry: Registry
) -> Session:
    graph = finish_branches(graph)
    left_flat: list[str] = []
    kinds = find_blocks(graph, left_flat=left_flat)
    nested_kinds(graph)  # short labels inside nested models first, then the model prefix
    strip_model_prefix(graph)
    session = _convert(graph, kinds, options, class_name, registry)
    if left_flat:
        names = ", ".join(repr(n) for n in left_flat)
        note = (
            f"Repeated blocks that call the shared layer(s) {names} are written out layer by "
            "layer, so that the weights Keras shares stay one module."
        )
        top = session.classes[-1]
        wrapped = "\n    ".join(textwrap.wrap(note, 84))
        existing = top.docstring.rstrip()
        top.docstring = (f"{existing}\n\n    " if existing else "") + wrapped + "\n    "
    return session


def _deeper_hub_kinds(graph: Graph, skip: frozenset) -> list:
    """KerasHub blocks repeated inside a nested model (a task model's backbone): one class
    per kind there too."""
    kinds = []
    for layer in graph.walk_layers():
        sub = layer.subgraph
        if sub is not None and any(
            c.layer.subgraph is not None and c.layer.subgraph.rewritten for c in sub.calls
        ):
            kinds += [k for k in nested_kinds(sub, skip) if k.layers[0].subgraph.rewritten]
    return kinds


def _convert(graph, kinds, options, class_name, registry) -> Session:
    skipped: set[tuple] = set()  # GroupedKind.key of kinds left flat
    for _ in range(MAX_ROUNDS):
        grouped_graph, groups = block_graph(graph, kinds, frozenset(skipped))
        groups += nested_kinds(graph, frozenset(skipped))
        groups += _deeper_hub_kinds(graph, frozenset(skipped))
        if not groups:
            break
        try:
            session = convert_graph(grouped_graph, options, class_name, registry=registry)
        except ConversionError:
            break  # reported by the flat conversion below, with the Keras names
        failed, made = unify(session, groups)
        if not failed:
            blocks = {cls.name: cls for cls in session.classes if cls.name in made}
            instances = [c for c in session.submodels.values() if c.tap_as is not None]
            for cls in session.classes:
                moved = make_stages(cls, blocks, session.classes)
                for instance in instances:
                    if instance.tap_parent == cls.name and instance.tap_path in moved:
                        instance.tap_path = moved[instance.tap_path]
            return session
        skipped.update(kind.key for kind in failed)
    return convert_graph(graph, options, class_name, registry=registry)

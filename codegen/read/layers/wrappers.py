"""TimeDistributed: the wrapped layer's facts, step by step (Bidirectional is in
``recurrent.py``)."""

from __future__ import annotations

from codegen.ir.graph import TensorRef

from ..shapes import RULES, ShapeError, Site, rule
from ..stored_weights import variables_rule
from ._variable_helpers import nested


@rule("TimeDistributed")
def _time_distributed(site: Site):
    inner = site.config["layer"]
    x = site.x
    inner_rule = RULES.get(inner.get("class_name"))
    if inner_rule is None:
        raise ShapeError(f"no shape rule for {inner.get('class_name')} (inside TimeDistributed)")
    inner_site = Site(
        inner["class_name"],
        inner.get("config") or {},
        [(x[0], *x[2:])],
        [site.x_dtype],
        (TensorRef(0),),
    )
    (shape, dtype), *_ = inner_rule(inner_site)
    return [((x[0], x[1], *shape[1:]), dtype)]


@variables_rule("TimeDistributed")
def _time_distributed_variables(class_name: str, c: dict):
    return nested(c.get("layer"), "layer")


MASK_ARGUMENT = frozenset({"TimeDistributed"})
KEEPS_MASK = frozenset({"TimeDistributed"})

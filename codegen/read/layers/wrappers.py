"""TimeDistributed: the wrapped layer's facts, step by step; SpectralNormalization: the
wrapped layer's (Bidirectional is in ``recurrent.py``)."""

from __future__ import annotations

from codegen.ir.graph import TensorRef

from ..shapes import RULES, ShapeError, Site, rule
from ..stored_weights import variables_rule
from ._variable_helpers import nested, own


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


@rule("SpectralNormalization")
def _spectral_normalization(site: Site):
    inner = site.config["layer"]
    inner_rule = RULES.get(inner.get("class_name"))
    if inner_rule is None:
        raise ShapeError(f"no shape rule for {inner.get('class_name')} (inside a wrapper)")
    inner_site = Site(
        inner["class_name"], inner.get("config") or {}, site.shapes, site.dtypes, (TensorRef(0),)
    )
    (shape, _), *_ = inner_rule(inner_site)
    return [(shape, site.x_dtype)]  # Keras casts the output to the input's dtype


@variables_rule("SpectralNormalization")
def _spectral_normalization_variables(class_name: str, c: dict):
    inner = nested(c.get("layer"), "layer")
    if inner is None:
        return None
    # Its own vars/0 is the wrapped layer's kernel again; vars/1 the power iteration's vector.
    (vector_u,) = own(["kernel", "vector_u"], trainable=False)[1:]
    return inner + [vector_u]


MASK_ARGUMENT = frozenset({"TimeDistributed"})
KEEPS_MASK = frozenset({"TimeDistributed"})
TRAINING_DEFAULTS = {"SpectralNormalization": False}

"""Layers keras.applications models define for themselves: LayerScale (ConvNeXt) and
CustomScaleLayer (Inception-ResNet)."""

from __future__ import annotations

from ..shapes import Site, rule
from ..stored_weights import no_variables, variables_rule
from ._shape_helpers import out, same_shape
from ._variable_helpers import own

rule("LayerScale")(same_shape)


@rule("CustomScaleLayer")
def _custom_scale(site: Site):
    return out(site, site.shapes[0])


@variables_rule("LayerScale")
def _layer_scale_variables(class_name: str, c: dict):
    return own(["variable"])


no_variables("CustomScaleLayer")

"""Normalization layers: BatchNormalization, LayerNormalization, GroupNormalization,
RMSNormalization, UnitNormalization (Normalization, a preprocessing layer, is in
``preprocessing.py``)."""

from __future__ import annotations

from ..stored_weights import Var, no_variables, variables_rule
from ..shapes import rule
from ._shape_helpers import same_shape
from ._variable_helpers import own

rule(
    "BatchNormalization",
    "LayerNormalization",
    "GroupNormalization",
    "RMSNormalization",
    "UnitNormalization",
)(same_shape)


@variables_rule("BatchNormalization")
def _batch_normalization_variables(class_name: str, c: dict):
    names = (["gamma"] if c.get("scale", True) else []) + (
        ["beta"] if c.get("center", True) else []
    )
    names += ["moving_mean", "moving_variance"]
    return [
        Var(n, n not in ("moving_mean", "moving_variance"), f"vars/{i}")
        for i, n in enumerate(names)
    ]


@variables_rule("LayerNormalization", "GroupNormalization")
def _layer_normalization_variables(class_name: str, c: dict):
    names = ["gamma"] if c.get("scale", True) else []
    if c.get("center", True) and not c.get("rms_scaling"):
        names.append("beta")
    return own(names)


@variables_rule("RMSNormalization")
def _rms_normalization_variables(class_name: str, c: dict):
    return own(["scale"])


no_variables("UnitNormalization")

MASK_ARGUMENT = frozenset({"BatchNormalization"})
KEEPS_MASK = frozenset(
    {"BatchNormalization", "GroupNormalization", "LayerNormalization", "UnitNormalization"}
)

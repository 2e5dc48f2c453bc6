"""Activation layers: Activation, ReLU, LeakyReLU, ELU, PReLU, Softmax (ThresholdedReLU:
Keras 2 only, read but not converted)."""

from __future__ import annotations

from ..shapes import rule
from ..stored_weights import no_variables, variables_rule
from ._shape_helpers import same_shape
from ._variable_helpers import own

rule("Activation", "ELU", "LeakyReLU", "ReLU", "PReLU", "ThresholdedReLU", "Softmax")(same_shape)
no_variables("Activation", "ELU", "LeakyReLU", "ReLU", "Softmax")


@variables_rule("PReLU")
def _prelu_variables(class_name: str, c: dict):
    return own(["alpha"])


# Keras 3 records the input's mask as ``mask=`` for layers whose call() takes one.
MASK_ARGUMENT = frozenset({"Softmax"})
# Layers whose output carries the mask of their first input (Keras's default compute_mask).
KEEPS_MASK = frozenset({"Activation", "ELU", "LeakyReLU", "PReLU", "ReLU", "Softmax"})

"""Reshaping layers: Flatten, Reshape, Permute, RepeatVector."""

from __future__ import annotations

import math

from ..shapes import Site, rule
from ..stored_weights import no_variables
from ._shape_helpers import float_out, reshape_shape


@rule("Flatten")
def _flatten(site: Site):
    x = site.x
    rest = x[1:]
    if not rest:
        size = 1
    elif any(d is None for d in rest):
        size = None
    else:
        size = math.prod(rest)
    return float_out(site, (x[0], size))


@rule("Reshape")
def _reshape(site: Site):
    x = site.x
    target = site.config["target_shape"]
    return float_out(site, (x[0], *reshape_shape(x[1:], target)))


@rule("Permute")
def _permute(site: Site):
    x = site.x
    dims = site.config["dims"]
    return float_out(site, (x[0], *(x[d] for d in dims)))


@rule("RepeatVector")
def _repeat_vector(site: Site):
    x = site.x
    return float_out(site, (x[0], int(site.config["n"]), *x[1:]))


no_variables("Flatten", "Reshape", "Permute", "RepeatVector")

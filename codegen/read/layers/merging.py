"""Merge layers: Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate, Dot."""

from __future__ import annotations

from ..shapes import Site, is_float, rule
from ..stored_weights import no_variables
from ._shape_helpers import broadcast, out

# Element-wise merges: broadcast shapes; a Keras mask passes when every input has the same.
MERGE_LAYERS = ("Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum")


@rule(*MERGE_LAYERS)
def _merge(site: Site):
    refs = site.listed()
    shapes = [site.shape_of(r) for r in refs]
    return out(site, broadcast(*shapes))


@rule("Concatenate")
def _concatenate(site: Site):
    refs = site.listed()
    shapes = [site.shape_of(r) for r in refs]
    axis = int(site.config.get("axis", -1))
    rank = len(shapes[0])
    axis %= rank
    shape = list(shapes[0])
    for s in shapes[1:]:
        for i, d in enumerate(s):
            if i != axis and shape[i] is None:
                shape[i] = d
    sizes = [s[axis] for s in shapes]
    shape[axis] = None if any(d is None for d in sizes) else sum(sizes)
    dtypes = [site.dtype_of(r) for r in refs]
    dtype = site.compute_dtype if any(is_float(d) for d in dtypes) else dtypes[0]
    return out(site, shape, dtype)


@rule("Dot")
def _dot(site: Site):
    refs = site.listed()
    shape1, shape2 = (list(site.shape_of(r)) for r in refs[:2])
    axes = site.config.get("axes", -1)
    if isinstance(axes, int):
        axes = [axes % len(shape1), axes % len(shape2)] if axes < 0 else [axes, axes]
    shape1.pop(axes[0])
    shape2.pop(axes[1])
    shape2.pop(0)
    shape = shape1 + shape2
    if len(shape) == 1:
        shape += [1]
    return out(site, shape)


no_variables(*MERGE_LAYERS, "Concatenate", "Dot")

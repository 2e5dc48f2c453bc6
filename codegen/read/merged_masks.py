"""The Keras mask of a merge layer's output, from its inputs' masks, as graph operations.

The file reader makes these where a config does not record them (Keras 2 files, Sequential
configs). ``op(class_name, config, args)`` adds one keras.ops operation and returns its
output. Keras 2 and Keras 3 differ: for ``Concatenate`` both concatenate the masks (an
unmasked input counts as all True) and reduce over the last axis, Keras 2 with ``all``,
Keras 3 with ``any`` (after broadcasting each smaller mask to its input's shape); the other
merge layers and the masks in Keras 2, or them in Keras 3.
"""

from __future__ import annotations

from collections.abc import Callable

from codegen.ir.graph import Tensor

Op = Callable[[str, dict, tuple], Tensor]


def merge_mask(op: Op, masks: list[Tensor | None], keras2: bool) -> Tensor | None:
    """``Add``, ``Multiply``, ...: Keras 2 and-s the masks of the masked inputs; Keras 3
    or-s the masks when every input has one, else gives none."""
    present = [m for m in masks if m is not None]
    if not keras2 and len(present) < len(masks):
        return None
    result = present[0]
    for mask in present[1:]:
        result = op("LogicalAnd" if keras2 else "LogicalOr", {}, (result, mask))
    return result


def concatenate_mask(
    op: Op, inputs: list[Tensor], masks: list[Tensor | None], axis: int, keras2: bool
) -> Tensor:
    """``Concatenate(axis)``: what ``compute_mask`` computes in Keras 2 or Keras 3."""
    parts = []
    for tensor, mask in zip(inputs, masks):
        if mask is None:
            parts.append(op("OnesLike", {"dtype": "bool"}, (tensor,)))
        elif len(mask.shape) < len(tensor.shape):
            expanded = op("ExpandDims", {"axis": -1}, (mask,))
            if not keras2:  # Keras 3: broadcast to the input's shape
                zeros = op("ZerosLike", {"dtype": "bool"}, (tensor,))
                expanded = op("LogicalOr", {}, (expanded, zeros))
            parts.append(expanded)
        else:
            parts.append(mask)
    joined = op("Concatenate", {"axis": axis}, (parts,))
    return op("All" if keras2 else "Any", {"axis": -1, "keepdims": False}, (joined,))

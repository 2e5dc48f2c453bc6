"""TensorFlow's padding rules, shared by convolutions and pooling."""

from __future__ import annotations

import math


def same_pad(
    size: int | None, kernel: int, stride: int, dilation: int = 1
) -> tuple[int, int] | None:
    """(before, after) padding of TF 'same'; extra goes after. None if it depends on ``size``."""
    effective = (kernel - 1) * dilation + 1
    if stride == 1:
        total = effective - 1
    elif size is None:
        return None
    else:
        total = max((math.ceil(size / stride) - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2


def torch_pad_arg(pads: list[tuple[int, int]]) -> tuple[int, ...]:
    """F.pad's argument: pairs for the last dimension first."""
    return tuple(v for pair in reversed(pads) for v in pair)


def as_tuple(value, n: int) -> tuple[int, ...]:
    if isinstance(value, int):
        return (value,) * n
    value = tuple(int(v) for v in value)
    if len(value) == 1 and n > 1:
        return value * n
    return value


def compact(values: tuple[int, ...]):
    """``3`` for ``(3, 3)``: the short form torch accepts."""
    return values[0] if len(set(values)) == 1 else tuple(values)

"""Shape helpers the rules of several layer families share (Keras 3.15's own arithmetic)."""

from __future__ import annotations

import math

from ..shapes import Shape, ShapeError, Site, is_float


def ints(value, n: int) -> tuple:
    if isinstance(value, int):
        return (value,) * n
    value = tuple(value)
    if len(value) == 1 and n > 1:
        return value * n
    return value


def channels_last(config) -> bool:
    return (config.get("data_format") or "channels_last") != "channels_first"


def spatial_axes(shape: Shape, channels_last: bool) -> list[int]:
    """Keras axes of the spatial dims."""
    rank = len(shape)
    return list(range(1, rank - 1)) if channels_last else list(range(2, rank))


def conv_length(n, kernel: int, padding: str, stride: int, dilation: int = 1):
    if n is None:
        return None
    padding = padding.lower()
    effective = (kernel - 1) * dilation + 1
    if padding == "valid":
        return (n - effective) // stride + 1
    if padding in ("same", "causal"):
        return (n + stride - 1) // stride
    raise ShapeError(f"padding={padding!r}")


def deconv_length(n, kernel: int, padding: str, output_padding, stride: int, dilation: int = 1):
    if n is None:
        return None
    kernel = kernel + (kernel - 1) * (dilation - 1)
    padding = padding.lower()
    if output_padding is None:
        if padding == "valid":
            return n * stride + max(kernel - stride, 0)
        return n * stride
    pad = kernel // 2 if padding == "same" else 0
    return (n - 1) * stride + kernel - 2 * pad + output_padding


def broadcast(*shapes: Shape) -> Shape:
    """numpy broadcasting of Keras shapes, ``None`` meaning unknown."""
    rank = max((len(s) for s in shapes), default=0)
    out = []
    for i in range(rank):
        dims = [s[len(s) - rank + i] for s in shapes if len(s) - rank + i >= 0]
        known = [d for d in dims if d is not None and d != 1]
        if known:
            out.append(known[0])
        elif any(d is None for d in dims):
            out.append(None)
        else:
            out.append(1)
    return tuple(out)


def result_dtype(*dtypes: str) -> str:
    """Keras's result_type for tensors (``"float"``/``"int"`` stand for Python scalars)."""
    tensors = [d for d in dtypes if d not in ("float", "int")]
    floats = [d for d in tensors if is_float(d)]
    if floats:
        for d in ("float64", "float32", "bfloat16", "float16"):
            if d in floats:
                return d
        return floats[0]
    if "float" in dtypes:
        return "float32"
    ints = [d for d in tensors if d != "bool"]
    if ints:
        return "int64" if "int64" in ints else ints[0]
    if "int" in dtypes:
        return "int32"
    return tensors[0] if tensors else "float32"


def reshape_shape(input_shape: Shape, newshape) -> Shape:
    """keras operation_utils.compute_reshape_output_shape."""
    newshape = tuple(d if isinstance(d, int) else None for d in newshape)
    if None in input_shape or None in newshape:
        return tuple(None if d == -1 else d for d in newshape)
    size = math.prod(input_shape)
    if -1 not in newshape:
        return newshape
    known = math.prod(d for d in newshape if d != -1)
    return tuple(size // known if d == -1 and known else d for d in newshape)


def out(site: Site, shape, dtype: str | None = None) -> list:
    return [(tuple(shape), dtype or site.compute_dtype)]


def float_out(site: Site, shape) -> list:
    """Layers that keep integer inputs' dtype (reshaping, dropout...) and cast floats."""
    dtype = site.x_dtype
    return out(site, shape, site.compute_dtype if is_float(dtype) else dtype)


def same_shape(site: Site):
    """The input's shape in the layer's compute dtype."""
    return out(site, site.x)


def same_shape_keep_dtype(site: Site):
    """The input's shape; integer inputs keep their dtype."""
    return float_out(site, site.x)

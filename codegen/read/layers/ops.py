"""keras.ops operations a functional graph records (and tf.keras TensorFlow functions become,
see :mod:`codegen.read.tf_functions`). Operations hold no variables; their shape rules are
looked up by operation class name (``OP_RULES``). ``Any``/``All`` (Masking's mask) are
converted in ``recurrent.py``, ``Logsumexp`` in ``tfops.py``: one reduction rule serves all.
"""

from __future__ import annotations

import math
from typing import Any

from codegen.ir.graph import TensorRef

from ..shapes import Shape, ShapeError, Site, compute_dtype, is_float, op_rule
from ._shape_helpers import broadcast, reshape_shape, result_dtype


def _operands(site: Site, names: tuple[str, ...]) -> list:
    values = list(site.args[: len(names)])
    for name in names[len(values) :]:
        if name in site.kwargs:
            values.append(site.kwargs[name])
    return values


def _scalar_shape(value) -> Shape:
    if isinstance(value, TensorRef):
        raise AssertionError
    if hasattr(value, "shape") and hasattr(value, "dtype"):  # a numpy constant
        return tuple(int(d) for d in value.shape)
    if isinstance(value, (list, tuple)):
        inner = _scalar_shape(value[0]) if value else ()
        return (len(value), *inner)
    return ()


def _operand_shapes(site: Site, values) -> list[Shape]:
    return [site.shape_of(v) if isinstance(v, TensorRef) else _scalar_shape(v) for v in values]


_COMPARISONS = ("Greater", "GreaterEqual", "Less", "LessEqual", "Equal", "NotEqual")


_LOGICAL = ("LogicalAnd", "LogicalOr", "LogicalXor")


_ARITHMETIC = ("Add", "Subtract", "Multiply", "Mod", "Power", "Maximum", "Minimum", "FloorDivide")


@op_rule(*_ARITHMETIC, *_COMPARISONS, *_LOGICAL, "Divide", "TrueDivide")
def _binary(site: Site):
    values = _operands(site, ("x1", "x2"))
    shape = broadcast(*_operand_shapes(site, values))
    name = site.class_name
    if name in _COMPARISONS or name in _LOGICAL:
        return [(shape, "bool")]
    dtype = result_dtype(*(site.dtype_of(v) for v in values))
    if name in ("Divide", "TrueDivide") and not is_float(dtype):
        dtype = "float32"
    return [(shape, dtype)]


@op_rule("Where")
def _where(site: Site):
    values = _operands(site, ("condition", "x1", "x2"))
    shape = broadcast(*_operand_shapes(site, values))
    return [(shape, result_dtype(*(site.dtype_of(v) for v in values[1:])))]


_FLOAT_UNARY = [
    "Sqrt",
    "Rsqrt",
    "Exp",
    "Expm1",
    "Log",
    "Log1p",
    "Tanh",
    "Sin",
    "Cos",
    "Erf",
    "Sigmoid",
    "Silu",
    "HardSigmoid",
    "HardSilu",
    "Selu",
    "Softplus",
    "Softsign",
    "LogSigmoid",
    "Gelu",
    "Elu",
    "Celu",
    "LeakyRelu",
    "Relu6",
    "Softmax",
    "LogSoftmax",
    "Normalize",
]


_KEEP_UNARY = [
    "Negative",
    "Absolute",
    "Abs",
    "Square",
    "Sign",
    "Floor",
    "Ceil",
    "Round",
    "Relu",
    "Clip",
    "Reciprocal",
]


@op_rule(*_FLOAT_UNARY)
def _float_unary(site: Site):
    dtype = site.x_dtype
    return [(site.x, dtype if is_float(dtype) else "float32")]


@op_rule(*_KEEP_UNARY)
def _keep_unary(site: Site):
    return [(site.x, site.x_dtype)]


@op_rule("LogicalNot")
def _logical_not(site: Site):
    return [(site.x, "bool")]


@op_rule("Cast")
def _cast(site: Site):
    dtype = site.config.get("dtype")
    if isinstance(dtype, dict):
        dtype = compute_dtype(dtype)
    return [(site.x, str(dtype))]


def _reduce_shape(shape: Shape, axis, keepdims: bool) -> Shape:
    rank = len(shape)
    if axis is None:
        axes = set(range(rank))
    else:
        axes = {int(a) % rank for a in ([axis] if isinstance(axis, int) else axis)}
    if keepdims:
        return tuple(1 if i in axes else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in axes)


@op_rule("Mean", "Sum", "Max", "Min", "Prod", "Var", "Std", "Any", "All", "Logsumexp")
def _reduction(site: Site):
    cfg = site.config
    shape = _reduce_shape(site.x, cfg.get("axis"), bool(cfg.get("keepdims", False)))
    dtype = site.x_dtype
    name = site.class_name
    if name in ("Any", "All"):
        dtype = "bool"
    elif name in ("Mean", "Var", "Std", "Logsumexp") and not is_float(dtype):
        dtype = "float32"
    return [(shape, dtype)]


@op_rule("Concatenate")
def _op_concatenate(site: Site):
    refs = site.listed()
    shapes = [site.shape_of(r) for r in refs]
    axis = site.config.get("axis", 0)
    if axis is None:
        sizes = [None if None in s else math.prod(s) for s in shapes]
        return [
            (
                (None if None in sizes else sum(sizes),),
                result_dtype(*(site.dtype_of(r) for r in refs)),
            )
        ]
    axis = int(axis) % len(shapes[0])
    out = list(shapes[0])
    for s in shapes[1:]:
        for i, d in enumerate(s):
            if i != axis and out[i] is None:
                out[i] = d
    sizes = [s[axis] for s in shapes]
    out[axis] = None if any(d is None for d in sizes) else sum(sizes)
    return [(tuple(out), result_dtype(*(site.dtype_of(r) for r in refs)))]


@op_rule("Stack")
def _stack(site: Site):
    refs = site.listed()
    shape = broadcast(*(site.shape_of(r) for r in refs))
    axis = int(site.config.get("axis", 0)) % (len(shape) + 1)
    out = list(shape)
    out.insert(axis, len(refs))
    return [(tuple(out), result_dtype(*(site.dtype_of(r) for r in refs)))]


@op_rule("ExpandDims")
def _expand_dims(site: Site):
    axis = site.config.get("axis")
    axes = [axis] if isinstance(axis, int) else list(axis)
    rank = len(site.x) + len(axes)
    axes = sorted(int(a) % rank for a in axes)
    out = list(site.x)
    for a in axes:
        out.insert(a, 1)
    return [(tuple(out), site.x_dtype)]


@op_rule("Squeeze")
def _squeeze(site: Site):
    axis = site.config.get("axis")
    x = site.x
    if axis is None:
        axes = {i for i, d in enumerate(x) if d == 1}
    else:
        axes = {int(a) % len(x) for a in ([axis] if isinstance(axis, int) else axis)}
    return [(tuple(d for i, d in enumerate(x) if i not in axes), site.x_dtype)]


@op_rule("Transpose")
def _transpose(site: Site):
    x = site.x
    axes = site.config.get("axes")
    axes = list(reversed(range(len(x)))) if axes is None else [int(a) % len(x) for a in axes]
    return [(tuple(x[a] for a in axes), site.x_dtype)]


@op_rule("Reshape")
def _op_reshape(site: Site):
    newshape = site.config.get("newshape", site.config.get("new_shape"))
    if isinstance(newshape, int):
        newshape = (newshape,)
    return [(reshape_shape(site.x, tuple(newshape)), site.x_dtype)]


@op_rule("Matmul")
def _matmul(site: Site):
    a, b = (site.shape_of(v) for v in _operands(site, ("x1", "x2")))
    if len(a) == 1 and len(b) == 1:
        out: tuple = ()
    elif len(b) == 1:
        out = a[:-1]
    elif len(a) == 1:
        out = b[:-2] + b[-1:]
    else:
        out = broadcast(a[:-2], b[:-2]) + (a[-2], b[-1])
    values = _operands(site, ("x1", "x2"))
    return [(tuple(out), result_dtype(*(site.dtype_of(v) for v in values)))]


@op_rule("Einsum")
def _einsum(site: Site):
    subscripts = str(site.config.get("subscripts", "")).replace(" ", "")
    terms, _, out = subscripts.partition("->")
    terms = terms.split(",")
    sizes: dict[str, Any] = {}
    refs = [v for v in site.args if isinstance(v, TensorRef)]
    if "." in subscripts or len(refs) != len(terms):
        raise ShapeError(f"einsum {subscripts!r}")
    for term, ref in zip(terms, refs):
        for letter, d in zip(term, site.shape_of(ref)):
            if sizes.get(letter) is None:
                sizes[letter] = d
    if not _:
        letters = "".join(terms)
        out = "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
    return [(tuple(sizes[c] for c in out), result_dtype(*(site.dtype_of(r) for r in refs)))]


def _dtype_config(site: Site, default: str) -> str:
    dtype = site.config.get("dtype")
    if isinstance(dtype, dict):
        dtype = compute_dtype(dtype)
    return default if dtype is None else str(dtype)


@op_rule("OnesLike", "ZerosLike", "FullLike")
def _like(site: Site):
    return [(site.x, _dtype_config(site, site.x_dtype))]


@op_rule("Cumsum", "Cumprod")
def _cumulative(site: Site):
    x = site.x
    axis = site.config.get("axis")
    source = site.x_dtype
    dtype = _dtype_config(site, "int32" if source == "bool" else source)
    if axis is None:
        return [((None if None in x else math.prod(x),), dtype)]
    return [(x, dtype)]


def _operand_shape(site: Site, value) -> Shape:
    return site.shape_of(value) if isinstance(value, TensorRef) else _scalar_shape(value)


@op_rule("Take")
def _take(site: Site):
    data, indices = _operands(site, ("x", "indices"))
    x = _operand_shape(site, data)
    index = _operand_shape(site, indices)
    axis = site.config.get("axis")
    dtype = (
        site.dtype_of(data)
        if isinstance(data, TensorRef)
        else str(getattr(data, "dtype", "float32"))
    )
    if axis is None:
        return [(index, dtype)]
    axis = int(axis) % len(x)
    return [((*x[:axis], *index, *x[axis + 1 :]), dtype)]


@op_rule("TakeAlongAxis")
def _take_along_axis(site: Site):
    data, indices = _operands(site, ("x", "indices"))
    x, index = site.shape_of(data), site.shape_of(indices)
    axis = site.config.get("axis")
    if axis is None:
        return [((None if None in index else math.prod(index),), site.dtype_of(data))]
    axis = int(axis) % len(x)
    others = broadcast(
        tuple(1 if i == axis else d for i, d in enumerate(x)),
        tuple(1 if i == axis else d for i, d in enumerate(index)),
    )
    return [
        (tuple(index[axis] if i == axis else d for i, d in enumerate(others)), site.dtype_of(data))
    ]


@op_rule("Tile")
def _tile(site: Site):
    x = site.x
    reps = site.config.get("repeats")
    reps = [reps] if isinstance(reps, int) else list(reps)
    rank = max(len(x), len(reps))
    x = (1,) * (rank - len(x)) + tuple(x)
    reps = [1] * (rank - len(reps)) + reps
    return [(tuple(None if d is None else d * r for d, r in zip(x, reps)), site.x_dtype)]


@op_rule("Repeat")
def _repeat(site: Site):
    x = site.x
    repeats = site.config.get("repeats")
    count = repeats if isinstance(repeats, int) else (repeats[0] if len(repeats) == 1 else None)
    axis = site.config.get("axis")
    if axis is None:
        size = None if None in x or count is None else math.prod(x) * count
        return [((size,), site.x_dtype)]
    axis = int(axis) % len(x)
    out = list(x)
    out[axis] = None if x[axis] is None or count is None else x[axis] * count
    return [(tuple(out), site.x_dtype)]


@op_rule("BroadcastTo")
def _broadcast_to(site: Site):
    shape = site.config.get("shape")
    return [(tuple(shape), site.x_dtype)]


def _slice_length(n, item: slice):
    if n is None:
        if item.start is None and item.stop is None and item.step in (None, 1):
            return None
        # Keras gives None unless both ends are known non-negative numbers.
        start, stop, step = item.start, item.stop, item.step or 1
        if step > 0 and start is not None and stop is not None and start >= 0 and stop >= 0:
            return max(0, (stop - start + step - 1) // step)
        return None
    return len(range(*item.indices(n)))


@op_rule("GetItem")
def _get_item(site: Site):
    values = _operands(site, ("x", "key"))
    x = site.shape_of(values[0])
    key = values[1]
    key = tuple(key) if isinstance(key, (list, tuple)) else (key,)
    consumed = sum(1 for k in key if k is not None and k is not Ellipsis)
    out = []
    axis = 0
    for item in key:
        if item is Ellipsis:
            count = len(x) - consumed
            out.extend(x[axis : axis + count])
            axis += count
        elif item is None:
            out.append(1)
        elif isinstance(item, slice):
            out.append(_slice_length(x[axis], item))
            axis += 1
        elif isinstance(item, int):
            axis += 1
        else:
            raise ShapeError(f"index {item!r}")
    out.extend(x[axis:])
    return [(tuple(out), site.dtype_of(values[0]))]

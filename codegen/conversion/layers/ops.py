"""keras.ops calls recorded as operations in functional graphs (``x + 3.0``, ``ops.relu(x)``, ...).

Keras keeps the static arguments of an operation (``axis``, ``keepdims``, ...) on the operation
object (the reader puts them in ``config``) and the call's tensors and constants in
``call.args``/``call.kwargs``, tensors marked by :class:`TensorRef`. Each converter writes the
operation the way the Keras source spelled it: ``x + 3.0``, ``torch.relu(x)``, ``x.mean(...)``.
Arithmetic follows numpy broadcasting (missing axes in front), remapped through each tensor's
layout, so channels-first tensors stay channels-first.

Size: about a hundred small converters (one per keras.ops operation) sharing the
broadcasting, constant and axis helpers at the top; split by operation kind they would
import each other's helpers both ways.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import torch

from codegen.ir.graph import TensorRef
from codegen.ir.layout import Layout, channels_first, keras_order

from ..context import CallContext, Unsupported
from ..dtypes import TORCH_DTYPES
from ..registry import AGNOSTIC, KERAS, register
from .merging import broadcast_input, common_layout, concatenate_expr, torch_dim


# -- arguments --------------------------------------------------------------------------
def as_array(value) -> np.ndarray | None:
    """A constant array argument as numpy: numpy arrays and scalars, backend tensors (an
    ``EagerTensor`` Keras computed while the graph was built, such as ``pos_emb(ops.arange(n))``)
    and variables; ``None`` for anything else (Python numbers, tensor references, ...)."""
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, np.generic):
        return np.asarray(value)
    if value is None or isinstance(
        value, (TensorRef, str, bytes, numbers.Number, list, tuple, dict, slice)
    ):
        return None
    to_numpy = getattr(value, "numpy", None)
    if callable(to_numpy) and hasattr(value, "shape") and hasattr(value, "dtype"):
        try:
            return np.asarray(to_numpy())
        except (TypeError, ValueError, RuntimeError, NotImplementedError):  # not concrete
            return None
    return None


def _float_text(value: float, dtype) -> str:
    """Python source for a float: the shortest text that gives back the same ``dtype`` value."""
    if math.isnan(value):
        return "math.nan"
    if math.isinf(value):
        return "math.inf" if value > 0 else "-math.inf"
    text = repr(float(value))
    if np.dtype(dtype) == np.float32:
        short = str(np.float32(value))  # numpy's shortest round-trip text for float32
        try:
            if np.float32(float(short)) == np.float32(value) and any(c in short for c in ".e"):
                text = short
        except ValueError:
            pass
    return text


def constant(value) -> str:
    """Python source for a scalar constant argument; anything else is unsupported."""
    array = as_array(value)
    if array is not None:
        if array.ndim != 0:
            raise Unsupported(f"constant argument of shape {array.shape} here")
        value = array[()]
    if isinstance(value, np.generic):
        dtype = value.dtype
        value = value.item()
    else:
        dtype = np.float64
    if isinstance(value, bool):
        return repr(value)
    if isinstance(value, numbers.Integral):
        text = repr(int(value))
    elif isinstance(value, numbers.Real):
        text = _float_text(float(value), dtype)
        if text.startswith(("math.", "-math.")):
            return text
    else:
        kind = type(value).__name__
        raise Unsupported(f"constant argument of type {kind} (only scalar constants are supported)")
    return f"({text})" if text.startswith("-") else text


# Arrays up to this many values are written into the code; larger ones become buffers.
INLINE_MAX_ELEMENTS = 16
# What torch.tensor() makes of Python floats, ints and bools without a dtype argument.
_DEFAULT_DTYPES = {"f": "float32", "i": "int64", "b": "bool"}


def _literal(array: np.ndarray) -> str:
    if array.ndim == 0:
        value = array.item()
        if array.dtype.kind == "b":
            return repr(bool(value))
        if array.dtype.kind in "iu":
            return repr(int(value))
        return _float_text(float(value), array.dtype)
    return "[" + ", ".join(_literal(item) for item in array) + "]"


def array_constant(ctx: CallContext, array: np.ndarray, layout: Layout | None = None) -> str:
    """``self.<operation>_constant``: a buffer holding a constant array argument, laid out for
    ``layout`` when given; returns the expression that reads it.

    A buffer moves with ``model.to(device)``, which a ``torch.tensor(...)`` written in
    ``forward`` would not. Up to :data:`INLINE_MAX_ELEMENTS` values are written into the code
    (a non-persistent buffer); a larger array is a persistent buffer filled from the state_dict
    (transform ``constant``), so no values from the file reach the code.
    """
    array = np.asarray(array)
    name = array.dtype.name
    if name not in TORCH_DTYPES:
        raise Unsupported(f"constant argument of dtype {name}")
    if layout is not None and array.ndim and not layout.is_keras_order:
        if layout.feature_order is not None:
            raise Unsupported(
                "a constant array broadcast against a flattened channels-first tensor"
            )
        # numpy broadcasting: the missing axes go in front; then the torch axis order.
        rank = array.ndim
        array = array.reshape((1,) * (layout.rank - rank) + array.shape).transpose(layout.perm)
        while array.ndim > rank and array.shape[0] == 1:
            array = array[0]
    hint = f"{ctx.layer.name}_constant"
    if array.size <= INLINE_MAX_ELEMENTS:
        default = _DEFAULT_DTYPES.get(array.dtype.kind)
        dtype = "" if name == default else f", dtype={TORCH_DTYPES[name]}"
        return ctx.buffer(hint, f"torch.tensor({_literal(array)}{dtype}), persistent=False")
    dtype = "" if name == "float32" else f", dtype={TORCH_DTYPES[name]}"
    shape = ", ".join(str(int(d)) for d in array.shape)
    return ctx.buffer(hint, f"torch.zeros({shape}{dtype})", array=array)


def arguments(ctx: CallContext, names: tuple[str, ...]) -> list:
    """The call's arguments in signature order (positional first, then by keyword)."""
    call = ctx.call
    values = list(call.args)
    kwargs = dict(call.kwargs)
    for name in names[len(values) :]:
        if name in kwargs:
            values.append(kwargs.pop(name))
    extra = {k: v for k, v in kwargs.items() if v is not None}
    if extra or len(values) > len(names):
        raise Unsupported(f"arguments {sorted(extra) or values[len(names):]!r}")
    return values


def operands(ctx: CallContext, values: list) -> tuple[list[str], Layout]:
    """Expressions for tensor and constant arguments, broadcast numpy-style in one layout."""
    positions = [v.position for v in values if isinstance(v, TensorRef)]
    if not positions:
        raise Unsupported("operation without tensor arguments")
    target = common_layout(ctx, positions)
    arrays = [as_array(v) if not isinstance(v, TensorRef) else None for v in values]
    ranks = [a.ndim for a in arrays if a is not None]
    if ranks and max(ranks) > target.rank:
        target = keras_order(max(ranks))  # the constant adds axes in front of the tensors
    exprs = []
    for value, array in zip(values, arrays):
        if isinstance(value, TensorRef):
            exprs.append(broadcast_input(ctx, value.position, target, insert_at=0))
        elif array is not None and array.ndim > 0:
            exprs.append(array_constant(ctx, array, target))
        else:
            exprs.append(constant(value))
    return exprs, target


def _torch_dtype_name(dtype: str) -> str | None:
    return dtype if isinstance(getattr(torch, str(dtype), None), torch.dtype) else None


def check_result_dtype(ctx: CallContext, values: list, op: str) -> None:
    """Raise Unsupported unless torch's type promotion gives the dtype Keras recorded.

    Keras and torch agree on tensors and Python numbers; a numpy scalar (``np.float64(2.0)``)
    counts as a typed array in Keras but as a plain number once written in the code.
    """
    out = _torch_dtype_name(ctx.call.outputs[0].dtype)
    if out is None:
        return
    dummies = []
    for value in values:
        array = None if isinstance(value, TensorRef) else as_array(value)
        if isinstance(value, TensorRef) or (array is not None and array.ndim > 0):
            dtype = ctx.call.inputs[value.position].dtype if array is None else array.dtype.name
            if _torch_dtype_name(dtype) is None:
                return
            dummies.append(torch.zeros(1, dtype=getattr(torch, dtype)))
        else:
            scalar = array.item() if array is not None else value
            if not isinstance(scalar, (bool, numbers.Number)):
                return
            dummies.append(scalar)
    if len(dummies) != 2:
        return
    a, b = dummies
    if not isinstance(a, torch.Tensor):
        a = torch.tensor(a)  # wrapped numbers behave like 0-dim tensors for promotion
    result = torch.result_type(a, b)
    if op in ("/",) and not result.is_floating_point:
        result = torch.get_default_dtype()
    if result != getattr(torch, out):
        raise Unsupported(
            f"computes in {out} where torch would compute in {str(result).replace('torch.', '')}"
        )


def _float_inputs(ctx: CallContext, what: str) -> None:
    for tensor in ctx.call.inputs:
        if "float" not in tensor.dtype:
            raise Unsupported(f"{what} of a {tensor.dtype} tensor")


def _single_input(ctx: CallContext) -> str:
    values = arguments(ctx, ("x",))
    if len(values) != 1 or not isinstance(values[0], TensorRef):
        raise Unsupported("expected one tensor argument")
    return ctx.input(values[0].position)


# -- arithmetic and comparisons ---------------------------------------------------------
_BINARY = {
    "Add": "+",
    "Subtract": "-",
    "Multiply": "*",
    "Divide": "/",
    "TrueDivide": "/",
    "FloorDivide": "//",
    "Mod": "%",
    "Power": "**",
    "Greater": ">",
    "GreaterEqual": ">=",
    "Less": "<",
    "LessEqual": "<=",
    "Equal": "==",
    "NotEqual": "!=",
}
_COMPARISONS = {">", ">=", "<", "<=", "==", "!="}


@register(*_BINARY, layout=AGNOSTIC, op=True)
def binary(call, ctx: CallContext) -> None:
    values = arguments(ctx, ("x1", "x2"))
    (a, b), layout = operands(ctx, values)
    op = _BINARY[call.layer.class_name]
    if op not in _COMPARISONS:
        check_result_dtype(ctx, values, op)
    ctx.output(f"{a} {op} {b}", layout)


@register("Maximum", "Minimum", layout=AGNOSTIC, op=True)
def maximum(call, ctx: CallContext) -> None:
    values = arguments(ctx, ("x1", "x2"))
    (a, b), layout = operands(ctx, values)
    name = call.layer.class_name.lower()
    check_result_dtype(ctx, values, name)
    tensors = [isinstance(v, TensorRef) for v in values]
    if all(tensors) or any(a is not None and a.ndim > 0 for a in map(as_array, values)):
        ctx.output(f"torch.{name}({a}, {b})", layout)
        return
    _float_inputs(ctx, f"{name} with a constant")
    x, c = (a, b) if tensors[0] else (b, a)
    bound = "min" if name == "maximum" else "max"
    ctx.output(f"torch.clamp({x}, {bound}={c})", layout)


@register("Clip", layout=AGNOSTIC, op=True)
def clip(call, ctx: CallContext) -> None:
    x = _single_input(ctx)
    _float_inputs(ctx, "clip")
    lo, hi = ctx.config.get("x_min"), ctx.config.get("x_max")
    ctx.output(f"torch.clamp({x}, {constant(lo)}, {constant(hi)})")


@register("Where", layout=AGNOSTIC, op=True)
def where(call, ctx: CallContext) -> None:
    values = arguments(ctx, ("condition", "x1", "x2"))
    if len(values) != 3:
        raise Unsupported("where() with only a condition (returns indices)")
    (c, a, b), layout = operands(ctx, values)
    ctx.output(f"torch.where({c}, {a}, {b})", layout)


@register("LogicalAnd", "LogicalOr", "LogicalXor", layout=AGNOSTIC, op=True)
def logical(call, ctx: CallContext) -> None:
    (a, b), layout = operands(ctx, arguments(ctx, ("x1", "x2")))
    name = {"LogicalAnd": "logical_and", "LogicalOr": "logical_or", "LogicalXor": "logical_xor"}
    ctx.output(f"torch.{name[call.layer.class_name]}({a}, {b})", layout)


# -- unary element-wise -----------------------------------------------------------------
_UNARY = {
    "Negative": "-{x}",
    "Absolute": "torch.abs({x})",
    "Abs": "torch.abs({x})",
    "Square": "torch.square({x})",
    "Sqrt": "torch.sqrt({x})",
    "Rsqrt": "torch.rsqrt({x})",
    "Exp": "torch.exp({x})",
    "Expm1": "torch.expm1({x})",
    "Log": "torch.log({x})",
    "Log1p": "torch.log1p({x})",
    "Reciprocal": "torch.reciprocal({x})",
    "Sign": "torch.sign({x})",
    "Floor": "torch.floor({x})",
    "Ceil": "torch.ceil({x})",
    "Tanh": "torch.tanh({x})",
    "Sin": "torch.sin({x})",
    "Cos": "torch.cos({x})",
    "Erf": "torch.erf({x})",
    "LogicalNot": "torch.logical_not({x})",
    "Sigmoid": "torch.sigmoid({x})",
    "Relu": "torch.relu({x})",
    "Relu6": "F.relu6({x})",
    "Silu": "F.silu({x})",
    "HardSigmoid": "F.hardsigmoid({x})",  # Keras 3: relu6(x + 3) / 6
    "HardSilu": "F.hardswish({x})",
    "Selu": "F.selu({x})",
    "Softplus": "F.softplus({x})",
    "Softsign": "F.softsign({x})",
    "LogSigmoid": "F.logsigmoid({x})",
}
# Functions Keras computes in floating point even for integer inputs, as torch does.
_FLOAT_RESULT = {"Sqrt", "Rsqrt", "Exp", "Expm1", "Log", "Log1p", "Sin", "Cos", "Erf", "Tanh"}


@register(*_UNARY, layout=AGNOSTIC, elementwise=True, op=True)
def unary(call, ctx: CallContext) -> None:
    name = call.layer.class_name
    if name not in _FLOAT_RESULT and name not in (
        "Negative",
        "Absolute",
        "Abs",
        "Sign",
        "LogicalNot",
    ):
        _float_inputs(ctx, name)
    ctx.output(_UNARY[name].format(x=_single_input(ctx)))


@register("Round", layout=AGNOSTIC, elementwise=True, op=True)
def round_(call, ctx: CallContext) -> None:
    decimals = int(ctx.config.get("decimals", 0) or 0)
    x = _single_input(ctx)
    _float_inputs(ctx, "round")
    ctx.output(f"torch.round({x})" if decimals == 0 else f"torch.round({x}, decimals={decimals})")


@register("Elu", "Celu", layout=AGNOSTIC, elementwise=True, op=True)
def elu(call, ctx: CallContext) -> None:
    alpha = float(ctx.config.get("alpha", 1.0))
    fn = "F.elu" if call.layer.class_name == "Elu" else "F.celu"
    x = _single_input(ctx)
    ctx.output(f"{fn}({x})" if alpha == 1.0 else f"{fn}({x}, {alpha!r})")


@register("LeakyRelu", layout=AGNOSTIC, elementwise=True, op=True)
def leaky_relu(call, ctx: CallContext) -> None:
    slope = float(ctx.config.get("negative_slope", 0.2))
    ctx.output(f"F.leaky_relu({_single_input(ctx)}, {slope!r})")


@register("Gelu", layout=AGNOSTIC, elementwise=True, op=True)
def gelu(call, ctx: CallContext) -> None:
    approximate = ctx.config.get("approximate", True)  # Keras's ops.gelu defaults to tanh
    x = _single_input(ctx)
    ctx.output(f'F.gelu({x}, approximate="tanh")' if approximate else f"F.gelu({x})")


@register("Softmax", "LogSoftmax", layout=AGNOSTIC, op=True)
def softmax(call, ctx: CallContext) -> None:
    axis = ctx.config.get("axis", -1)
    if isinstance(axis, (list, tuple)):
        if len(axis) != 1:
            raise Unsupported(f"axis={axis!r} (several axes)")
        axis = axis[0]
    layout = ctx.input_layout()
    if layout.feature_order is not None:
        raise Unsupported("softmax of a flattened channels-first tensor")
    fn = "torch.softmax" if call.layer.class_name == "Softmax" else "torch.log_softmax"
    ctx.output(f"{fn}({_single_input(ctx)}, dim={torch_dim(layout, int(axis))})", layout)


@register("Normalize", layout=AGNOSTIC, op=True)
def normalize(call, ctx: CallContext) -> None:
    cfg = ctx.config
    axis, order = int(cfg.get("axis", -1)), cfg.get("order", 2)
    epsilon = cfg.get("epsilon")
    epsilon = 1e-07 if epsilon is None else float(epsilon)  # Keras's backend.epsilon() default
    layout = ctx.input_layout()
    if layout.feature_order is not None:
        raise Unsupported("normalize of a flattened channels-first tensor")
    if not isinstance(order, int) or order < 1:
        raise Unsupported(f"order={order!r}")
    x = _single_input(ctx)
    dim = torch_dim(layout, axis)
    if order == 2:
        ctx.output(f"F.normalize({x}, dim={dim}, eps={epsilon!r})", layout)
    else:
        ctx.output(f"F.normalize({x}, p={order}, dim={dim}, eps={epsilon!r})", layout)


@register("Cast", layout=AGNOSTIC, elementwise=True, op=True)
def cast(call, ctx: CallContext) -> None:
    dtype = ctx.config.get("dtype")
    if isinstance(dtype, dict):
        dtype = (dtype.get("config") or {}).get("name")
    names = {
        "float16",
        "float32",
        "float64",
        "bfloat16",
        "int8",
        "int16",
        "int32",
        "int64",
        "uint8",
        "bool",
    }
    if dtype not in names:
        raise Unsupported(f"cast to dtype={dtype!r}")
    ctx.output(f"{_single_input(ctx)}.to(torch.{dtype})")


# -- reductions -------------------------------------------------------------------------
def reduced_layout(layout: Layout, torch_dims: set[int]) -> Layout:
    kept = [axis for k, axis in enumerate(layout.perm) if k not in torch_dims]
    ranks = sorted(kept)
    return Layout(tuple(ranks.index(axis) for axis in kept))


_REDUCTIONS = {
    "Mean": "torch.mean",
    "Sum": "torch.sum",
    "Max": "torch.amax",
    "Min": "torch.amin",
    "Prod": "torch.prod",
    "Var": "torch.var",
    "Std": "torch.std",
}


@register(*_REDUCTIONS, layout=AGNOSTIC, op=True)
def reduction(call, ctx: CallContext) -> None:
    cfg = ctx.config
    name = call.layer.class_name
    axis, keepdims = cfg.get("axis"), bool(cfg.get("keepdims", False))
    if cfg.get("initial") is not None:
        raise Unsupported(f"initial={cfg['initial']!r}")
    if cfg.get("dtype") is not None:
        raise Unsupported(f"dtype={cfg['dtype']!r}")
    _float_inputs(ctx, name.lower())
    layout = ctx.input_layout()
    if layout.feature_order is not None:
        raise Unsupported("reduction of a flattened channels-first tensor")
    x = _single_input(ctx)
    rank = layout.rank
    axes = list(range(rank)) if axis is None else [axis] if isinstance(axis, int) else list(axis)
    dims = sorted({layout.torch_axis(int(a)) for a in axes})
    fn = _REDUCTIONS[name]
    extra = ", correction=0" if name in ("Var", "Std") else ""
    keep = ", keepdim=True" if keepdims else ""
    if len(dims) == rank and not keepdims and name != "Prod":
        expr = f"{fn}({x}{extra})"
    elif len(dims) == 1:
        expr = f"{fn}({x}, dim={dims[0]}{extra}{keep})"
    elif name == "Prod":
        raise Unsupported("prod over several axes")
    else:
        expr = f"{fn}({x}, dim={tuple(dims)}{extra}{keep})"
    if name == "Prod" and len(dims) == rank and not keepdims:
        expr = f"torch.prod({x})"
    ctx.output(expr, layout if keepdims else reduced_layout(layout, set(dims)))


# -- shapes -----------------------------------------------------------------------------
@register("Concatenate", layout=AGNOSTIC, op=True)
def concatenate(call, ctx: CallContext) -> None:
    values = arguments(ctx, ("xs",))
    items = values[0] if values and isinstance(values[0], (list, tuple)) else None
    if not items or not all(isinstance(v, TensorRef) for v in items):
        raise Unsupported("concatenate of constants")
    expr, layout = concatenate_expr(
        ctx, int(ctx.config.get("axis", 0)), [v.position for v in items]
    )
    ctx.output(expr, layout)


def _insert_axis(layout: Layout, keras_axis: int) -> tuple[int, Layout]:
    """Torch position and output layout for a new axis at ``keras_axis`` of the output.

    The new axis goes where it keeps the other axes in Keras order, unless another place
    gives the channels-first layout the rest of the module uses (``mean(x, -1)`` expanded
    back to a channel axis lands at position 1).
    """
    shifted = [axis if axis < keras_axis else axis + 1 for axis in layout.perm]
    candidates = [
        Layout(tuple(shifted[:k] + [keras_axis] + shifted[k:])) for k in range(len(shifted) + 1)
    ]
    preferred = channels_first(layout.rank + 1)
    if preferred in candidates:
        return candidates.index(preferred), preferred
    position = sum(1 for axis in layout.perm if axis < keras_axis)
    return position, candidates[position]


@register("Stack", layout=AGNOSTIC, op=True)
def stack(call, ctx: CallContext) -> None:
    values = arguments(ctx, ("x",))
    items = values[0] if values and isinstance(values[0], (list, tuple)) else None
    if not items or not all(isinstance(v, TensorRef) for v in items):
        raise Unsupported("stack of constants")
    positions = [v.position for v in items]
    if len({len(ctx.input_shape(i)) for i in positions}) != 1:
        raise Unsupported("stack of tensors of different ranks")
    layout = common_layout(ctx, positions)
    if layout.feature_order is not None:
        raise Unsupported("stack of flattened channels-first tensors")
    axis = int(ctx.config.get("axis", 0)) % (layout.rank + 1)
    dim, out = _insert_axis(layout, axis)
    xs = [ctx.input(i, layout if ctx.input_layout(i) != layout else None) for i in positions]
    ctx.output(f"torch.stack([{', '.join(xs)}], dim={dim})", out)


def _axes_config(ctx: CallContext, rank: int) -> list[int]:
    axis = ctx.config.get("axis")
    if axis is None:
        raise Unsupported("axis=None")
    axes = [axis] if isinstance(axis, int) else list(axis)
    return sorted(int(a) % rank for a in axes)


@register("ExpandDims", layout=AGNOSTIC, op=True)
def expand_dims(call, ctx: CallContext) -> None:
    layout = ctx.input_layout()
    if layout.feature_order is not None:
        raise Unsupported("expand_dims of a flattened channels-first tensor")
    axes = _axes_config(ctx, layout.rank + 1)
    if len(axes) != 1:
        raise Unsupported(f"axis={ctx.config['axis']!r} (several axes)")
    dim, out = _insert_axis(layout, axes[0])
    ctx.output(f"{_single_input(ctx)}.unsqueeze({dim})", out)


@register("Squeeze", layout=AGNOSTIC, op=True)
def squeeze(call, ctx: CallContext) -> None:
    layout = ctx.input_layout()
    if layout.feature_order is not None:
        raise Unsupported("squeeze of a flattened channels-first tensor")
    axes = _axes_config(ctx, layout.rank)
    if any(ctx.input_shape()[a] != 1 for a in axes):
        raise Unsupported(f"squeeze of axis {axes} whose size is not statically 1")
    dims = sorted(layout.torch_axis(a) for a in axes)
    x = _single_input(ctx)
    arg = dims[0] if len(dims) == 1 else tuple(dims)
    ctx.output(f"{x}.squeeze({arg})", reduced_layout(layout, set(dims)))


@register("Transpose", layout=AGNOSTIC, op=True)
def transpose(call, ctx: CallContext) -> None:
    layout = ctx.input_layout()
    if layout.feature_order is not None:
        raise Unsupported("transpose of a flattened channels-first tensor")
    rank = layout.rank
    axes = ctx.config.get("axes")
    axes = list(reversed(range(rank))) if axes is None else [int(a) % rank for a in axes]
    # One permute from the current layout straight to the transposed tensor in Keras order.
    perm = tuple(layout.perm.index(a) for a in axes)
    x = _single_input(ctx)
    if perm == tuple(range(rank)):
        ctx.output(x, keras_order(rank))
    else:
        ctx.output(f"{x}.permute{perm}", keras_order(rank))


@register("Reshape", layout=KERAS, op=True)
def reshape(call, ctx: CallContext) -> None:
    shape = ctx.config.get("newshape")
    if shape is None:
        shape = ctx.config.get("new_shape")
    if isinstance(shape, int):
        shape = (shape,)
    if not shape or any(d is None for d in shape):
        raise Unsupported(f"newshape={shape!r}")
    shape = tuple(int(d) for d in shape)
    x = ctx.input(0, keras_order(ctx.input_layout().rank))
    arguments(ctx, ("x",))
    ctx.output(f"torch.reshape({x}, {shape!r})", keras_order(len(shape)))


@register("Matmul", layout=KERAS, op=True)
def matmul(call, ctx: CallContext) -> None:
    values = arguments(ctx, ("x1", "x2"))
    if not all(isinstance(v, TensorRef) for v in values):
        raise Unsupported("matmul with a constant")
    a, b = (ctx.input(v.position, keras_order(len(ctx.input_shape(v.position)))) for v in values)
    ctx.output(f"{a} @ {b}", keras_order(len(ctx.output_shape())))


@register("Einsum", layout=AGNOSTIC, op=True)
def einsum(call, ctx: CallContext) -> None:
    subscripts = str(ctx.config.get("subscripts", "")).replace(" ", "")
    values = list(ctx.call.args)
    if ctx.call.kwargs or not values or not all(isinstance(v, TensorRef) for v in values):
        raise Unsupported("einsum with constant operands")
    if "." in subscripts:
        raise Unsupported(f"einsum {subscripts!r} with an ellipsis")
    terms, _, out = subscripts.partition("->")
    terms = terms.split(",")
    if not _:
        letters = "".join(terms)
        out = "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
    if len(terms) != len(values) or not subscripts.replace(",", "").replace("->", "").isalpha():
        raise Unsupported(f"einsum {subscripts!r}")
    torch_terms, xs = [], []
    for term, value in zip(terms, values):
        layout = ctx.input_layout(value.position)
        if layout.feature_order is not None or len(term) != layout.rank:
            raise Unsupported(f"einsum {subscripts!r} on a tensor of this layout")
        torch_terms.append("".join(term[axis] for axis in layout.perm))
        xs.append(ctx.input(value.position))
    spec = ",".join(torch_terms) + "->" + out
    ctx.output(f'torch.einsum("{spec}", {", ".join(xs)})', keras_order(len(out)))


def _index_text(item) -> str:
    if item is None:
        return "None"
    if item is Ellipsis:
        return "..."
    if isinstance(item, slice):
        parts = []
        for part in (item.start, item.stop):
            parts.append("" if part is None else str(int(part)))
        text = ":".join(parts)
        if item.step not in (None, 1):
            text += f":{int(item.step)}"
        return text
    return str(int(item))


def _check_index(item) -> None:
    if isinstance(item, TensorRef):
        raise Unsupported("indexing with a tensor")
    if isinstance(item, slice):
        for part in (item.start, item.stop, item.step):
            if part is not None and not isinstance(part, numbers.Integral):
                raise Unsupported(f"slice bound {part!r}")
        if item.step is not None and int(item.step) == 0:
            raise Unsupported("slice step 0")
    elif item is not None and item is not Ellipsis and not isinstance(item, numbers.Integral):
        raise Unsupported(f"index {item!r}")


@register("GetItem", layout=AGNOSTIC, op=True)
def get_item(call, ctx: CallContext) -> None:
    values = arguments(ctx, ("x", "key"))
    if len(values) != 2 or not isinstance(values[0], TensorRef):
        raise Unsupported("indexing a constant")
    key = values[1]
    if isinstance(key, list) and any(
        isinstance(i, slice) or i is None or i is Ellipsis for i in key
    ):
        key = tuple(key)  # a tuple index saved to JSON and loaded back by Keras
    key = key if isinstance(key, tuple) else (key,)
    for item in key:
        _check_index(item)
    layout = ctx.input_layout(values[0].position)
    rank = layout.rank
    if layout.feature_order is not None:
        raise Unsupported("indexing a flattened channels-first tensor")
    out_rank = len(ctx.output_shape())
    shape = ctx.input_shape(values[0].position)
    if any(item is None for item in key) or sum(item is Ellipsis for item in key) > 1:
        # New axes: index in Keras order, as written.
        key, flipped = _forward_steps(list(key), shape)
        x = _flipped(ctx.input(values[0].position, keras_order(rank)), flipped)
        ctx.output(f"{x}[{', '.join(_index_text(i) for i in key)}]", keras_order(out_rank))
        return
    consumed = sum(item is not Ellipsis for item in key)
    if consumed > rank:
        raise Unsupported("too many indices")
    items: list = []
    for item in key:
        if item is Ellipsis:
            items.extend([slice(None)] * (rank - consumed))
        else:
            items.append(item)
    items.extend([slice(None)] * (rank - len(items)))
    items, flipped = _forward_steps(items, shape)
    torch_items = [items[axis] for axis in layout.perm]
    texts = [_index_text(i) for i in torch_items]
    removed = {k for k, item in enumerate(torch_items) if not isinstance(item, slice)}
    while texts and texts[-1] == ":":
        texts.pop()
    x = _flipped(ctx.input(values[0].position), [layout.perm.index(a) for a in flipped])
    expr = f"{x}[{', '.join(texts)}]" if texts else x
    ctx.output(expr, reduced_layout(layout, removed))


def _forward_steps(items: list, shape: tuple) -> tuple[list, list[int]]:
    """Negative-step slices as a flip of their axis and a forward slice (torch has no
    negative steps): ``(items, flipped Keras axes)``; ``items`` index the Keras axes in order
    (``None`` adds an axis, an Ellipsis stands for the axes it spans)."""
    result, flipped, axis = [], [], 0
    spanned = len(shape) - sum(i is not None and i is not Ellipsis for i in items)
    for item in items:
        if item is None:
            result.append(item)
            continue
        if item is Ellipsis:
            result.append(item)
            axis += spanned
            continue
        if isinstance(item, slice) and item.step is not None and int(item.step) < 0:
            result.append(_reversed_slice(item, shape[axis]))
            flipped.append(axis)
        else:
            result.append(item)
        axis += 1
    return result, flipped


def _reversed_slice(item: slice, size: int | None) -> slice:
    """The forward slice of the flipped axis that picks what ``item`` picks, in its order."""
    step = -int(item.step)
    if item.start is None and item.stop is None:
        return slice(None, None, step if step != 1 else None)
    if size is None:
        raise Unsupported(f"slice {_index_text(item)} of an axis of unknown size")
    picked = range(*item.indices(size))
    if not picked:
        raise Unsupported(f"empty slice {_index_text(item)}")
    start, stop = size - 1 - picked[0], size - picked[-1]
    return slice(start or None, stop if stop != size else None, step if step != 1 else None)


def _flipped(x: str, dims: list[int]) -> str:
    return f"{x}.flip({', '.join(str(d) for d in dims)})" if dims else x


# -- creation, cumulative sums, gathers and repeats ------------------------------------
def _tensor_argument(ctx: CallContext, names: tuple[str, ...] = ("x",)) -> int:
    """Position of the call's one tensor argument (the first of ``names``)."""
    values = arguments(ctx, names)
    if len(values) != 1 or not isinstance(values[0], TensorRef):
        raise Unsupported("expected one tensor argument")
    return values[0].position


def _output_dtype(ctx: CallContext) -> str:
    dtype = ctx.call.outputs[0].dtype
    if dtype not in TORCH_DTYPES:
        raise Unsupported(f"a {dtype} result")
    return dtype


def _dtype_config(ctx: CallContext) -> str | None:
    dtype = ctx.config.get("dtype")
    if isinstance(dtype, dict):
        dtype = (dtype.get("config") or {}).get("name")
    return dtype


@register("OnesLike", "ZerosLike", layout=AGNOSTIC, elementwise=True, op=True)
def ones_like(call, ctx: CallContext) -> None:
    """``ops.ones_like(tokens)``: the start of ``ops.cumsum(ops.ones_like(tokens), 1) - 1``."""
    fn = "torch.ones_like" if call.layer.class_name == "OnesLike" else "torch.zeros_like"
    position = _tensor_argument(ctx)
    requested, out = _dtype_config(ctx), _output_dtype(ctx)
    if requested is not None and requested != out:
        raise Unsupported(f"dtype={requested!r}")
    dtype = "" if out == ctx.call.inputs[position].dtype else f", dtype={TORCH_DTYPES[out]}"
    ctx.output(f"{fn}({ctx.input(position)}{dtype})", ctx.input_layout(position))


@register("FullLike", layout=AGNOSTIC, elementwise=True, op=True)
def full_like(call, ctx: CallContext) -> None:
    values = arguments(ctx, ("x", "fill_value"))
    if len(values) != 2 or not isinstance(values[0], TensorRef):
        raise Unsupported("expected a tensor and a fill value")
    out = _output_dtype(ctx)
    requested = _dtype_config(ctx)
    if requested is not None and requested != out:
        raise Unsupported(f"dtype={requested!r}")
    position = values[0].position
    dtype = "" if out == ctx.call.inputs[position].dtype else f", dtype={TORCH_DTYPES[out]}"
    fill = constant(values[1])  # a tensor or an array fill value is unsupported here
    ctx.output(f"torch.full_like({ctx.input(position)}, {fill}{dtype})", ctx.input_layout(position))


@register("Cumsum", "Cumprod", layout=AGNOSTIC, op=True)
def cumulative(call, ctx: CallContext) -> None:
    """``ops.cumsum(x, axis)``; torch sums integers in int64 unless told the Keras dtype."""
    fn = "torch.cumsum" if call.layer.class_name == "Cumsum" else "torch.cumprod"
    position = _tensor_argument(ctx)
    _dtype_config(ctx)  # the recorded result dtype already reflects it
    source, out = ctx.call.inputs[position].dtype, _output_dtype(ctx)
    default = source if "float" in source else "int64"
    dtype = "" if out == default else f", dtype={TORCH_DTYPES[out]}"
    layout = ctx.input_layout(position)
    if layout.feature_order is not None:
        raise Unsupported(f"{fn[6:]} of a flattened channels-first tensor")
    axis = ctx.config.get("axis")
    # tf.math.cumsum/cumprod's options (only TFOpLambda nodes set them).
    exclusive, reverse = bool(ctx.config.get("exclusive")), bool(ctx.config.get("reverse"))
    if axis is None:  # numpy: over the flattened array
        x = ctx.input(position, keras_order(layout.rank))
        ctx.output(f"{fn}({x}.flatten(), dim=0{dtype})", keras_order(1))
        return
    dim = torch_dim(layout, int(axis))
    if exclusive or reverse:
        helper = ctx.helper("tf_cumulative")
        product = call.layer.class_name == "Cumprod"
        options = f"product={product}, exclusive={exclusive}, reverse={reverse}"
        ctx.output(f"{helper}({ctx.input(position)}, {dim}, {options}{dtype})", layout)
        return
    ctx.output(f"{fn}({ctx.input(position)}, dim={dim}{dtype})", layout)


def _index_argument(ctx: CallContext, value) -> str:
    """An integer index argument: a tensor, a Python integer or an integer array."""
    if isinstance(value, TensorRef):
        dtype = ctx.call.inputs[value.position].dtype
        if not dtype.startswith(("int", "uint")):
            raise Unsupported(f"indices of dtype {dtype}")
        return ctx.input(value.position, keras_order(len(ctx.input_shape(value.position))))
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return repr(int(value))
    array = as_array(value)
    if array is None and isinstance(value, (list, tuple)):
        array = np.asarray(value)
    if array is None or array.dtype.kind not in "iu":
        raise Unsupported(f"indices {type(value).__name__} (expected integers)")
    if array.ndim == 0:
        return repr(int(array))
    if array.size <= INLINE_MAX_ELEMENTS:
        return _literal(array)  # indexing with a list works on any device
    return array_constant(ctx, array)


@register("Take", layout=AGNOSTIC, op=True)
def take(call, ctx: CallContext) -> None:
    """``ops.take(table, positions, axis=0)`` is indexing: ``table[positions]``."""
    values = arguments(ctx, ("x", "indices"))
    if len(values) != 2:
        raise Unsupported("expected an array and indices")
    data, indices = values
    axis = ctx.config.get("axis")
    if isinstance(data, TensorRef):
        layout = ctx.input_layout(data.position)
        rank = layout.rank
        if (
            axis is not None
            and layout.feature_order is None
            and not isinstance(indices, TensorRef)
            and np.ndim(indices) <= 1
            and np.size(indices) <= INLINE_MAX_ELEMENTS
        ):
            # A few constant indices select along one axis: index it where it is in torch
            # (a list keeps the axis, an integer removes it).
            index = _index_argument(ctx, indices)
            dim = layout.torch_axis(int(axis))
            out = layout if np.ndim(indices) == 1 else reduced_layout(layout, {dim})
            ctx.output(f"{ctx.input(data.position)}[{':, ' * dim}{index}]", out)
            return
        x = ctx.input(data.position, keras_order(rank))
    else:
        array = as_array(data)
        if array is None or array.ndim == 0:
            raise Unsupported(f"take from {type(data).__name__}")
        if not isinstance(indices, TensorRef):
            raise Unsupported("take with constant array and indices")
        rank = array.ndim
        x = array_constant(ctx, array)
    index = _index_argument(ctx, indices)
    if axis is None:
        expr = f"{x}.flatten()[{index}]"
    else:
        axis = int(axis) % rank
        expr = f"{x}[{':, ' * axis}{index}]"
    ctx.output(expr, keras_order(len(ctx.output_shape())))


@register("TakeAlongAxis", layout=KERAS, op=True)
def take_along_axis(call, ctx: CallContext) -> None:
    values = arguments(ctx, ("x", "indices"))
    if len(values) != 2 or not all(isinstance(v, TensorRef) for v in values):
        raise Unsupported("take_along_axis of constants")
    data, indices = values
    rank = len(ctx.input_shape(data.position))
    x = ctx.input(data.position, keras_order(rank))
    index = _index_argument(ctx, indices)
    if ctx.call.inputs[indices.position].dtype != "int64":
        index = f"{index}.long()"  # torch gathers with int64 indices only
    axis = ctx.config.get("axis")
    if axis is None:
        ctx.output(f"torch.take_along_dim({x}, {index})", keras_order(1))
        return
    axis = int(axis) % rank
    ctx.output(f"torch.take_along_dim({x}, {index}, dim={axis})", keras_order(rank))


def _int_list(value, what: str) -> list[int]:
    items = [value] if isinstance(value, numbers.Integral) else value
    if not isinstance(items, (list, tuple)) or not all(
        isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in items
    ):
        raise Unsupported(f"{what}={value!r} (expected integers known when the model was built)")
    return [int(v) for v in items]


@register("Tile", layout=AGNOSTIC, op=True)
def tile(call, ctx: CallContext) -> None:
    reps = _int_list(ctx.config.get("repeats"), "repeats")
    position = _tensor_argument(ctx)
    layout = ctx.input_layout(position)
    if layout.feature_order is not None:
        raise Unsupported("tile of a flattened channels-first tensor")
    rank = layout.rank
    if len(reps) <= rank:  # numpy pads the repeats with leading ones
        full = [1] * (rank - len(reps)) + reps
        torch_reps = tuple(full[axis] for axis in layout.perm)
        ctx.output(f"torch.tile({ctx.input(position)}, {torch_reps!r})", layout)
    else:
        x = ctx.input(position, keras_order(rank))
        ctx.output(f"torch.tile({x}, {tuple(reps)!r})", keras_order(len(reps)))


@register("Repeat", layout=AGNOSTIC, op=True)
def repeat(call, ctx: CallContext) -> None:
    """``ops.repeat(x, n, axis)``: every element ``n`` times (torch's ``repeat_interleave``)."""
    repeats = _int_list(ctx.config.get("repeats"), "repeats")
    if len(repeats) != 1:
        raise Unsupported(f"repeats={repeats!r} (one count per element)")
    position = _tensor_argument(ctx)
    layout = ctx.input_layout(position)
    if layout.feature_order is not None:
        raise Unsupported("repeat of a flattened channels-first tensor")
    axis = ctx.config.get("axis")
    if axis is None:
        x = ctx.input(position, keras_order(layout.rank))
        ctx.output(f"torch.repeat_interleave({x}.flatten(), {repeats[0]})", keras_order(1))
        return
    dim = torch_dim(layout, int(axis))
    ctx.output(f"torch.repeat_interleave({ctx.input(position)}, {repeats[0]}, dim={dim})", layout)


@register("BroadcastTo", layout=AGNOSTIC, op=True)
def broadcast_to(call, ctx: CallContext) -> None:
    shape = ctx.config.get("shape")
    if isinstance(shape, (list, tuple)) and any(d is None for d in shape):
        raise Unsupported(f"shape={shape!r} with unknown sizes (Keras cannot run it either)")
    shape = _int_list(shape, "shape")
    position = _tensor_argument(ctx)
    layout = ctx.input_layout(position)
    if layout.feature_order is not None:
        raise Unsupported("broadcast_to of a flattened channels-first tensor")
    if len(shape) == layout.rank:
        ctx.output(f"{ctx.input(position)}.expand{layout.torch_shape(shape)!r}", layout)
    else:
        x = ctx.input(position, keras_order(layout.rank))
        ctx.output(f"{x}.expand{tuple(shape)!r}", keras_order(len(shape)))

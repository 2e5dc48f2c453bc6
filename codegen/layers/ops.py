"""keras.ops calls recorded as operations in functional graphs (``x + 3.0``, ``ops.relu(x)``, ...).

Keras keeps the static arguments of an operation (``axis``, ``keepdims``, ...) on the operation
object (the reader puts them in ``config``) and the call's tensors and constants in
``call.args``/``call.kwargs``, tensors marked by :class:`TensorRef`. Each converter writes the
operation the way the Keras source spelled it: ``x + 3.0``, ``torch.relu(x)``, ``x.mean(...)``.
Arithmetic follows numpy broadcasting (missing axes in front), remapped through each tensor's
layout, so channels-first tensors stay channels-first.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from ..convert import CallContext, Unsupported
from ..graph import TensorRef
from ..layout import Layout, channels_first, keras_order
from ..registry import AGNOSTIC, KERAS, register
from .merging import broadcast_input, common_layout, concatenate_expr, torch_dim


# -- arguments --------------------------------------------------------------------------
def constant(value) -> str:
    """Python source for a scalar constant argument; anything else is unsupported."""
    if isinstance(value, np.ndarray) and value.ndim == 0 or isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool):
        return repr(value)
    if isinstance(value, numbers.Integral):
        text = repr(int(value))
    elif isinstance(value, numbers.Real):
        value = float(value)
        if math.isnan(value):
            return "math.nan"
        if math.isinf(value):
            return "math.inf" if value > 0 else "-math.inf"
        text = repr(value)
    else:
        kind = type(value).__name__
        raise Unsupported(f"constant argument of type {kind} (only scalar constants are supported)")
    return f"({text})" if text.startswith("-") else text


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
    exprs = []
    for value in values:
        if isinstance(value, TensorRef):
            exprs.append(broadcast_input(ctx, value.position, target, insert_at=0))
        else:
            exprs.append(constant(value))
    return exprs, target


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


@register(*_BINARY, layout=AGNOSTIC, op=True)
def binary(call, ctx: CallContext) -> None:
    (a, b), layout = operands(ctx, arguments(ctx, ("x1", "x2")))
    ctx.output(f"{a} {_BINARY[call.layer.class_name]} {b}", layout)


@register("Maximum", "Minimum", layout=AGNOSTIC, op=True)
def maximum(call, ctx: CallContext) -> None:
    values = arguments(ctx, ("x1", "x2"))
    (a, b), layout = operands(ctx, values)
    name = call.layer.class_name.lower()
    tensors = [isinstance(v, TensorRef) for v in values]
    if all(tensors):
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
        if item.step is not None and int(item.step) <= 0:
            raise Unsupported(f"slice step {item.step} (torch has no negative steps)")
    elif item is not None and item is not Ellipsis and not isinstance(item, numbers.Integral):
        raise Unsupported(f"index {item!r}")


@register("GetItem", layout=AGNOSTIC, op=True)
def get_item(call, ctx: CallContext) -> None:
    values = arguments(ctx, ("x", "key"))
    if len(values) != 2 or not isinstance(values[0], TensorRef):
        raise Unsupported("indexing a constant")
    key = values[1] if isinstance(values[1], tuple) else (values[1],)
    for item in key:
        _check_index(item)
    layout = ctx.input_layout(values[0].position)
    rank = layout.rank
    if layout.feature_order is not None:
        raise Unsupported("indexing a flattened channels-first tensor")
    out_rank = len(ctx.output_shape())
    if any(item is None for item in key) or sum(item is Ellipsis for item in key) > 1:
        # New axes: index in Keras order, as written.
        x = ctx.input(values[0].position, keras_order(rank))
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
    torch_items = [items[axis] for axis in layout.perm]
    texts = [_index_text(i) for i in torch_items]
    removed = {k for k, item in enumerate(torch_items) if not isinstance(item, slice)}
    while texts and texts[-1] == ":":
        texts.pop()
    x = ctx.input(values[0].position)
    expr = f"{x}[{', '.join(texts)}]" if texts else x
    ctx.output(expr, reduced_layout(layout, removed))

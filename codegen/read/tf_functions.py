"""tf.keras ``TFOpLambda``/``SlicingOpLambda`` nodes as keras.ops operations.

When a tf.keras functional model applied a TensorFlow function to a Keras tensor
(``tf.nn.relu(x)``, ``x + 1``, ``tf.concat([a, b], -1)``, ``x[:, 0]``), the saved config holds
a ``TFOpLambda`` layer naming the function (``"function": "math.multiply"``); its first
argument is the node's input and every other argument is in the node's call kwargs (tensors
as ``[layer, node, tensor]``). Keras 3 cannot load these layers.

Each supported function is rewritten here as the keras.ops operation that computes the same
thing (``math.multiply`` -> ``Multiply``, ``reduce_mean`` -> ``Mean``, ``image.resize`` -> the
``Resizing`` layer...), with the arguments the keras.ops converters expect, so that the
existing converters port them. A function outside the table (or an argument these
operations cannot express) raises :class:`TFFunctionUnsupported` naming it.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from codegen.ir.graph import Tensor

from . import tf_array_functions
from .tf_arguments import (
    Emit,
    TFFunctionUnsupported,
    _int_list,
    _params,
    _scalar,
    _show,
    _tensor,
)

_BINARY = {
    "__operators__.add": "Add",
    "math.add": "Add",
    "math.subtract": "Subtract",
    "__operators__.sub": "Subtract",
    "math.multiply": "Multiply",
    "math.truediv": "Divide",
    "math.divide": "Divide",
    "__operators__.truediv": "Divide",
    "math.floordiv": "FloorDivide",
    "math.floor_div": "FloorDivide",
    "compat.v1.floor_div": "FloorDivide",
    "math.floormod": "Mod",
    "math.mod": "Mod",
    "math.pow": "Power",
    "math.maximum": "Maximum",
    "math.minimum": "Minimum",
    "math.greater": "Greater",
    "math.greater_equal": "GreaterEqual",
    "math.less": "Less",
    "math.less_equal": "LessEqual",
    "math.equal": "Equal",
    "math.not_equal": "NotEqual",
    "__operators__.eq": "Equal",
    "__operators__.ne": "NotEqual",
    "math.logical_and": "LogicalAnd",
    "math.logical_or": "LogicalOr",
    "math.logical_xor": "LogicalXor",
}
_UNARY = {
    "math.negative": "Negative",
    "math.abs": "Absolute",
    "math.square": "Square",
    "math.sqrt": "Sqrt",
    "math.rsqrt": "Rsqrt",
    "math.exp": "Exp",
    "math.expm1": "Expm1",
    "math.log": "Log",
    "math.log1p": "Log1p",
    "math.reciprocal": "Reciprocal",
    "math.sign": "Sign",
    "math.floor": "Floor",
    "math.ceil": "Ceil",
    "math.round": "Round",
    "math.tanh": "Tanh",
    "nn.tanh": "Tanh",
    "math.sin": "Sin",
    "math.cos": "Cos",
    "math.erf": "Erf",
    "math.logical_not": "LogicalNot",
    "math.sigmoid": "Sigmoid",
    "nn.sigmoid": "Sigmoid",
    "nn.relu": "Relu",
    "nn.relu6": "Relu6",
    "nn.silu": "Silu",
    "nn.swish": "Silu",
    "math.softplus": "Softplus",
    "nn.softplus": "Softplus",
    "math.softsign": "Softsign",
    "nn.softsign": "Softsign",
    "nn.selu": "Selu",
    "math.log_sigmoid": "LogSigmoid",
}
_REDUCTIONS = {
    "math.reduce_mean": "Mean",
    "math.reduce_sum": "Sum",
    "math.reduce_max": "Max",
    "math.reduce_min": "Min",
    "math.reduce_prod": "Prod",
    "math.reduce_std": "Std",
    "math.reduce_variance": "Var",
    "math.reduce_any": "Any",
    "math.reduce_all": "All",
    "math.reduce_logsumexp": "Logsumexp",
}


def canonical(function: str) -> str:
    """``"reduce_mean"`` and ``"math.reduce_mean"`` name the same function."""
    for table in (_BINARY, _UNARY, _REDUCTIONS):
        if function not in table and f"math.{function}" in table:
            return f"math.{function}"
    if function.startswith("compat.v1.") and function[len("compat.v1.") :] in _REDUCTIONS:
        return function[len("compat.v1.") :]
    if (
        function.startswith("compat.v1.math.")
        and "math." + function[len("compat.v1.math.") :] in _REDUCTIONS
    ):
        return "math." + function[len("compat.v1.math.") :]
    return function


def _operand(function: str, value):
    """A tensor, a Python number or a constant array (as numpy, from a nested list)."""
    if isinstance(value, Tensor):
        return value
    if isinstance(value, (bool, numbers.Number)):
        return value
    if isinstance(value, list):
        try:
            array = np.asarray(value)
        except ValueError:
            array = None
        if array is not None and array.dtype.kind in "biuf":
            return array.astype(np.float32) if array.dtype.kind == "f" else array
    raise TFFunctionUnsupported(f"tf.{function} with a constant operand {_show(value)}")


def translate(function: str, first, kwargs: dict, emit: Emit) -> list:
    """Emit the operations computing ``tf.<function>(first, **kwargs)``; their outputs."""
    name = canonical(function)
    if name in _BINARY:
        other = "other" if name.startswith("__operators__.") and name[-2:] in ("eq", "ne") else "y"
        p = _params(function, first, kwargs, ("x", other), {})
        if other not in p:
            raise TFFunctionUnsupported(f"tf.{function} without its second operand")
        x, y = _operand(function, p["x"]), _operand(function, p[other])
        if not isinstance(x, Tensor) and not isinstance(y, Tensor):
            raise TFFunctionUnsupported(f"tf.{function} of two constants")
        return emit(_BINARY[name], {}, (x, y))
    if name in _UNARY:
        p = _params(function, first, kwargs, ("x", "features"), {})
        x = _tensor(function, "input", p["x"])
        if "features" in kwargs:
            raise TFFunctionUnsupported(f"tf.{function} with features=")
        config = {"decimals": 0} if _UNARY[name] == "Round" else {}
        return emit(_UNARY[name], config, (x,))
    if name == "nn.elu":
        p = _params(function, first, kwargs, ("features",), {})
        return emit("Elu", {"alpha": 1.0}, (_tensor(function, "input", p["features"]),))
    if name == "nn.leaky_relu":
        p = _params(function, first, kwargs, ("features", "alpha"), {"alpha": 0.2})
        alpha = float(_scalar(function, "alpha", p["alpha"]))
        return emit(
            "LeakyRelu", {"negative_slope": alpha}, (_tensor(function, "input", p["features"]),)
        )
    if name in ("nn.gelu", "math.gelu"):
        p = _params(function, first, kwargs, ("features", "approximate"), {"approximate": False})
        return emit(
            "Gelu",
            {"approximate": bool(p["approximate"])},
            (_tensor(function, "input", p["features"]),),
        )
    if name in ("nn.softmax", "math.softmax", "nn.log_softmax", "math.log_softmax"):
        p = _params(function, first, kwargs, ("logits", "axis", "dim"), {"axis": None, "dim": None})
        axis = p["axis"] if p["axis"] is not None else p["dim"]
        axis = -1 if axis is None else _int_list(function, "axis", axis)
        kind = "LogSoftmax" if "log_" in name else "Softmax"
        return emit(kind, {"axis": axis}, (_tensor(function, "input", p["logits"]),))
    if name in _REDUCTIONS:
        p = _params(
            function,
            first,
            kwargs,
            ("input_tensor", "axis", "keepdims", "keep_dims", "reduction_indices"),
            {"axis": None, "keepdims": False, "keep_dims": None, "reduction_indices": None},
        )
        axis = p["axis"] if p["axis"] is not None else p["reduction_indices"]
        keepdims = p["keepdims"] if p["keep_dims"] is None else p["keep_dims"]
        config = {"axis": _int_list(function, "axis", axis), "keepdims": bool(keepdims)}
        return emit(_REDUCTIONS[name], config, (_tensor(function, "input", p["input_tensor"]),))
    if name == "reshape":
        p = _params(function, first, kwargs, ("tensor", "shape"), {})
        shape = _int_list(function, "shape", p.get("shape"))
        if shape is None:
            raise TFFunctionUnsupported("tf.reshape without a shape")
        shape = [shape] if isinstance(shape, int) else shape
        return emit(
            "Reshape", {"newshape": tuple(shape)}, (_tensor(function, "input", p["tensor"]),)
        )
    if name in ("transpose", "compat.v1.transpose"):
        p = _params(
            function, first, kwargs, ("a", "perm", "conjugate"), {"perm": None, "conjugate": False}
        )
        perm = _int_list(function, "perm", p["perm"])
        return emit(
            "Transpose",
            {"axes": None if perm is None else tuple(perm)},
            (_tensor(function, "input", p["a"]),),
        )
    if name in ("linalg.transpose", "linalg.matrix_transpose"):
        p = _params(function, first, kwargs, ("a", "conjugate"), {"conjugate": False})
        a = _tensor(function, "input", p["a"])
        return [_swap_last(emit, a)]
    if name in ("concat", "stack"):
        p = _params(function, first, kwargs, ("values", "axis"), {"axis": 0})
        values = p["values"]
        if not isinstance(values, (list, tuple)) or not values:
            values = [values]
        tensors = [_tensor(function, "value", v) for v in values]
        axis = _int_list(function, "axis", p["axis"])
        if not isinstance(axis, int):
            raise TFFunctionUnsupported(f"tf.{function} with axis={_show(axis)}")
        return emit("Concatenate" if name == "concat" else "Stack", {"axis": axis}, (tensors,))
    if name == "expand_dims":
        p = _params(function, first, kwargs, ("input", "axis", "dim"), {"axis": None, "dim": None})
        axis = p["axis"] if p["axis"] is not None else p["dim"]
        if not isinstance(axis, int):
            raise TFFunctionUnsupported(f"tf.expand_dims with axis={_show(axis)}")
        return emit("ExpandDims", {"axis": axis}, (_tensor(function, "input", p["input"]),))
    if name in ("squeeze", "compat.v1.squeeze"):
        p = _params(
            function,
            first,
            kwargs,
            ("input", "axis", "squeeze_dims"),
            {"axis": None, "squeeze_dims": None},
        )
        axis = p["axis"] if p["axis"] is not None else p["squeeze_dims"]
        x = _tensor(function, "input", p["input"])
        axis = _int_list(function, "axis", axis)
        if axis is None:  # every axis of static size 1 (the batch axis is never known)
            axis = [i for i, d in enumerate(x.shape) if d == 1]
            if not axis:
                raise TFFunctionUnsupported(
                    "tf.squeeze without axis of a tensor with no size-1 axis"
                )
        if isinstance(axis, list) and len(axis) == 1:
            axis = axis[0]
        return emit("Squeeze", {"axis": axis if isinstance(axis, int) else tuple(axis)}, (x,))
    if name in ("linalg.matmul", "matmul"):
        names = (
            "a",
            "b",
            "transpose_a",
            "transpose_b",
            "adjoint_a",
            "adjoint_b",
            "a_is_sparse",
            "b_is_sparse",
            "output_type",
        )
        p = _params(
            function, first, kwargs, names, {k: False for k in names[2:8]} | {"output_type": None}
        )
        a, b = _tensor(function, "a", p["a"]), _tensor(function, "b", p.get("b"))
        if p["output_type"] is not None:
            raise TFFunctionUnsupported(f"tf.{function} with output_type={p['output_type']!r}")
        if p["transpose_a"] or p["adjoint_a"]:
            a = _swap_last(emit, a)
        if p["transpose_b"] or p["adjoint_b"]:
            b = _swap_last(emit, b)
        return emit("Matmul", {}, (a, b))
    if name == "clip_by_value":
        p = _params(function, first, kwargs, ("t", "clip_value_min", "clip_value_max"), {})
        lo = _scalar(function, "clip_value_min", p.get("clip_value_min"))
        hi = _scalar(function, "clip_value_max", p.get("clip_value_max"))
        return emit("Clip", {"x_min": lo, "x_max": hi}, (_tensor(function, "input", p["t"]),))
    if name == "clip_by_norm":
        p = _params(function, first, kwargs, ("t", "clip_norm", "axes"), {"axes": None})
        t = _tensor(function, "t", p["t"])
        clip = float(_scalar(function, "clip_norm", p.get("clip_norm")))
        axes = _int_list(function, "axes", p["axes"])  # None: the whole tensor, batch included
        # TF: t * clip_norm / maximum(l2norm(t, axes), clip_norm)
        (square,) = emit("Square", {}, (t,), suffix="square")
        (total,) = emit("Sum", {"axis": axes, "keepdims": True}, (square,), suffix="sum")
        (norm,) = emit("Sqrt", {}, (total,), suffix="norm")
        (bound,) = emit("Maximum", {}, (norm, clip), suffix="bound")
        (scaled,) = emit("Multiply", {}, (t, clip), suffix="scaled")
        return emit("Divide", {}, (scaled, bound))
    if name == "cast":
        p = _params(function, first, kwargs, ("x", "dtype"), {})
        dtype = p.get("dtype")
        if not isinstance(dtype, str):
            raise TFFunctionUnsupported(f"tf.cast to dtype={_show(dtype)}")
        return emit("Cast", {"dtype": dtype}, (_tensor(function, "input", p["x"]),))
    if name in ("math.l2_normalize", "nn.l2_normalize", "linalg.l2_normalize"):
        p = _params(
            function,
            first,
            kwargs,
            ("x", "axis", "epsilon", "dim"),
            {"axis": None, "epsilon": 1e-12, "dim": None},
        )
        axis = p["axis"] if p["axis"] is not None else p["dim"]
        if isinstance(axis, list) and len(axis) == 1:
            axis = axis[0]
        if not isinstance(axis, int):
            raise TFFunctionUnsupported(f"tf.{function} with axis={_show(axis)}")
        epsilon = float(_scalar(function, "epsilon", p["epsilon"]))
        # TF: x * rsqrt(max(sum(x**2), eps)) == x / max(norm, sqrt(eps))
        config = {"axis": axis, "order": 2, "epsilon": math.sqrt(epsilon)}
        return emit("Normalize", config, (_tensor(function, "input", p["x"]),))
    if name in ("where", "where_v2", "compat.v1.where"):
        p = _params(function, first, kwargs, ("condition", "x", "y"), {"x": None, "y": None})
        if p["x"] is None or p["y"] is None:
            raise TFFunctionUnsupported(f"tf.{function} with only a condition (indices)")
        cond = _tensor(function, "condition", p["condition"])
        return emit("Where", {}, (cond, _operand(function, p["x"]), _operand(function, p["y"])))
    if name == "tile":
        p = _params(function, first, kwargs, ("input", "multiples"), {})
        reps = _int_list(function, "multiples", p.get("multiples"))
        return emit("Tile", {"repeats": reps}, (_tensor(function, "input", p["input"]),))
    if name == "repeat":
        p = _params(function, first, kwargs, ("input", "repeats", "axis"), {"axis": None})
        repeats = _int_list(function, "repeats", p.get("repeats"))
        config = {"repeats": repeats, "axis": _int_list(function, "axis", p["axis"])}
        return emit("Repeat", config, (_tensor(function, "input", p["input"]),))
    if name in ("math.cumsum", "math.cumprod"):
        p = _params(
            function,
            first,
            kwargs,
            ("x", "axis", "exclusive", "reverse"),
            {"axis": 0, "exclusive": False, "reverse": False},
        )
        kind = "Cumsum" if name == "math.cumsum" else "Cumprod"
        axis = _int_list(function, "axis", p["axis"])
        if not isinstance(axis, int):
            raise TFFunctionUnsupported(f"tf.{function} with axis={_show(axis)}")
        config = {"axis": axis, "dtype": None}
        # TensorFlow-only options, read by the Cumsum/Cumprod converter.
        config |= {key: True for key in ("exclusive", "reverse") if p[key]}
        return emit(kind, config, (_tensor(function, "input", p["x"]),))
    if name in ("math.argmax", "math.argmin", "argmax", "argmin"):
        p = _params(
            function,
            first,
            kwargs,
            ("input", "axis", "output_type", "dimension"),
            {"axis": None, "output_type": "int64", "dimension": None},
        )
        axis = p["axis"] if p["axis"] is not None else p["dimension"]
        axis = 0 if axis is None else _int_list(function, "axis", axis)  # TF's default: 0
        if not isinstance(axis, int):
            raise TFFunctionUnsupported(f"tf.{function} with axis={_show(axis)}")
        kind = "Argmax" if name.endswith("argmax") else "Argmin"
        (index,) = emit(
            kind, {"axis": axis, "keepdims": False}, (_tensor(function, "x", p["input"]),)
        )
        dtype = str(p["output_type"]).replace("tf.", "")
        if dtype not in ("int32", "int64"):
            raise TFFunctionUnsupported(f"tf.{function} with output_type={_show(dtype)}")
        return (
            emit("Cast", {"dtype": dtype}, (index,), suffix="cast") if dtype != "int32" else [index]
        )
    if name in ("ones_like", "zeros_like"):
        p = _params(
            function,
            first,
            kwargs,
            ("input", "dtype", "optimize"),
            {"dtype": None, "optimize": True},
        )
        kind = "OnesLike" if name == "ones_like" else "ZerosLike"
        return emit(kind, {"dtype": p["dtype"]}, (_tensor(function, "input", p["input"]),))
    if name in ("gather", "compat.v1.gather"):
        names = ("params", "indices", "axis", "batch_dims", "validate_indices")
        p = _params(
            function,
            first,
            kwargs,
            names,
            {"axis": None, "batch_dims": 0, "validate_indices": None},
        )
        if p["batch_dims"]:
            raise TFFunctionUnsupported(f"tf.gather with batch_dims={p['batch_dims']!r}")
        axis = _int_list(function, "axis", p["axis"])
        indices = p.get("indices")
        if not isinstance(indices, Tensor):
            indices = _int_list(function, "indices", indices)
            indices = np.asarray(indices, dtype=np.int32) if isinstance(indices, list) else indices
        params = _tensor(function, "params", p["params"])
        return emit("Take", {"axis": 0 if axis is None else axis}, (params, indices))
    if name == "broadcast_to":
        p = _params(function, first, kwargs, ("input", "shape"), {})
        shape = _int_list(function, "shape", p.get("shape"))
        return emit(
            "BroadcastTo", {"shape": tuple(shape)}, (_tensor(function, "input", p["input"]),)
        )
    if name == "nn.bias_add":
        p = _params(
            function, first, kwargs, ("value", "bias", "data_format"), {"data_format": None}
        )
        if p["data_format"] not in (None, "NHWC", "NWC", "NDHWC", "N...C"):
            raise TFFunctionUnsupported(f"tf.nn.bias_add with data_format={p['data_format']!r}")
        return emit(
            "Add", {}, (_tensor(function, "value", p["value"]), _operand(function, p.get("bias")))
        )
    if name == "math.add_n":
        p = _params(function, first, kwargs, ("inputs",), {})
        values = p["inputs"] if isinstance(p["inputs"], (list, tuple)) else [p["inputs"]]
        tensors = [_tensor(function, "input", v) for v in values]
        total = tensors[0]
        if len(tensors) == 1:
            return emit("Add", {}, (total, 0.0))
        for other in tensors[1:]:
            (total,) = emit("Add", {}, (total, other))
        return [total]
    if name == "image.resize":
        names = ("images", "size", "method", "preserve_aspect_ratio", "antialias")
        p = _params(
            function,
            first,
            kwargs,
            names,
            {"method": "bilinear", "preserve_aspect_ratio": False, "antialias": False},
        )
        images = _tensor(function, "images", p["images"])
        size = _int_list(function, "size", p.get("size"))
        if not isinstance(size, list) or len(size) != 2:
            raise TFFunctionUnsupported(f"tf.image.resize with size={_show(size)}")
        if p["preserve_aspect_ratio"]:
            raise TFFunctionUnsupported("tf.image.resize with preserve_aspect_ratio=True")
        method = str(p["method"]).lower().replace("resizemethod.", "")
        config = {
            "height": size[0],
            "width": size[1],
            "interpolation": method,
            "crop_to_aspect_ratio": False,
            "pad_to_aspect_ratio": False,
            "fill_mode": "constant",
            "fill_value": 0.0,
            "antialias": bool(p["antialias"]),
            "data_format": "channels_last",
        }
        return emit("Resizing", config, (images,), is_op=False)
    if name == "__operators__.getitem":
        p = _params(function, first, kwargs, ("tensor", "slice_spec", "var"), {"var": None})
        x = _tensor(function, "input", p["tensor"])
        key = _slice_key(p.get("slice_spec"))
        return emit("GetItem", {}, (x, key))
    outputs = tf_array_functions.translate(name, function, first, kwargs, emit)
    if outputs is not None:
        return outputs
    raise TFFunctionUnsupported(f"TensorFlow function tf.{function} is not supported")


def _swap_last(emit: Emit, x: Tensor) -> Tensor:
    rank = len(x.shape)
    if rank < 2:
        raise TFFunctionUnsupported("a matrix transpose of a rank-1 tensor")
    axes = tuple(range(rank - 2)) + (rank - 1, rank - 2)
    (out,) = emit("Transpose", {"axes": axes}, (x,), suffix="transpose")
    return out


def _slice_key(spec) -> tuple:
    """tf.keras's ``slice_spec`` (dicts for slices, ``__ellipsis__``) as a Python index."""

    def item(value):
        if isinstance(value, dict):
            if value.get("class_name") == "__ellipsis__":
                return Ellipsis
            if set(value) <= {"start", "stop", "step"}:
                parts = [value.get("start"), value.get("stop"), value.get("step")]
                for part in parts:
                    if part is not None and (isinstance(part, bool) or not isinstance(part, int)):
                        raise TFFunctionUnsupported(f"slicing with a bound {_show(part)}")
                return slice(*parts)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise TFFunctionUnsupported(f"indexing with {_show(value)}")
        return value

    if isinstance(spec, list):
        return tuple(item(v) for v in spec)
    return (item(spec),)

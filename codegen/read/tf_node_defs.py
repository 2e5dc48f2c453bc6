"""tf.keras 2.0-2.3 ``TensorFlowOpLayer`` nodes as the TensorFlow functions they ran.

Before ``TFOpLambda`` (TF 2.4), a TensorFlow op applied to a Keras tensor was saved as a
``TensorFlowOpLayer`` holding the op's ``NodeDef`` (``{"op": "Mul", "input": [...], "attr":
{...}}``, as protobuf's JSON form writes it) and its constant inputs by position
(``"constants": {"1": 2.0}``); the node's inbound tensors are the other inputs, in order.
Each op here is rewritten as the call of the TensorFlow function that creates it
(``Mul`` -> ``tf.math.multiply(x, y)``), which :mod:`codegen.read.tf_functions` maps; any other
op raises :class:`TFFunctionUnsupported` naming it.
"""

from __future__ import annotations

from typing import Any

from .tf_functions import TFFunctionUnsupported

_BINARY = {
    "Mul": "math.multiply",
    "Add": "math.add",
    "AddV2": "math.add",
    "Sub": "math.subtract",
    "RealDiv": "math.truediv",
    "Maximum": "math.maximum",
    "Minimum": "math.minimum",
    "Pow": "math.pow",
    "FloorDiv": "math.floordiv",
    "FloorMod": "math.floormod",
    "Greater": "math.greater",
    "GreaterEqual": "math.greater_equal",
    "Less": "math.less",
    "LessEqual": "math.less_equal",
    "Equal": "math.equal",
    "NotEqual": "math.not_equal",
    "LogicalAnd": "math.logical_and",
    "LogicalOr": "math.logical_or",
    "BiasAdd": "math.add",
}
_UNARY = {
    "Relu": "nn.relu",
    "Relu6": "nn.relu6",
    "Elu": "nn.elu",
    "Selu": "nn.selu",
    "Sigmoid": "math.sigmoid",
    "Tanh": "math.tanh",
    "Softplus": "math.softplus",
    "Softsign": "math.softsign",
    "Exp": "math.exp",
    "Expm1": "math.expm1",
    "Log": "math.log",
    "Log1p": "math.log1p",
    "Sqrt": "math.sqrt",
    "Rsqrt": "math.rsqrt",
    "Square": "math.square",
    "Neg": "math.negative",
    "Abs": "math.abs",
    "Sign": "math.sign",
    "Floor": "math.floor",
    "Ceil": "math.ceil",
    "Round": "math.round",
    "Reciprocal": "math.reciprocal",
    "Erf": "math.erf",
    "Sin": "math.sin",
    "Cos": "math.cos",
    "LogicalNot": "math.logical_not",
    "Softmax": "nn.softmax",  # over the last axis, as the op does
    "LogSoftmax": "nn.log_softmax",
}
_REDUCTIONS = {
    "Mean": "math.reduce_mean",
    "Sum": "math.reduce_sum",
    "Max": "math.reduce_max",
    "Min": "math.reduce_min",
    "Prod": "math.reduce_prod",
    "Any": "math.reduce_any",
    "All": "math.reduce_all",
}
# Ops with a tensor and one constant operand: (function, the operand's parameter name).
_WITH_OPERAND = {
    "Reshape": ("reshape", "shape"),
    "Transpose": ("transpose", "perm"),
    "ExpandDims": ("expand_dims", "axis"),
    "Tile": ("tile", "multiples"),
}
_DTYPES = {
    "DT_FLOAT": "float32",
    "DT_DOUBLE": "float64",
    "DT_HALF": "float16",
    "DT_INT32": "int32",
    "DT_INT64": "int64",
    "DT_BOOL": "bool",
    "DT_UINT8": "uint8",
}


def node_def_call(config: dict, tensors: list) -> tuple[str, Any, dict]:
    """``(function, first argument, other arguments)`` of the TensorFlow call that made it."""
    node_def = config.get("node_def")
    if not isinstance(node_def, dict):
        raise TFFunctionUnsupported("a TensorFlowOpLayer without its NodeDef")
    op = str(node_def.get("op", "?"))
    names = node_def.get("input") or []
    constants = config.get("constants") or {}
    if not isinstance(names, list) or not isinstance(constants, dict):
        raise TFFunctionUnsupported(f"TensorFlow op {op!r}: a malformed NodeDef")
    inputs, pending = [], list(tensors)
    for position in range(len(names)):
        key = str(position)
        if key in constants:
            inputs.append(constants[key])
        elif pending:
            inputs.append(pending.pop(0))
        else:
            raise TFFunctionUnsupported(f"TensorFlow op {op!r}: input {position} is missing")
    if pending:
        raise TFFunctionUnsupported(f"TensorFlow op {op!r}: more tensors than inputs")
    attrs = node_def.get("attr") or {}
    known = {"T", "Tidx", "Tshape", "Tperm", "Tdim", "Tmultiples", "N", "SrcT", "Truncate"}
    if op == "BiasAdd":
        known.add("data_format")
        if _attr(attrs, "data_format", "NHWC") not in ("NHWC", "N...C"):
            raise TFFunctionUnsupported("TensorFlow op 'BiasAdd' with channels-first data")
    if op in _BINARY and len(inputs) == 2:
        call = _BINARY[op], inputs[0], {"y": inputs[1]}
    elif op in _UNARY and len(inputs) == 1:
        call = _UNARY[op], inputs[0], {}
    elif op in _REDUCTIONS and len(inputs) == 2:
        known.add("keep_dims")
        keepdims = bool(_attr(attrs, "keep_dims", False))
        call = _REDUCTIONS[op], inputs[0], {"axis": inputs[1], "keepdims": keepdims}
    elif op in _WITH_OPERAND and len(inputs) == 2:
        function, parameter = _WITH_OPERAND[op]
        call = function, inputs[0], {parameter: inputs[1]}
    elif op == "ConcatV2" and len(inputs) >= 2:
        call = "concat", list(inputs[:-1]), {"axis": inputs[-1]}
    elif op == "Pack":
        known.add("axis")
        call = "stack", list(inputs), {"axis": int(_attr(attrs, "axis", 0))}
    elif op == "Squeeze" and len(inputs) == 1:
        known.add("squeeze_dims")
        axis = [int(a) for a in _attr(attrs, "squeeze_dims", [])]
        call = "squeeze", inputs[0], {"axis": axis or None}
    elif op == "Cast" and len(inputs) == 1:
        known.add("DstT")
        dtype = _DTYPES.get(str(_attr(attrs, "DstT", "")))
        if dtype is None:
            raise TFFunctionUnsupported(f"TensorFlow op 'Cast' to {_attr(attrs, 'DstT', '?')}")
        call = "cast", inputs[0], {"dtype": dtype}
    elif op in ("MatMul", "BatchMatMulV2", "BatchMatMul") and len(inputs) == 2:
        flags = ("transpose_a", "transpose_b") if op == "MatMul" else ("adj_x", "adj_y")
        known.update(flags)
        call = (
            "linalg.matmul",
            inputs[0],
            {
                "b": inputs[1],
                "transpose_a": bool(_attr(attrs, flags[0], False)),
                "transpose_b": bool(_attr(attrs, flags[1], False)),
            },
        )
    elif op == "Einsum" and inputs:
        known.add("equation")  # the NodeDef has every operand, unlike a TFOpLambda node
        call = "einsum", list(inputs), {"equation": _attr(attrs, "equation", "")}
    elif op in _ARRAY_OPS:
        call = _array_op(op, inputs, attrs, known)
    else:
        raise TFFunctionUnsupported(
            f"TensorFlow op {op!r} saved by tf.keras 2.0-2.3 (TensorFlowOpLayer) is not supported"
        )
    unknown = sorted(set(attrs) - known)
    if unknown:
        raise TFFunctionUnsupported(f"TensorFlow op {op!r} with attribute(s) {', '.join(unknown)}")
    return call


_ARRAY_OPS = {
    "Cumsum": 2,
    "Cumprod": 2,
    "Pad": 2,
    "PadV2": 3,
    "MirrorPad": 2,
    "OneHot": 4,
    "TopKV2": 2,
    "Split": 2,
    "SplitV": 3,
    "Unpack": 1,
}


def _array_op(op: str, inputs: list, attrs: dict, known: set) -> tuple[str, Any, dict]:
    """The ops of :mod:`codegen.read.tf_array_functions` and cumulative sums, by input count."""
    if len(inputs) != _ARRAY_OPS[op]:
        raise TFFunctionUnsupported(f"TensorFlow op {op!r} with {len(inputs)} inputs")
    if op in ("Cumsum", "Cumprod"):
        known.update(("exclusive", "reverse"))
        options = {k: bool(_attr(attrs, k, False)) for k in ("exclusive", "reverse")}
        function = "math.cumsum" if op == "Cumsum" else "math.cumprod"
        return function, inputs[0], {"axis": inputs[1], **options}
    if op in ("Pad", "PadV2"):
        known.add("Tpaddings")
        values = {"constant_values": inputs[2]} if op == "PadV2" else {}
        return "pad", inputs[0], {"paddings": inputs[1], **values}
    if op == "MirrorPad":
        known.update(("Tpaddings", "mode"))
        return "pad", inputs[0], {"paddings": inputs[1], "mode": _attr(attrs, "mode", "?")}
    if op == "OneHot":
        known.update(("TI", "axis"))
        depth, on, off = inputs[1:]
        options = {"on_value": on, "off_value": off, "axis": int(_attr(attrs, "axis", -1))}
        dtype = _DTYPES.get(str(_attr(attrs, "T", "")))
        return "one_hot", inputs[0], {"depth": depth, "dtype": dtype, **options}
    if op == "TopKV2":
        known.update(("sorted", "Tk"))
        return (
            "math.top_k",
            inputs[0],
            {"k": inputs[1], "sorted": bool(_attr(attrs, "sorted", True))},
        )
    if op == "Split":
        known.add("num_split")
        return (
            "split",
            inputs[1],
            {"num_or_size_splits": int(_attr(attrs, "num_split", 1)), "axis": inputs[0]},
        )
    if op == "SplitV":
        known.update(("num_split", "Tlen"))
        return "split", inputs[0], {"num_or_size_splits": inputs[1], "axis": inputs[2]}
    known.update(("num", "axis"))  # Unpack
    return (
        "unstack",
        inputs[0],
        {"num": int(_attr(attrs, "num", 0)), "axis": int(_attr(attrs, "axis", 0))},
    )


def _attr(attrs: dict, name: str, default):
    """An attribute's value in protobuf's JSON form: ``{"b": true}``, ``{"i": "1"}``,
    ``{"s": <base64>}``, ``{"list": {"i": ["1"]}}``, ``{"type": "DT_FLOAT"}``."""
    value = attrs.get(name)
    if not isinstance(value, dict):
        return default
    if "list" in value:
        items = value["list"] or {}
        return items.get("i") or items.get("f") or []
    for key in ("b", "f", "type"):
        if key in value:
            return value[key]
    if "i" in value:
        return int(value["i"])
    if "s" in value:
        import base64

        return base64.b64decode(value["s"]).decode("utf-8", "replace")
    return default

"""The functions a Lambda's code may call, as TensorFlow functions the TFOpLambda table maps.

A name in the code is resolved as its usual import: ``K``/``backend`` (``keras.backend``),
``tf`` (``tensorflow``), ``ops`` (``keras.ops``). Each function here is bound by its own
signature (positional and keyword arguments, its own defaults, which differ: ``K.concatenate``
joins on axis -1, ``keras.ops.concatenate`` on axis 0) and becomes the call of the
TensorFlow function that computes the same thing, translated by
:func:`codegen.read.tf_functions.translate` into keras.ops operations. Keras 2's backend
functions that do more than call TensorFlow (``K.sqrt`` clips negatives to 0, ``K.clip``
raises ``max`` to ``min``) are written out here.
"""

from __future__ import annotations

import math
import numbers

from .tf_functions import Emit, TFFunctionUnsupported, canonical, translate

ALIASES = {
    "K": "backend",
    "backend": "backend",
    "tf": "tf",
    "tensorflow": "tf",
    "ops": "ops",
    "keras": "keras",
}
# Keras's default fuzz factor (keras.json "epsilon"; the file does not record a changed one).
EPSILON = 1e-7

_NO_AXIS = {"axis": None, "keepdims": False}


def _unary(tf_name: str, first: str = "x"):
    return (tf_name, ("x",), {"x": first}, {})


# Keras function -> (TensorFlow function, Keras parameters, Keras->TF names, Keras defaults)
_BACKEND: dict[str, tuple] = {
    **{
        k: (f"math.reduce_{t}", ("x", "axis", "keepdims"), {"x": "input_tensor"}, _NO_AXIS)
        for k, t in {
            "mean": "mean",
            "sum": "sum",
            "max": "max",
            "min": "min",
            "prod": "prod",
            "std": "std",
            "var": "variance",
            "logsumexp": "logsumexp",
        }.items()
    },
    **{
        k: _unary(t)
        for k, t in {
            "abs": "math.abs",
            "square": "math.square",
            "exp": "math.exp",
            "log": "math.log",
            "tanh": "math.tanh",
            "sigmoid": "math.sigmoid",
            "sign": "math.sign",
            "round": "math.round",
            "cos": "math.cos",
            "sin": "math.sin",
            "softplus": "math.softplus",
            "softsign": "math.softsign",
            "relu": "nn.relu",
        }.items()
    },
    "elu": _unary("nn.elu", "features"),
    "pow": ("math.pow", ("x", "a"), {"a": "y"}, {}),
    "maximum": ("math.maximum", ("x", "y"), {}, {}),
    "minimum": ("math.minimum", ("x", "y"), {}, {}),
    "l2_normalize": ("math.l2_normalize", ("x", "axis"), {}, {"axis": None}),
    "expand_dims": ("expand_dims", ("x", "axis"), {"x": "input"}, {"axis": -1}),
    "squeeze": ("squeeze", ("x", "axis"), {"x": "input"}, {}),
    "concatenate": ("concat", ("tensors", "axis"), {"tensors": "values"}, {"axis": -1}),
    "stack": ("stack", ("x", "axis"), {"x": "values"}, {"axis": 0}),
    "reshape": ("reshape", ("x", "shape"), {"x": "tensor"}, {}),
    "permute_dimensions": ("transpose", ("x", "pattern"), {"x": "a", "pattern": "perm"}, {}),
    "transpose": ("transpose", ("x",), {"x": "a"}, {}),
    "softmax": ("nn.softmax", ("x", "axis"), {"x": "logits"}, {"axis": -1}),
    "cast": ("cast", ("x", "dtype"), {}, {}),
    "tile": ("tile", ("x", "n"), {"x": "input", "n": "multiples"}, {}),
    "repeat_elements": (
        "repeat",
        ("x", "rep", "axis"),
        {"x": "input", "rep": "repeats"},
        {},
    ),
}

_OPS: dict[str, tuple] = {
    **{
        k: (f"math.reduce_{t}", ("x", "axis", "keepdims"), {"x": "input_tensor"}, _NO_AXIS)
        for k, t in {
            "mean": "mean",
            "sum": "sum",
            "max": "max",
            "min": "min",
            "prod": "prod",
            "std": "std",
            "var": "variance",
            "logsumexp": "logsumexp",
        }.items()
    },
    **{
        k: _unary(t)
        for k, t in {
            "abs": "math.abs",
            "absolute": "math.abs",
            "sqrt": "math.sqrt",
            "square": "math.square",
            "exp": "math.exp",
            "log": "math.log",
            "tanh": "math.tanh",
            "sigmoid": "math.sigmoid",
            "sign": "math.sign",
            "cos": "math.cos",
            "sin": "math.sin",
            "relu": "nn.relu",
            "negative": "math.negative",
        }.items()
    },
    **{
        k: (t, ("x1", "x2"), {"x1": "x", "x2": "y"}, {})
        for k, t in {
            "add": "math.add",
            "subtract": "math.subtract",
            "multiply": "math.multiply",
            "divide": "math.truediv",
            "true_divide": "math.truediv",
            "power": "math.pow",
            "maximum": "math.maximum",
            "minimum": "math.minimum",
        }.items()
    },
    "expand_dims": ("expand_dims", ("x", "axis"), {"x": "input"}, {}),
    # No default axis: tf.squeeze(x) would also drop a batch axis of size 1.
    "squeeze": ("squeeze", ("x", "axis"), {"x": "input"}, {}),
    "concatenate": ("concat", ("xs", "axis"), {"xs": "values"}, {"axis": 0}),
    "stack": ("stack", ("x", "axis"), {"x": "values"}, {"axis": 0}),
    "reshape": ("reshape", ("x", "newshape"), {"x": "tensor", "newshape": "shape"}, {}),
    "transpose": ("transpose", ("x", "axes"), {"x": "a", "axes": "perm"}, {"axes": None}),
    "softmax": ("nn.softmax", ("x", "axis"), {"x": "logits"}, {"axis": -1}),
    "clip": (
        "clip_by_value",
        ("x", "x_min", "x_max"),
        {"x": "t", "x_min": "clip_value_min", "x_max": "clip_value_max"},
        {},
    ),
    "cast": ("cast", ("x", "dtype"), {}, {}),
}

# Positional parameters of the TensorFlow functions (keywords go through as they are).
_TF_PARAMS: dict[str, tuple[str, ...]] = {
    "concat": ("values", "axis"),
    "stack": ("values", "axis"),
    "expand_dims": ("input", "axis"),
    "squeeze": ("input", "axis"),
    "reshape": ("tensor", "shape"),
    "transpose": ("a", "perm"),
    "tile": ("input", "multiples"),
    "repeat": ("input", "repeats", "axis"),
    "cast": ("x", "dtype"),
    "clip_by_value": ("t", "clip_value_min", "clip_value_max"),
    "nn.softmax": ("logits", "axis"),
    "nn.l2_normalize": ("x", "axis", "epsilon"),
    "math.l2_normalize": ("x", "axis", "epsilon"),
    "linalg.matmul": ("a", "b"),
    "matmul": ("a", "b"),
    "image.resize": ("images", "size", "method"),
    "where": ("condition", "x", "y"),
    **{
        f"math.reduce_{n}": ("input_tensor", "axis", "keepdims")
        for n in ("mean", "sum", "max", "min", "prod", "std", "variance", "logsumexp")
    },
}


def translated_functions() -> dict[str, list[str]]:
    """The functions a Lambda may call, by family (for the documentation)."""
    backend = sorted([*_BACKEND, "sqrt", "clip", "epsilon"])
    return {"K": backend, "ops": sorted(_OPS)}


class LambdaCallUnsupported(Exception):
    """A call the translation cannot express exactly."""


def resolve_global(name: str) -> str | None:
    return ALIASES.get(name)


def canonical_path(path: str) -> str:
    """``keras.backend.mean`` / ``tf.keras.backend.mean`` -> ``backend.mean`` and so on."""
    for prefix, short in (
        ("tf.keras.backend.", "backend."),
        ("keras.backend.", "backend."),
        ("tf.keras.ops.", "ops."),
        ("keras.ops.", "ops."),
    ):
        if path.startswith(prefix):
            return short + path[len(prefix) :]
    return path


def call(path: str, args: list, kwargs: dict, emit: Emit, tf2: bool):
    """The value of ``path(*args, **kwargs)``: tensors made by emitted operations."""
    path = canonical_path(path)
    family, _, name = path.partition(".")
    if path == "backend.epsilon" and not args and not kwargs:
        return EPSILON
    if path == "backend.sqrt":  # Keras 2: sqrt(max(x, 0))
        (x,) = _bind(path, ("x",), args, kwargs, {}).values()
        (clipped,) = _translate("math.maximum", x, {"y": 0.0}, emit)
        return _one(_translate("math.sqrt", clipped, {}, emit))
    if path == "backend.clip":
        p = _bind(path, ("x", "min_value", "max_value"), args, kwargs, {})
        lo, hi = p.get("min_value"), p.get("max_value")
        if not _number(lo) or not (hi is None or _number(hi)):
            raise LambdaCallUnsupported(f"K.clip with bounds {lo!r}, {hi!r}")
        hi = math.inf if hi is None else max(hi, lo)
        return _one(
            _translate("clip_by_value", p["x"], {"clip_value_min": lo, "clip_value_max": hi}, emit)
        )
    table = {"backend": _BACKEND, "ops": _OPS}.get(family)
    if table is not None:
        spec = table.get(name)
        if spec is None:
            raise LambdaCallUnsupported(f"{path} has no translation")
        tf_name, params, renames, defaults = spec
        bound = _bind(path, params, args, kwargs, defaults)
        first = bound.pop(params[0])
        tf_kwargs = {renames.get(k, k): v for k, v in bound.items()}
        return _one(_translate(tf_name, first, tf_kwargs, emit))
    if family == "tf":
        if name.startswith("image.") and not tf2:
            raise LambdaCallUnsupported(
                f"tf.{name} in a file from TensorFlow 1 (its resizing differs from TF 2's)"
            )
        if name.startswith("keras.") or not name:
            raise LambdaCallUnsupported(f"{path} has no translation")
        tf_name = canonical(name)
        params = _TF_PARAMS.get(tf_name) or _TF_PARAMS.get(name) or ("x", "y")
        if len(args) > len(params):
            raise LambdaCallUnsupported(f"{path} with {len(args)} positional arguments")
        if not args:
            raise LambdaCallUnsupported(f"{path} without positional arguments")
        named = dict(zip(params[1:], args[1:]))
        for key in kwargs:
            if key in named:
                raise LambdaCallUnsupported(f"{path} given {key} twice")
        return _one(_translate(name, args[0], {**named, **kwargs}, emit))
    raise LambdaCallUnsupported(f"{path} has no translation")


def _number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _one(outputs: list):
    if len(outputs) != 1:
        raise LambdaCallUnsupported("a function with several results")
    return outputs[0]


def _translate(function: str, first, kwargs: dict, emit: Emit) -> list:
    try:
        return translate(function, first, kwargs, emit)
    except TFFunctionUnsupported as exc:
        raise LambdaCallUnsupported(str(exc)) from None


def _bind(path: str, params: tuple, args: list, kwargs: dict, defaults: dict) -> dict:
    """Arguments by parameter name, as Python binds them; missing ones from ``defaults``."""
    if len(args) > len(params):
        raise LambdaCallUnsupported(f"{path} with {len(args)} positional arguments")
    bound = dict(zip(params, args))
    for key, value in kwargs.items():
        if key not in params or key in bound:
            raise LambdaCallUnsupported(f"{path} with argument {key}=")
        bound[key] = value
    for key in params:
        if key not in bound:
            if key not in defaults:
                raise LambdaCallUnsupported(f"{path} without its argument {key}")
            bound[key] = defaults[key]
    return bound

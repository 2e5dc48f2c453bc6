"""TensorFlow functions of ``TFOpLambda`` nodes that split, select, encode or pad a tensor:
``tf.split``, ``tf.unstack``, ``tf.math.top_k``, ``tf.one_hot`` and ``tf.pad``.

``tf.split``/``tf.unstack`` become one slice (``GetItem``) per output, since their sizes are
fixed when the model is built; ``tf.math.top_k``, ``tf.one_hot`` and ``tf.pad`` become the
keras.ops operations ``TopK``, ``OneHot`` and ``Pad`` (their TensorFlow-only arguments as extra
config keys). :func:`translate` returns ``None`` for a function outside this module.
"""

from __future__ import annotations

import numbers

from codegen.ir.graph import Tensor

from .tf_arguments import Emit, TFFunctionUnsupported, _int_list, _params, _scalar, _show, _tensor

_INDEX_DTYPES = ("int32", "int64")


def translate(name: str, function: str, first, kwargs: dict, emit: Emit) -> list | None:
    if name == "split":
        return _split(function, first, kwargs, emit)
    if name == "unstack":
        return _unstack(function, first, kwargs, emit)
    if name in ("math.top_k", "nn.top_k"):
        return _top_k(function, first, kwargs, emit)
    if name == "one_hot":
        return _one_hot(function, first, kwargs, emit)
    if name in ("pad", "compat.v1.pad"):
        return _pad(function, first, kwargs, emit)
    if name in ("einsum", "linalg.einsum") and isinstance(first, list):  # from a NodeDef
        equation = kwargs.get("equation")
        if not isinstance(equation, str) or set(kwargs) != {"equation"}:
            raise TFFunctionUnsupported(f"tf.{function} with arguments {sorted(kwargs)}")
        operands = [_tensor(function, "operand", x) for x in first]
        return emit("Einsum", {"subscripts": equation}, tuple(operands))
    if name in ("einsum", "linalg.einsum"):
        # tf.einsum(equation, *inputs): TFOpLambda saves the first argument and the keyword
        # arguments only, so the file has the equation but not the tensors (tf-keras cannot
        # load such a file either: "Got 0 inputs for equation").
        raise TFFunctionUnsupported(
            f"tf.{function}: the file does not record its tensor operands (tf-keras saves only "
            "the equation of tf.einsum(equation, *inputs)); use keras.layers.EinsumDense or "
            "keras.ops.einsum"
        )
    return None


def _axis(function: str, value, rank: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not -rank <= value < rank:
        raise TFFunctionUnsupported(f"tf.{function} with axis={_show(value)}")
    return value % rank


def _static_size(function: str, x: Tensor, axis: int) -> int:
    size = x.shape[axis]
    if size is None:
        raise TFFunctionUnsupported(
            f"tf.{function} along axis {axis}, whose size the file does not fix"
        )
    return int(size)


def _slice(x: Tensor, axis: int, index) -> tuple:
    return (slice(None),) * axis + (index,)


def _split(function: str, first, kwargs: dict, emit: Emit) -> list:
    p = _params(
        function,
        first,
        kwargs,
        ("value", "num_or_size_splits", "axis", "num"),
        {"axis": 0, "num": None},
    )
    x = _tensor(function, "value", p["value"])
    axis = _axis(function, p["axis"], len(x.shape))
    size = _static_size(function, x, axis)
    splits = _int_list(function, "num_or_size_splits", p.get("num_or_size_splits"))
    if isinstance(splits, int):
        if splits <= 0 or size % splits:
            raise TFFunctionUnsupported(f"tf.split of {size} values into {splits} parts")
        sizes = [size // splits] * splits
    elif isinstance(splits, list) and splits:
        sizes = list(splits)
        if sizes.count(-1) == 1:  # TensorFlow infers the one size written -1
            sizes[sizes.index(-1)] = size - (sum(sizes) + 1)
        if any(s < 0 for s in sizes) or sum(sizes) != size:
            raise TFFunctionUnsupported(f"tf.split of {size} values into sizes {splits}")
    else:
        raise TFFunctionUnsupported(f"tf.split with num_or_size_splits={_show(splits)}")
    outputs, start = [], 0
    for i, part in enumerate(sizes):
        key = _slice(x, axis, slice(start, start + part))
        outputs += emit("GetItem", {}, (x, key), suffix=str(i) if i else "")
        start += part
    return outputs


def _unstack(function: str, first, kwargs: dict, emit: Emit) -> list:
    p = _params(function, first, kwargs, ("value", "num", "axis"), {"num": None, "axis": 0})
    x = _tensor(function, "value", p["value"])
    axis = _axis(function, p["axis"], len(x.shape))
    size = _static_size(function, x, axis)
    if p["num"] not in (None, size):
        raise TFFunctionUnsupported(f"tf.unstack with num={_show(p['num'])} of {size} values")
    outputs = []
    for i in range(size):
        outputs += emit("GetItem", {}, (x, _slice(x, axis, i)), suffix=str(i) if i else "")
    return outputs


def _dtype_name(function: str, what: str, value) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TFFunctionUnsupported(f"tf.{function} with {what}={_show(value)}")
    return value.replace("tf.", "")


def _top_k(function: str, first, kwargs: dict, emit: Emit) -> list:
    p = _params(
        function,
        first,
        kwargs,
        ("input", "k", "sorted", "index_type"),
        {"k": 1, "sorted": True, "index_type": "int32"},
    )
    x = _tensor(function, "input", p["input"])
    k = _int_list(function, "k", p["k"])
    if not isinstance(k, int) or k < 0:
        raise TFFunctionUnsupported(f"tf.{function} with k={_show(k)}")
    if p["sorted"] is not True:
        # TensorFlow leaves the order of an unsorted result to the kernel.
        raise TFFunctionUnsupported(f"tf.{function} with sorted={_show(p['sorted'])}")
    index_type = _dtype_name(function, "index_type", p["index_type"])
    if index_type not in _INDEX_DTYPES:
        raise TFFunctionUnsupported(f"tf.{function} with index_type={_show(index_type)}")
    values, indices = emit("TopK", {"k": k, "sorted": True}, (x,))
    if index_type != "int32":
        (indices,) = emit("Cast", {"dtype": index_type}, (indices,), suffix="indices")
    return [values, indices]


def _one_hot(function: str, first, kwargs: dict, emit: Emit) -> list:
    p = _params(
        function,
        first,
        kwargs,
        ("indices", "depth", "on_value", "off_value", "axis", "dtype"),
        {"on_value": None, "off_value": None, "axis": None, "dtype": None},
    )
    x = _tensor(function, "indices", p["indices"])
    depth = _int_list(function, "depth", p.get("depth"))
    if not isinstance(depth, int) or depth < 0:
        raise TFFunctionUnsupported(f"tf.one_hot with depth={_show(depth)}")
    on, off = (_fill(function, what, p[what]) for what in ("on_value", "off_value"))
    dtype = _dtype_name(function, "dtype", p["dtype"])
    if dtype is None:  # TensorFlow takes the type of on_value/off_value, else float32
        given = [v for v in (on, off) if v is not None]
        dtype = "float32"
        if given and isinstance(given[0], bool):
            dtype = "bool"
        elif given and isinstance(given[0], numbers.Integral):
            dtype = "int32"
    rank = len(x.shape)
    axis = -1 if p["axis"] is None else p["axis"]
    if isinstance(axis, bool) or not isinstance(axis, int) or not -1 <= axis <= rank:
        raise TFFunctionUnsupported(f"tf.one_hot with axis={_show(axis)}")
    config = {
        "num_classes": depth,
        "axis": -1 if axis == rank else axis,
        "dtype": dtype,
        "sparse": False,
        "on_value": 1 if on is None else on,
        "off_value": 0 if off is None else off,
    }
    return emit("OneHot", config, (x,))


def _fill(function: str, what: str, value):
    """A one_hot fill value: a Python number or bool (``None``: the default)."""
    return value if value is None or isinstance(value, bool) else _scalar(function, what, value)


_PAD_MODES = {"CONSTANT": "constant", "REFLECT": "reflect", "SYMMETRIC": "symmetric"}


def _pad(function: str, first, kwargs: dict, emit: Emit) -> list:
    p = _params(
        function,
        first,
        kwargs,
        ("tensor", "paddings", "mode", "constant_values"),
        {"mode": "CONSTANT", "constant_values": 0},
    )
    x = _tensor(function, "tensor", p["tensor"])
    paddings = p.get("paddings")
    if (
        not isinstance(paddings, list)
        or len(paddings) != len(x.shape)
        or not all(
            isinstance(pair, list) and len(_int_list(function, "paddings", pair)) == 2
            for pair in paddings
        )
        or any(v < 0 for pair in paddings for v in pair)
    ):
        raise TFFunctionUnsupported(f"tf.pad with paddings={_show(paddings)}")
    mode = str(p["mode"]).upper()
    if mode not in _PAD_MODES:
        raise TFFunctionUnsupported(f"tf.pad with mode={_show(p['mode'])}")
    value = _scalar(function, "constant_values", p["constant_values"])
    config = {"pad_width": [list(pair) for pair in paddings], "mode": _PAD_MODES[mode]}
    call_kwargs = {"constant_values": value} if mode == "CONSTANT" and value != 0 else {}
    return emit("Pad", config, (x,), call_kwargs)

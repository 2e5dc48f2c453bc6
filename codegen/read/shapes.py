"""Keras output shapes and dtypes of a layer call, computed from the config alone.

The TensorFlow-free reader needs the shape of every tensor (converters read them) but a model
file records them only partly: Keras 3 configs give the input shapes of each call, legacy
configs only the model's input shapes. Each rule below follows the layer's
``compute_output_shape`` in Keras 3.15 (``None`` for unknown sizes, the batch axis first).

Rules are looked up by Keras class name (``RULES``) or, for keras.ops operations recorded in a
functional graph, by operation class name (``OP_RULES``). A class without a rule raises
:class:`ShapeError`, which names it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from codegen.ir.graph import TensorRef

from .keras_classes import AUGMENTATION_LAYERS

Shape = tuple


class ShapeError(Exception):
    """No rule, or a rule that cannot be applied to these inputs."""


@dataclass
class Site:
    """One call as a shape rule sees it."""

    class_name: str
    config: dict
    shapes: list[Shape]  # of the call's input tensors, in Call.inputs order
    dtypes: list[str]
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    # Output shapes/dtypes of a nested model called on these inputs (set for models).
    run_subgraph: Callable | None = None

    @property
    def compute_dtype(self) -> str:
        return compute_dtype(self.config.get("dtype"))

    def value(self, position: int, name: str, default=None):
        """Call argument by position or keyword (TensorRef for tensors)."""
        if position < len(self.args):
            return self.args[position]
        return self.kwargs.get(name, default)

    def shape_of(self, value) -> Shape:
        if not isinstance(value, TensorRef):
            raise ShapeError(f"expected a tensor argument, got {value!r}")
        return self.shapes[value.position]

    def dtype_of(self, value) -> str:
        if isinstance(value, TensorRef):
            return self.dtypes[value.position]
        if hasattr(value, "dtype") and hasattr(value, "shape"):  # a numpy constant
            return (
                str(value.dtype) if value.ndim else ("float" if value.dtype.kind == "f" else "int")
            )
        if isinstance(value, bool):
            return "bool"
        if isinstance(value, int):
            return "int"
        return "float"

    def first(self) -> TensorRef:
        """The first tensor argument (the first of a list, for merge layers)."""
        value = self.args[0] if self.args else None
        if isinstance(value, (list, tuple)) and value:
            value = value[0]
        if not isinstance(value, TensorRef):
            if self.shapes:
                return TensorRef(0)
            raise ShapeError("a call without tensor inputs")
        return value

    @property
    def x(self) -> Shape:
        return self.shape_of(self.first())

    @property
    def x_dtype(self) -> str:
        return self.dtype_of(self.first())

    def listed(self) -> list[TensorRef]:
        """Tensors of a list argument (merge layers, ops.concatenate)."""
        value = self.args[0] if self.args else None
        if isinstance(value, (list, tuple)):
            refs = [v for v in value if isinstance(v, TensorRef)]
            if len(refs) == len(value):
                return refs
        raise ShapeError("expected a list of tensors as first argument")


def compute_dtype(policy) -> str:
    """The compute dtype of a Keras dtype policy (string or serialized DTypePolicy)."""
    if policy is None:
        return "float32"
    if isinstance(policy, dict):
        policy = (policy.get("config") or {}).get("name", "float32")
    policy = str(policy)
    if policy.startswith("mixed_"):
        return policy[len("mixed_") :]
    if policy.startswith(("int8_from_", "int4_from_", "float8_from_", "gptq", "awq")):
        return policy.rsplit("_from_", 1)[-1] if "_from_" in policy else "float32"
    return policy


def is_float(dtype: str) -> bool:
    return "float" in dtype


def _ints(value, n: int) -> tuple:
    if isinstance(value, int):
        return (value,) * n
    value = tuple(value)
    if len(value) == 1 and n > 1:
        return value * n
    return value


def _channels_last(config) -> bool:
    return (config.get("data_format") or "channels_last") != "channels_first"


def _spatial(shape: Shape, channels_last: bool) -> list[int]:
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


def _out(site: Site, shape, dtype: str | None = None) -> list:
    return [(tuple(shape), dtype or site.compute_dtype)]


def _float_out(site: Site, shape) -> list:
    """Layers that keep integer inputs' dtype (reshaping, dropout...) and cast floats."""
    dtype = site.x_dtype
    return _out(site, shape, site.compute_dtype if is_float(dtype) else dtype)


# -- layer rules ------------------------------------------------------------------------------
RULES: dict[str, Callable[[Site], list]] = {}


def rule(*names: str):
    def decorator(fn):
        for name in names:
            RULES[name] = fn
        return fn

    return decorator


SAME_SHAPE = [
    "Activation",
    "ELU",
    "LeakyReLU",
    "ReLU",
    "PReLU",
    "ThresholdedReLU",
    "BatchNormalization",
    "LayerNormalization",
    "GroupNormalization",
    "RMSNormalization",
    "UnitNormalization",
    "Rescaling",
    "Normalization",
    "LayerScale",
    "Softmax",
    *(name for name in AUGMENTATION_LAYERS if name != "RandomCrop"),  # RandomCrop: below
]
SAME_SHAPE_KEEP_DTYPE = [
    "Identity",
    "Dropout",
    "SpatialDropout1D",
    "SpatialDropout2D",
    "SpatialDropout3D",
    "GaussianNoise",
    "GaussianDropout",
    "AlphaDropout",
    "ActivityRegularization",
    "Masking",
]


@rule(*SAME_SHAPE)
def _same(site: Site):
    return _out(site, site.x)


@rule(*SAME_SHAPE_KEEP_DTYPE)
def _same_keep(site: Site):
    return _float_out(site, site.x)


@rule("CustomScaleLayer")
def _custom_scale(site: Site):
    return _out(site, site.shapes[0])


@rule("InputLayer")
def _input(site: Site):
    cfg = site.config
    shape = cfg.get("batch_shape") or cfg.get("batch_input_shape")
    if shape is None:
        raise ShapeError("InputLayer without batch_shape")
    dtype = cfg.get("dtype") or "float32"
    if isinstance(dtype, dict):
        dtype = compute_dtype(dtype)
    return [(tuple(shape), str(dtype))]


@rule("Dense")
def _dense(site: Site):
    return _out(site, site.x[:-1] + (int(site.config["units"]),))


@rule("EinsumDense")
def _einsum_dense(site: Site):
    cfg = site.config
    equation = str(cfg["equation"]).replace(" ", "")
    partial = cfg.get("output_shape")
    partial = [partial] if isinstance(partial, int) or partial is None else list(partial)
    x = site.x
    dot = re.match(r"([a-zA-Z]+),([a-zA-Z]+)->([a-zA-Z]+)", equation)
    if dot:
        elided = 0
        output = [x[0], *partial]
    else:
        match = re.match(r"\.\.\.([a-zA-Z]+),([a-zA-Z]+)->\.\.\.([a-zA-Z]+)", equation)
        if match:  # left elided
            elided = len(x) - len(match.group(1))
            output = [x[0], *partial]
            for i in range(1, elided):
                output.insert(1, x[i])
        else:
            match = re.match(r"([a-zA-Z]{2,})\.\.\.,([a-zA-Z]+)->([a-zA-Z]{2,})\.\.\.", equation)
            if not match:
                raise ShapeError(f"EinsumDense equation {equation!r}")
            elided = len(x) - len(match.group(1))
            output = [x[0], *partial]
            for i in range(len(x) - elided, len(x)):
                output.append(x[i])
    return _out(site, output)


def _conv_out(site: Site, channels: int, transpose: bool = False):
    cfg = site.config
    x = site.x
    last = _channels_last(cfg)
    axes = _spatial(x, last)
    n = len(axes)
    kernel = _ints(cfg["kernel_size"], n)
    strides = _ints(cfg.get("strides", 1), n)
    dilation = _ints(cfg.get("dilation_rate", 1) or 1, n)
    padding = str(cfg.get("padding", "valid"))
    out = list(x)
    for i, axis in enumerate(axes):
        if transpose:
            output_padding = cfg.get("output_padding")
            op = None if output_padding is None else _ints(output_padding, n)[i]
            out[axis] = deconv_length(x[axis], kernel[i], padding, op, strides[i], dilation[i])
        else:
            out[axis] = conv_length(x[axis], kernel[i], padding, strides[i], dilation[i])
    out[-1 if last else 1] = channels
    return _out(site, out)


@rule("Conv1D", "Conv2D", "Conv3D", "SeparableConv1D", "SeparableConv2D")
def _conv(site: Site):
    return _conv_out(site, int(site.config["filters"]))


@rule("Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose")
def _conv_transpose(site: Site):
    return _conv_out(site, int(site.config["filters"]), transpose=True)


@rule("DepthwiseConv1D", "DepthwiseConv2D")
def _depthwise(site: Site):
    x = site.x
    channels = x[-1 if _channels_last(site.config) else 1]
    multiplier = int(site.config.get("depth_multiplier", 1))
    return _conv_out(site, None if channels is None else channels * multiplier)


@rule(
    "MaxPooling1D",
    "MaxPooling2D",
    "MaxPooling3D",
    "AveragePooling1D",
    "AveragePooling2D",
    "AveragePooling3D",
)
def _pooling(site: Site):
    cfg = site.config
    x = site.x
    axes = _spatial(x, _channels_last(cfg))
    n = len(axes)
    pool = _ints(cfg.get("pool_size", 2), n)
    strides = cfg.get("strides")
    strides = pool if strides is None else _ints(strides, n)
    padding = str(cfg.get("padding", "valid"))
    out = list(x)
    for i, axis in enumerate(axes):
        out[axis] = conv_length(x[axis], pool[i], padding, strides[i])
    return _float_out(site, out) if site.class_name.startswith("Max") else _out(site, out)


@rule(
    "GlobalMaxPooling1D",
    "GlobalMaxPooling2D",
    "GlobalMaxPooling3D",
    "GlobalAveragePooling1D",
    "GlobalAveragePooling2D",
    "GlobalAveragePooling3D",
)
def _global_pooling(site: Site):
    cfg = site.config
    x = site.x
    last = _channels_last(cfg)
    axes = _spatial(x, last)
    if cfg.get("keepdims"):
        out = [1 if i in axes else d for i, d in enumerate(x)]
    else:
        out = [d for i, d in enumerate(x) if i not in axes]
    return _float_out(site, out) if "Max" in site.class_name else _out(site, out)


@rule("Flatten")
def _flatten(site: Site):
    x = site.x
    rest = x[1:]
    if not rest:
        size = 1
    elif any(d is None for d in rest):
        size = None
    else:
        size = math.prod(rest)
    return _float_out(site, (x[0], size))


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


@rule("Reshape")
def _reshape(site: Site):
    x = site.x
    target = site.config["target_shape"]
    return _float_out(site, (x[0], *reshape_shape(x[1:], target)))


@rule("Permute")
def _permute(site: Site):
    x = site.x
    dims = site.config["dims"]
    return _float_out(site, (x[0], *(x[d] for d in dims)))


@rule("RepeatVector")
def _repeat_vector(site: Site):
    x = site.x
    return _float_out(site, (x[0], int(site.config["n"]), *x[1:]))


def _pairs(value, n: int) -> list[tuple[int, int]]:
    if isinstance(value, int):
        return [(value, value)] * n
    value = list(value)
    if n == 1 and len(value) == 2 and all(isinstance(v, int) for v in value):
        return [(value[0], value[1])]
    out = []
    for v in value:
        out.append((v, v) if isinstance(v, int) else (v[0], v[1]))
    return out


def _resize_axes(site: Site, change):
    cfg = site.config
    x = site.x
    n = int(re.search(r"(\d)D$", site.class_name).group(1))
    last = _channels_last(cfg) if n > 1 else True
    axes = _spatial(x, last) if n > 1 else [1]
    out = list(x)
    for i, axis in enumerate(axes):
        out[axis] = None if x[axis] is None else change(i, x[axis], n)
    return _float_out(site, out)


@rule("ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D")
def _zero_padding(site: Site):
    pads = _pairs(site.config.get("padding", 1), int(site.class_name[-2]))
    return _resize_axes(site, lambda i, d, n: d + pads[i][0] + pads[i][1])


@rule("Cropping1D", "Cropping2D", "Cropping3D")
def _cropping(site: Site):
    crops = _pairs(site.config.get("cropping", 1), int(site.class_name[-2]))
    return _resize_axes(site, lambda i, d, n: d - crops[i][0] - crops[i][1])


@rule("UpSampling1D", "UpSampling2D", "UpSampling3D")
def _up_sampling(site: Site):
    n = int(site.class_name[-2])
    size = _ints(site.config.get("size", 2), n)
    return _resize_axes(site, lambda i, d, n: d * size[i])


@rule("Resizing", "CenterCrop", "RandomCrop")
def _resizing(site: Site):
    cfg = site.config
    x = site.x
    out = list(x)
    if len(x) == 4:
        h, w = (1, 2) if _channels_last(cfg) else (2, 3)
    else:
        h, w = (0, 1) if _channels_last(cfg) else (1, 2)
    out[h], out[w] = int(cfg["height"]), int(cfg["width"])
    return _out(site, out)


@rule("Embedding")
def _embedding(site: Site):
    return _out(site, site.x + (int(site.config["output_dim"]),))


_RNN_STATES = {"LSTM": 2, "GRU": 1, "SimpleRNN": 1}


def _rnn_shapes(class_name: str, config: dict, x: Shape) -> list[Shape]:
    units = int(config["units"])
    out = [(x[0], x[1], units) if config.get("return_sequences") else (x[0], units)]
    if config.get("return_state"):
        out += [(x[0], units)] * _RNN_STATES[class_name]
    return out


@rule("LSTM", "GRU", "SimpleRNN")
def _rnn(site: Site):
    return [(s, site.compute_dtype) for s in _rnn_shapes(site.class_name, site.config, site.x)]


_CELL_STATES = {"LSTMCell": 2, "GRUCell": 1, "SimpleRNNCell": 1}


@rule("RNN")
def _generic_rnn(site: Site):
    cfg = site.config
    cell = cfg.get("cell")
    if not isinstance(cell, dict) or cell.get("class_name") not in _CELL_STATES:
        raise ShapeError(f"RNN of {cell.get('class_name') if isinstance(cell, dict) else cell!r}")
    units = int(cell["config"]["units"])
    x = site.x
    out = [(x[0], x[1], units) if cfg.get("return_sequences") else (x[0], units)]
    if cfg.get("return_state"):
        out += [(x[0], units)] * _CELL_STATES[cell["class_name"]]
    return [(shape, site.compute_dtype) for shape in out]


@rule("ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D")
def _conv_lstm(site: Site):
    cfg = site.config
    x = site.x
    last = _channels_last(cfg)
    n = len(x) - 3
    spatial = list(range(2, 2 + n)) if last else list(range(3, 3 + n))
    kernel = _ints(cfg["kernel_size"], n)
    strides = _ints(cfg.get("strides", 1), n)
    dilation = _ints(cfg.get("dilation_rate", 1) or 1, n)
    padding = str(cfg.get("padding", "valid"))
    sizes = [
        conv_length(x[a], kernel[i], padding, strides[i], dilation[i])
        for i, a in enumerate(spatial)
    ]
    filters = int(cfg["filters"])
    step = (*sizes, filters) if last else (filters, *sizes)
    out = [(x[0], x[1], *step) if cfg.get("return_sequences") else (x[0], *step)]
    if cfg.get("return_state"):
        out += [(x[0], *step)] * 2
    return [(shape, site.compute_dtype) for shape in out]


@rule("Bidirectional")
def _bidirectional(site: Site):
    cfg = site.config
    inner = cfg["layer"]
    kind = inner.get("class_name")
    if kind not in _RNN_STATES:
        raise ShapeError(f"Bidirectional around {kind}")
    shapes = _rnn_shapes(kind, inner["config"], site.x)
    output, states = shapes[0], shapes[1:]
    merge_mode = cfg.get("merge_mode", "concat")
    if merge_mode == "concat":
        outputs = [output[:-1] + (None if output[-1] is None else output[-1] * 2,)]
    elif merge_mode is None:
        outputs = [output, output]
    else:
        outputs = [output]
    return [(s, site.compute_dtype) for s in outputs + states + states]


@rule("TimeDistributed")
def _time_distributed(site: Site):
    inner = site.config["layer"]
    x = site.x
    inner_rule = RULES.get(inner.get("class_name"))
    if inner_rule is None:
        raise ShapeError(f"no shape rule for {inner.get('class_name')} (inside TimeDistributed)")
    inner_site = Site(
        inner["class_name"],
        inner.get("config") or {},
        [(x[0], *x[2:])],
        [site.x_dtype],
        (TensorRef(0),),
    )
    (shape, dtype), *_ = inner_rule(inner_site)
    return [((x[0], x[1], *shape[1:]), dtype)]


_MERGES = ("Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum")


@rule(*_MERGES)
def _merge(site: Site):
    refs = site.listed()
    shapes = [site.shape_of(r) for r in refs]
    return _out(site, broadcast(*shapes))


@rule("Concatenate")
def _concatenate(site: Site):
    refs = site.listed()
    shapes = [site.shape_of(r) for r in refs]
    axis = int(site.config.get("axis", -1))
    rank = len(shapes[0])
    axis %= rank
    out = list(shapes[0])
    for s in shapes[1:]:
        for i, d in enumerate(s):
            if i != axis and out[i] is None:
                out[i] = d
    sizes = [s[axis] for s in shapes]
    out[axis] = None if any(d is None for d in sizes) else sum(sizes)
    dtypes = [site.dtype_of(r) for r in refs]
    dtype = site.compute_dtype if any(is_float(d) for d in dtypes) else dtypes[0]
    return _out(site, out, dtype)


@rule("Dot")
def _dot(site: Site):
    refs = site.listed()
    shape1, shape2 = (list(site.shape_of(r)) for r in refs[:2])
    axes = site.config.get("axes", -1)
    if isinstance(axes, int):
        axes = [axes % len(shape1), axes % len(shape2)] if axes < 0 else [axes, axes]
    shape1.pop(axes[0])
    shape2.pop(axes[1])
    shape2.pop(0)
    out = shape1 + shape2
    if len(out) == 1:
        out += [1]
    return _out(site, out)


_MHA_ARGS = ("query", "value", "key")


@rule("MultiHeadAttention", "GroupedQueryAttention", "GroupQueryAttention")
def _multi_head_attention(site: Site):
    query = site.shape_of(site.value(0, "query"))
    value = site.shape_of(site.value(1, "value"))
    key = site.value(2, "key")
    key = value if key is None else site.shape_of(key)
    output_shape = site.config.get("output_shape")
    if output_shape:
        output_shape = (output_shape,) if isinstance(output_shape, int) else tuple(output_shape)
        out = query[:-1] + output_shape
    else:
        out = query
    outputs = [(tuple(out), site.compute_dtype)]
    if site.value(99, "return_attention_scores", False):
        if site.class_name == "MultiHeadAttention":
            heads = int(site.config["num_heads"])
        else:
            heads = int(site.config.get("num_query_heads") or site.config.get("num_heads"))
        outputs.append(((query[0], heads, query[1], key[1]), site.compute_dtype))
    return outputs


@rule("Attention", "AdditiveAttention")
def _attention(site: Site):
    inputs = site.value(0, "inputs")
    if not isinstance(inputs, (list, tuple)) or len(inputs) < 2:
        raise ShapeError("Attention expects [query, value(, key)]")
    query, value = site.shape_of(inputs[0]), site.shape_of(inputs[1])
    outputs = [((*query[:-1], value[-1]), site.compute_dtype)]
    if site.value(99, "return_attention_scores", False):
        key = site.shape_of(inputs[2]) if len(inputs) > 2 else value
        outputs.append(((query[0], query[1], key[1]), site.compute_dtype))
    return outputs


# -- keras.ops operations ------------------------------------------------------------------------
OP_RULES: dict[str, Callable[[Site], list]] = {}


def op_rule(*names: str):
    def decorator(fn):
        for name in names:
            OP_RULES[name] = fn
        return fn

    return decorator


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


def infer(site: Site, is_op: bool) -> list[tuple[Shape, str]]:
    """Output (shape, dtype) pairs of one call; ShapeError names a class without a rule."""
    table = OP_RULES if is_op else RULES
    fn = table.get(site.class_name)
    if fn is None:
        kind = "keras.ops operation" if is_op else "layer"
        raise ShapeError(f"no shape rule for {kind} {site.class_name}")
    try:
        return fn(site)
    except ShapeError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise ShapeError(f"cannot compute the output shape of {site.class_name}: {exc!r}") from None

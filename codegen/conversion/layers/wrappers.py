"""TimeDistributed: the wrapped layer applied to every time step.

Keras runs the inner layer on each ``x[:, t]``; here the time axis is folded into the batch
(``x.flatten(0, 1)``), the inner layer's own converter writes its call, and the result is
unfolded (``.unflatten(0, (-1, steps))``). The module is named after the TimeDistributed layer
and its state_dict entries come from the inner layer's variables (``conv2d/kernel``, ...).
"""

from __future__ import annotations

import re
import weakref

from codegen.ir.graph import Call, Layer, Tensor, TensorRef
from codegen.ir.layout import Layout, keras_order
from codegen.read.shapes import compute_dtype

from ..context import CallContext, Unsupported
from ..dtypes import TORCH_DTYPES
from ..registry import KERAS, register

# Inner layers whose call takes no Keras mask: a masked input changes nothing for them.
_IGNORE_MASK = {
    "Dense",
    "EinsumDense",
    "Embedding",
    "Conv1D",
    "Conv2D",
    "Conv3D",
    "Conv1DTranspose",
    "Conv2DTranspose",
    "Conv3DTranspose",
    "DepthwiseConv1D",
    "DepthwiseConv2D",
    "SeparableConv1D",
    "SeparableConv2D",
    "Activation",
    "ReLU",
    "LeakyReLU",
    "ELU",
    "PReLU",
    "Dropout",
    "LayerNormalization",
    "BatchNormalization",
    "Flatten",
}

# One synthetic inner layer per TimeDistributed layer, so that a shared TimeDistributed layer
# declares its module and records its weights once.
_INNER: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _inner_layer(wrapper: Layer) -> Layer:
    inner = _INNER.get(wrapper)
    if inner is not None:
        return inner
    spec = wrapper.config.get("layer")
    if not isinstance(spec, dict) or not isinstance(spec.get("config"), dict):
        raise Unsupported("the wrapped layer's config is missing")
    kind = spec.get("class_name")
    if _custom(spec):
        raise Unsupported(f"wrapped custom layer {kind!r}")
    prefix = f"{spec['config'].get('name')}/"
    weights = {k.removeprefix(prefix): v for k, v in wrapper.weights.items()}
    trainable = {k.removeprefix(prefix): v for k, v in wrapper.trainable.items()}
    inner = Layer(
        name=wrapper.name,  # the module attribute is named after the TimeDistributed layer
        class_name=str(kind),
        config=dict(spec["config"]),
        weights=weights,
        trainable=trainable,
    )
    inner.variable_prefix = prefix if any(k.startswith(prefix) for k in wrapper.weights) else ""
    _INNER[wrapper] = inner
    return inner


def _custom(spec: dict) -> bool:
    """Whether a wrapped layer's config names a class Keras does not define.

    Keras 3 and tf.keras >= 2.13 record the class's ``module``; older files (tf.keras <= 2.12,
    Keras 2.0-2.3) name built-in classes by class name only, as they do outside wrappers.
    """
    module, registered = spec.get("module"), spec.get("registered_name")
    if isinstance(registered, str) and ">" in registered:
        return True
    if module is None:
        return False
    return not (isinstance(module, str) and module.startswith(("keras", "tf_keras", "tensorflow")))


def _folded_layout(layout: Layout) -> Layout:
    """The layout of ``x.flatten(0, 1)`` for ``x`` (batch, time, ...) in ``layout``."""
    return Layout((0, *(axis - 1 for axis in layout.perm[2:])), layout.feature_order)


def _unfolded_layout(layout: Layout) -> Layout:
    if layout.perm[0] != 0:
        raise Unsupported("the wrapped layer moves the batch axis")
    return Layout((0, 1, *(axis + 1 for axis in layout.perm[1:])), layout.feature_order)


@register("TimeDistributed", layout=KERAS)
def time_distributed(call, ctx: CallContext) -> None:
    wrapper = call.layer
    wrapped_graph = getattr(wrapper, "wrapped", None)
    spec = ctx.config["layer"]
    kind = spec.get("class_name") if isinstance(spec, dict) else None
    first = call.args[0] if len(call.args) == 1 else None
    mask = call.kwargs.get("mask")
    if not isinstance(first, TensorRef) or first.position != 0 or len(call.outputs) != 1:
        raise Unsupported("TimeDistributed with several inputs or outputs")
    if set(call.kwargs) - {"mask", "training"}:
        raise Unsupported(f"call arguments {sorted(call.kwargs)}")
    masked = isinstance(mask, TensorRef) or call.inputs[0].masked
    if masked and (wrapped_graph is not None or kind not in _IGNORE_MASK):
        raise Unsupported(f"a masked input to a wrapped {kind} (Keras passes it the mask)")
    if call.kwargs.get("training") is not None:
        raise Unsupported(f"training={call.kwargs['training']!r} given in the call")
    in_shape, out_shape = ctx.input_shape(0), ctx.output_shape(0)
    layout = ctx.input_layout(0)
    if layout.perm[:2] == (0, 1):
        x = ctx.input(0)
    elif layout.feature_order is None:
        layout = keras_order(layout.rank)
        x = ctx.input(0, layout)
    else:
        raise Unsupported("a flattened channels-first input")
    steps = in_shape[1]
    unfold = f"(-1, {int(steps)})" if steps is not None else f"({x}.shape[0], -1)"
    if wrapped_graph is not None:
        expr, inner_out = _wrapped_model(ctx, wrapped_graph, x, layout)
    else:
        expr, inner_out = _wrapped_layer(ctx, wrapper, x, layout, in_shape, out_shape)
        if inner_out.feature_order is not None and not _dense_consumers(ctx):
            # A Flatten in torch's order only helps a TimeDistributed(Dense) that reorders
            # its kernel rows; for anything else flatten in Keras's order.
            layout = keras_order(layout.rank)
            x = ctx.input(0, layout)
            expr, inner_out = _wrapped_layer(ctx, wrapper, x, layout, in_shape, out_shape)
    out_layout = _unfolded_layout(inner_out)
    if out_layout.rank != len(out_shape):
        raise Unsupported("the wrapped layer's output rank does not match")
    ctx.output(f"{expr}.unflatten(0, {unfold})", out_layout)


def _dense_consumers(ctx: CallContext) -> bool:
    """Whether only single-call TimeDistributed(Dense) layers read this call's output."""
    tensor = ctx.call.outputs[0]
    if ctx.is_model_output(tensor):
        return False
    for user in ctx.consumers(tensor):
        spec = user.layer.config.get("layer")
        if user.layer.class_name != "TimeDistributed" or len(user.layer.calls) != 1:
            return False
        if not isinstance(spec, dict) or spec.get("class_name") != "Dense":
            return False
    return True


def _wrapped_layer(ctx: CallContext, wrapper: Layer, x: str, layout: Layout, in_shape, out_shape):
    inner = _inner_layer(wrapper)
    conv = ctx.converter_of(inner)
    if conv is None or inner.class_name in ("TimeDistributed", "InputLayer"):
        raise Unsupported(f"wrapped layer {inner.class_name} not supported")
    source = ctx.call.inputs[0]
    step_in = Tensor(shape=(None, *in_shape[2:]), dtype=source.dtype)
    step_out = Tensor(shape=(None, *out_shape[2:]), dtype=ctx.call.outputs[0].dtype)
    step_call = Call(layer=inner, inputs=[step_in], outputs=[step_out], args=(TensorRef(0),))
    step_call.index = len(inner.calls)
    inner.calls.append(step_call)
    step_out.producer = step_call
    try:
        return ctx.convert_inner(
            conv, step_call, _folded_layout(layout), f"{x}.flatten(0, 1)", inner.variable_prefix
        )
    except Unsupported as exc:
        raise Unsupported(f"wrapped {inner.class_name}: {exc}") from None


def _wrapped_model(ctx: CallContext, graph, x: str, layout: Layout):
    """A Sequential/Functional model inside TimeDistributed: its own class, as for nesting."""
    sub = ctx.nested_class(graph, [_folded_layout(layout)])
    if len(sub.input_layouts) != 1 or len(sub.output_layouts) != 1:
        raise Unsupported("a wrapped model with several inputs or outputs")
    wanted = sub.input_layouts[0]
    folded = f"{x}.flatten(0, 1)"
    if wanted != _folded_layout(layout):
        if wanted.perm[0] != 0 or layout.feature_order is not None:
            raise Unsupported("a wrapped model whose input layout moves the batch axis")
        x = ctx.input(0, _unfolded_layout(wanted))
        folded = f"{x}.flatten(0, 1)"
    attr = ctx.module(f"{sub.name}()")
    ctx.adopt_weights(sub)
    return f"{attr}({folded})", sub.output_layouts[0]


# Wrapped layers whose torch weight has Keras's last kernel axis first (transpose: last).
_SPECTRAL_KERNELS = {
    **dict.fromkeys(("Dense", "Conv1D", "Conv2D", "Conv3D"), False),
    **dict.fromkeys(("Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose"), False),
    "Embedding": True,
}
_PLACEHOLDER = "__spectral_normalization_input__"


@register("SpectralNormalization", layout=KERAS)
def spectral_normalization(call, ctx: CallContext) -> None:
    """The wrapped layer with the kernel Keras stores (Keras normalises it in training only,
    and keeps the result); in training mode ``spectral_normalize`` does the same first."""
    wrapper = call.layer
    ctx.config.get("layer")  # read by _inner_layer
    iterations = int(ctx.config.get("power_iterations", 1))
    first = call.args[0] if len(call.args) == 1 else None
    if (
        not isinstance(first, TensorRef)
        or len(call.outputs) != 1
        or set(call.kwargs) - {"training"}
    ):
        raise Unsupported("SpectralNormalization with other call arguments")
    if call.kwargs.get("training") not in (None, False):  # False: the default Keras records
        raise Unsupported(f"training={call.kwargs['training']!r} given in the call")
    inner = _inner_layer(wrapper)
    if inner.class_name not in _SPECTRAL_KERNELS:
        raise Unsupported(f"a wrapped {inner.class_name}")
    conv = ctx.converter_of(inner)
    if conv is None:
        raise Unsupported(f"wrapped layer {inner.class_name} not supported")
    if compute_dtype(inner.config.get("dtype")) != "float32":
        raise Unsupported(f"a wrapped layer computing in {compute_dtype(inner.config['dtype'])}")
    source = call.inputs[0]
    step_in = Tensor(shape=source.shape, dtype=source.dtype)
    step_out = Tensor(shape=call.outputs[0].shape, dtype="float32")  # the wrapped layer's
    step_call = Call(layer=inner, inputs=[step_in], outputs=[step_out], args=(TensorRef(0),))
    step_call.index = len(inner.calls)
    inner.calls.append(step_call)
    step_out.producer = step_call
    layout = ctx.input_layout(0)
    try:
        expr, out_layout = ctx.convert_inner(
            conv, step_call, layout, _PLACEHOLDER, inner.variable_prefix
        )
    except Unsupported as exc:
        raise Unsupported(f"wrapped {inner.class_name}: {exc}") from None
    modules = set(re.findall(r"\bself\.(\w+)\(", expr))
    if len(modules) != 1:
        raise Unsupported(f"a wrapped {inner.class_name} that is not one module")
    (attr,) = modules
    u = ctx.keras_weight("vector_u")
    vector_u = ctx.buffer(f"{attr}_vector_u", f"torch.zeros({tuple(u.shape)!r})", u, "vector_u")
    transpose = ", transpose=True" if _SPECTRAL_KERNELS[inner.class_name] else ""
    helper = ctx.helper("spectral_normalize")
    x = ctx.input(0)
    step = f"{helper}({x}, self.{attr}, {vector_u}, {iterations}{transpose})"
    expr = expr.replace(_PLACEHOLDER, step)
    if source.dtype != "float32":
        # Keras casts the output to the input's dtype: an Embedding's vectors to its ids' ints.
        if source.dtype not in TORCH_DTYPES:
            raise Unsupported(f"an input of dtype {source.dtype}")
        expr = f"{expr}.to({TORCH_DTYPES[source.dtype]})"
    ctx.output(expr, out_layout)

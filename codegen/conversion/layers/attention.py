"""Attention layers and EinsumDense.

MultiHeadAttention and GroupQueryAttention become one ``KerasMultiHeadAttention`` module
(helper) whose forward line reads like the Keras call, ``x = self.mha(x, x)``; Attention and
AdditiveAttention become a ``KerasAttention`` module. EinsumDense is an ``nn.Linear`` when its
equation is a matrix product over trailing axes, else ``torch.einsum`` with the Keras kernel.

Keras masks. A tensor from ``Embedding(mask_zero=True)`` or ``Masking`` carries a mask that
Keras hands to attention layers implicitly (it is not recorded in the graph), so
:func:`keras_mask` rebuilds it from where it came from, following Keras 3.15's
``compute_mask`` rules. MultiHeadAttention also *deletes* the masks of the tensors it is called
on while the model runs (``backend.set_keras_mask(query, None)``), so a layer that reads such a
tensor's mask after that call sees none; this is reproduced, and a case where it depends on the
order Keras runs independent layers in is reported as unsupported.
"""

from __future__ import annotations

import re

import numpy as np

from codegen.ir.graph import Call, Tensor, TensorRef
from codegen.ir.layout import keras_order
from codegen.read.layers.merging import MERGE_LAYERS as _MERGES

from .. import weights as W
from ..context import CallContext, Unsupported
from ..registry import AGNOSTIC, KERAS, register
from ._lora import lora_merged
from .activations import with_activation


# -- call arguments ---------------------------------------------------------------------
def bind(call: Call, names: tuple[str, ...]) -> dict:
    """The call's arguments by parameter name (positional ones first)."""
    if len(call.args) > len(names):
        raise Unsupported(f"{len(call.args)} positional arguments")
    values = dict(zip(names, call.args))
    for key, value in call.kwargs.items():
        if key not in names:
            raise Unsupported(f"call argument {key}={value!r}")
        values[key] = value
    return values


def _position(value, what: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, TensorRef):
        raise Unsupported(f"{what}={value!r} (expected a tensor)")
    return value.position


def _flag(values: dict, name: str) -> bool:
    value = values.get(name, False)
    if value is None:
        return False
    if not isinstance(value, (bool, np.bool_)):
        raise Unsupported(f"{name}={value!r} (expected a constant True/False)")
    return bool(value)


def _training(values: dict, dropout: float) -> None:
    training = values.get("training")
    if training is not None and dropout > 0:
        raise Unsupported(
            f"training={training!r} given in the call (dropout follows module.train())"
        )


def _bool(expr: str, tensor: Tensor) -> str:
    return expr if tensor.dtype == "bool" else f"{expr}.bool()"


# -- Keras masks ------------------------------------------------------------------------
_CLEARS_MASKS = {"MultiHeadAttention"}  # call() deletes the masks of query, value and key
_QUERY_MASK = {"MultiHeadAttention", "GroupedQueryAttention", "GroupQueryAttention"}
_ATTENTION = {"Attention", "AdditiveAttention"}
_MHA_ARGS = (
    "query",
    "value",
    "key",
    "query_mask",
    "value_mask",
    "key_mask",
    "attention_mask",
    "return_attention_scores",
    "training",
    "use_causal_mask",
)
_ATTENTION_ARGS = ("inputs", "mask", "training", "return_attention_scores", "use_causal_mask")


def _upstream(call: Call) -> set[int]:
    """ids of every call that ``call`` depends on."""
    seen: set[int] = set()
    stack = [t.producer for t in call.inputs if t.producer is not None]
    while stack:
        producer = stack.pop()
        if id(producer) in seen:
            continue
        seen.add(id(producer))
        stack.extend(t.producer for t in producer.inputs if t.producer is not None)
    return seen


def _attended_tensors(call: Call) -> list[Tensor]:
    """The query, value and key tensors of a MultiHeadAttention call (not attention_mask)."""
    values = bind(call, _MHA_ARGS)
    positions = [values.get(name) for name in ("query", "value", "key")]
    return [call.inputs[p.position] for p in positions if isinstance(p, TensorRef)]


def _cleared(ctx: CallContext, tensor: Tensor, reader: Call) -> bool:
    """Whether a MultiHeadAttention call deleted the mask of ``tensor`` before ``reader`` runs."""
    cleared = False
    for user in ctx.consumers(tensor):
        if user is reader or user.layer.is_op or user.layer.class_name not in _CLEARS_MASKS:
            continue
        if not any(t is tensor for t in _attended_tensors(user)):
            continue
        if id(user) in _upstream(reader):
            cleared = True
        elif id(reader) not in _upstream(user):
            raise Unsupported(
                f"the Keras mask of an input depends on the order in which Keras runs "
                f"{user.layer.name!r} (MultiHeadAttention deletes its inputs' masks) and "
                f"{reader.layer.name!r}"
            )
    return cleared


def keras_mask(ctx: CallContext, tensor: Tensor, reader: Call | None = None) -> str | None:
    """Expression of the Keras mask ``tensor`` carries when ``reader`` runs (default: this
    call), in Keras order (``(batch, steps)``, bool), or None when it carries none."""
    reader = ctx.call if reader is None else reader
    if not tensor.masked or _cleared(ctx, tensor, reader):
        return None
    call = tensor.producer
    if call is None:
        raise Unsupported("a Keras mask on a model input")
    layer = call.layer
    kind = layer.class_name
    if layer.is_op or layer.subgraph is not None:
        raise Unsupported(f"the Keras mask made by {layer.name!r} ({kind})")
    if kind == "Embedding":
        ids = call.inputs[0]
        return f"{ctx.value(ids, keras_order(ids.rank))} != 0"
    if kind == "Masking":
        x = call.inputs[0]
        value = float(layer.config.get("mask_value", 0.0))
        return f"({ctx.value(x, keras_order(x.rank))} != {value!r}).any(dim=-1)"
    if kind in _MERGES:
        masks = [keras_mask(ctx, t, call) for t in call.inputs]
        if any(m is None for m in masks):
            return None  # Keras: no mask unless every input has one
        unique = list(dict.fromkeys(masks))
        return unique[0] if len(unique) == 1 else " | ".join(f"({m})" for m in unique)
    if kind in _QUERY_MASK:
        values = bind(call, _MHA_ARGS)
        query = call.inputs[_position(values.get("query"), "query")]
        explicit = _position(values.get("query_mask"), "query_mask")
        if explicit is not None and kind not in _CLEARS_MASKS:
            source = call.inputs[explicit]
            return _bool(ctx.value(source, keras_order(source.rank)), source)
        return keras_mask(ctx, query, call)
    if kind in _ATTENTION:
        query_mask, _ = _attention_masks(ctx, call)
        return query_mask
    if kind in ("Concatenate", "Dot", "Lambda") or "Pooling" in kind:
        raise Unsupported(f"the Keras mask made by {layer.name!r} ({kind})")
    # Keras's default compute_mask: the mask given to the call, else the first input's.
    explicit = call.kwargs.get("mask")
    if isinstance(explicit, TensorRef):
        source = call.inputs[explicit.position]
        return _bool(ctx.value(source, keras_order(source.rank)), source)
    if explicit is not None:
        raise Unsupported(f"the Keras mask made by {layer.name!r} ({kind})")
    first = call.args[0] if call.args else None
    if not isinstance(first, TensorRef):
        raise Unsupported(f"the Keras mask made by {layer.name!r} ({kind})")
    return keras_mask(ctx, call.inputs[first.position], call)


def _attention_masks(ctx: CallContext, call: Call) -> tuple[str | None, str | None]:
    """Query and value masks of an Attention/AdditiveAttention call."""
    values = bind(call, _ATTENTION_ARGS)
    inputs = values.get("inputs")
    if not isinstance(inputs, (list, tuple)) or not 2 <= len(inputs) <= 3:
        raise Unsupported("inputs must be a list [query, value] or [query, value, key]")
    explicit = values.get("mask")
    if explicit is not None:
        if not isinstance(explicit, (list, tuple)) or len(explicit) < 2:
            raise Unsupported(f"mask={explicit!r}")
        masks = []
        for value in explicit[:2]:
            position = _position(value, "mask")
            tensor = None if position is None else call.inputs[position]
            masks.append(
                None
                if tensor is None
                else _bool(ctx.value(tensor, keras_order(tensor.rank)), tensor)
            )
        return masks[0], masks[1]
    query, value = (call.inputs[_position(v, "inputs")] for v in inputs[:2])
    return keras_mask(ctx, query, call), keras_mask(ctx, value, call)


# -- EinsumDense ------------------------------------------------------------------------
_SPEC = re.compile(
    r"^([a-zA-Z]*(?:\.\.\.)?[a-zA-Z]*),([a-zA-Z]+)->([a-zA-Z]*(?:\.\.\.)?[a-zA-Z]*)$"
)


def _expand(spec: str, rank: int, letters: list[str]) -> str:
    if "..." not in spec:
        return spec
    count = rank - (len(spec) - 3)
    if count < 0:
        raise Unsupported(f"equation side {spec!r} for a rank-{rank} tensor")
    return spec.replace("...", "".join(letters[:count]))


@register("EinsumDense", layout=AGNOSTIC)
def einsum_dense(call, ctx: CallContext) -> None:
    cfg = ctx.config
    equation = str(cfg["equation"])
    cfg.get("output_shape")  # the kernel and bias shapes say it all
    bias_axes = cfg.get("bias_axes")
    quantized = cfg.get("quantization_config") or any(
        k not in ("kernel", "bias", "lora_kernel_a", "lora_kernel_b") for k in ctx.layer.weights
    )
    if quantized or ctx.keras_weight("kernel").dtype.kind != "f":
        raise Unsupported("quantized EinsumDense layers")
    match = _SPEC.match(equation.replace(" ", ""))
    if not match:
        raise Unsupported(f"equation={equation!r}")
    kernel, merged = lora_merged(ctx)
    bias = ctx.keras_weight("bias") if bias_axes else None
    rank = len(ctx.input_shape())
    lhs, rhs, out = match.groups()
    if "..." in out and "..." not in lhs:
        raise Unsupported(f"equation={equation!r}")
    used = set(lhs + rhs + out)
    spare = [c for c in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ" if c not in used]
    lhs_x, out_x = _expand(lhs, rank, spare), _expand(out, rank, spare)
    if len(lhs_x) != rank or len(rhs) != kernel.ndim or len(out_x) != len(ctx.output_shape()):
        raise Unsupported(f"equation={equation!r} for a rank-{rank} input")
    if any(len(set(s)) != len(s) for s in (lhs_x, rhs, out_x)):
        raise Unsupported(f"equation={equation!r} (a repeated axis)")
    out_layout = keras_order(len(out_x))
    linear = _as_linear(lhs_x, rhs, out_x, kernel, bias)
    if linear is not None:
        n_in, n_out, pre, post = linear
        x = ctx.input(0, keras_order(rank))
        bias_kw = "" if bias is not None else ", bias=False"
        attr = ctx.module(f"nn.Linear({n_in}, {n_out}{bias_kw})")
        weight = kernel.reshape(n_in, n_out)
        ctx.weight(
            "weight",
            W.dense_kernel(weight),
            "kernel",
            f"{merged}reshape({n_in}, {n_out}) + dense_kernel",
        )
        if bias is not None:
            ctx.weight("bias", bias.reshape(-1), "bias", "flatten")
        expr = f"{attr}({x}{pre}){post}"
    else:
        layout = ctx.input_layout()
        if layout.feature_order is not None:
            x = ctx.input(0, keras_order(rank))
            layout = keras_order(rank)
        else:
            x = ctx.input(0)
        torch_lhs = "".join(lhs_x[axis] for axis in layout.perm)
        spec = f"{lhs},{rhs}->{out}" if torch_lhs == lhs_x else f"{torch_lhs},{rhs}->{out_x}"
        ctx.helper("EinsumDense")
        args = [repr(spec), repr(tuple(kernel.shape))]
        if bias is not None:
            args.append(repr(tuple(bias.shape)))
        attr = ctx.module(f"EinsumDense({', '.join(args)})")
        ctx.weight("kernel", kernel, "kernel", f"{merged}identity")
        if bias is not None:
            ctx.weight("bias", bias, "bias")
        expr = f"{attr}({x})"
    ctx.output(with_activation(ctx, expr, out_layout), out_layout)


def _as_linear(lhs: str, rhs: str, out: str, kernel: np.ndarray, bias) -> tuple | None:
    """``(in_features, out_features, input suffix, output suffix)`` when the equation is
    ``free..., contracted... · contracted..., new... -> free..., new...``, else None."""
    contracted = [c for c in lhs if c in rhs and c not in out]
    free = [c for c in lhs if c not in rhs]
    new = [c for c in rhs if c not in lhs]
    if not contracted or set(lhs) & set(rhs) & set(out):
        return None
    if (
        lhs != "".join(free + contracted)
        or rhs != "".join(contracted + new)
        or out != "".join(free + new)
    ):
        return None
    new_shape = kernel.shape[len(contracted) :]
    n_in = int(np.prod(kernel.shape[: len(contracted)]))
    n_out = int(np.prod(new_shape))
    if bias is not None and tuple(bias.shape) != tuple(new_shape):
        return None  # a bias along other axes: keep Keras's shape (einsum path)
    pre = f".flatten({-len(contracted)})" if len(contracted) > 1 else ""
    if len(new) == 1:
        post = ""
    elif not new:
        post = ".squeeze(-1)"
    else:
        post = f".unflatten(-1, {tuple(int(d) for d in new_shape)!r})"
    return n_in, n_out, pre, post


# -- MultiHeadAttention / GroupQueryAttention ---------------------------------------------
def _projection(ctx: CallContext, torch_name: str, keras_name: str, use_bias: bool) -> None:
    kernel = ctx.keras_weight(f"{keras_name}/kernel")  # (features, heads, dim)
    flat = kernel.reshape(kernel.shape[0], -1)
    ctx.weight(
        f"{torch_name}.weight",
        flat.T,
        f"{keras_name}/kernel",
        "reshape(features, heads*dim) + dense_kernel",
    )
    if use_bias:
        ctx.weight(
            f"{torch_name}.bias",
            ctx.keras_weight(f"{keras_name}/bias").reshape(-1),
            f"{keras_name}/bias",
            "flatten",
        )


def _attention_layer(call, ctx: CallContext, grouped: bool) -> None:
    cfg = ctx.config
    if grouped:
        heads = int(cfg["num_query_heads"])
        kv_heads = int(cfg["num_key_value_heads"])
        key_dim = value_dim = int(cfg["head_dim"])
        output_shape = None
        attention_axes = None
    else:
        heads = int(cfg["num_heads"])
        kv_heads = heads
        key_dim = int(cfg["key_dim"])
        value_dim = int(cfg.get("value_dim") or key_dim)
        output_shape = cfg.get("output_shape")
        attention_axes = cfg.get("attention_axes")
    dropout = float(cfg.get("dropout") or 0.0)
    use_bias = bool(cfg.get("use_bias", True))
    gate = bool(cfg.get("use_gate", False))
    window = cfg.get("sliding_window")
    if cfg.get("flash_attention"):
        raise Unsupported("flash_attention=True")
    expected = {"query", "key", "value", "attention_output"} | ({"gate"} if gate else set())
    names = {
        f"{p}/{v}" for p in expected for v in (("kernel", "bias") if use_bias else ("kernel",))
    }
    if set(ctx.layer.weights) != names:
        extra = sorted(set(ctx.layer.weights) ^ names)
        raise Unsupported(f"variables {extra} (quantized or LoRA attention layers)")

    values = bind(call, _MHA_ARGS)
    _training(values, dropout)
    q_pos = _position(values.get("query"), "query")
    v_pos = _position(values.get("value"), "value")
    k_pos = _position(values.get("key"), "key")
    if q_pos is None or v_pos is None:
        raise Unsupported("query and value must be tensors")
    causal = _flag(values, "use_causal_mask")
    scores = _flag(values, "return_attention_scores")
    rank = len(ctx.input_shape(q_pos))
    ranks = {len(ctx.input_shape(p)) for p in (q_pos, v_pos, k_pos) if p is not None}
    if ranks != {rank} or rank < 3:
        raise Unsupported(f"query, value and key of ranks {sorted(ranks)}")
    default_axes = tuple(range(1, rank - 1))
    if (
        attention_axes is not None
        and tuple(int(a) % (rank - 1) for a in attention_axes) != default_axes
    ):
        raise Unsupported(f"attention_axes={tuple(attention_axes)!r} (only all the steps axes)")
    if grouped and rank != 3:
        raise Unsupported(f"rank-{rank} inputs")

    # Masks: the attention_mask argument and the inputs' Keras masks (combined in the module).
    masks = []
    explicit = _position(values.get("attention_mask"), "attention_mask")
    if explicit is not None:
        tensor = call.inputs[explicit]
        if tensor.rank != 3:
            raise Unsupported(f"a rank-{tensor.rank} attention_mask (expected (batch, T, S))")
        masks.append(("attention_mask", _bool(ctx.input(explicit, keras_order(3)), tensor)))
    for name, pos in (("query", q_pos), ("value", v_pos), ("key", k_pos)):
        given = _position(values.get(f"{name}_mask"), f"{name}_mask")
        if given is not None and not (name == "query" and not grouped):
            # (MultiHeadAttention replaces a query_mask argument by the query's Keras mask.)
            tensor = call.inputs[given]
            mask = _bool(ctx.input(given, keras_order(tensor.rank)), tensor)
        elif pos is not None:
            mask = keras_mask(ctx, call.inputs[pos])
        else:
            mask = None
        if mask is not None:
            masks.append((f"{name}_mask", mask))
    if (masks or scores) and rank != 3:
        raise Unsupported(f"masks or returned scores with rank-{rank} inputs")

    q_kernel = ctx.keras_weight("query/kernel")
    k_kernel = ctx.keras_weight("key/kernel")
    v_kernel = ctx.keras_weight("value/kernel")
    o_kernel = ctx.keras_weight("attention_output/kernel")
    q_features, k_features, v_features = q_kernel.shape[0], k_kernel.shape[0], v_kernel.shape[0]
    out_shape = tuple(int(d) for d in o_kernel.shape[2:])
    out_features = int(np.prod(out_shape))
    if len(out_shape) > 1 and scores:
        raise Unsupported(f"output_shape={output_shape!r} with return_attention_scores")
    args = [str(q_features), f"num_heads={heads}", f"key_dim={key_dim}"]
    if value_dim != key_dim:
        args.append(f"value_dim={value_dim}")
    if k_features != v_features:
        args.append(f"kdim={k_features}")
    if v_features != q_features:
        args.append(f"vdim={v_features}")
    if out_features != q_features:
        args.append(f"out_dim={out_features}")
    if not use_bias:
        args.append("bias=False")
    if dropout:
        args.append(f"dropout={dropout!r}")
    if kv_heads != heads:
        args.append(f"num_kv_heads={kv_heads}")
    if gate:
        args.append("gate=True")
    if window is not None:
        args.append(f"sliding_window={int(window)}")
    helper = ctx.helper(
        "KerasMultiHeadAttention",
        value_dim=value_dim != key_dim,
        kdim=k_features != v_features,
        vdim=v_features != q_features,
        out_dim=out_features != q_features,
        dropout=bool(dropout),
        num_kv_heads=kv_heads != heads,
        gate=gate,
        sliding_window=window is not None,
        key=k_pos is not None,
        causal=causal,
        return_scores=scores,
        **{name: True for name, _ in masks},
    )
    attr = ctx.module(f"{helper}({', '.join(args)})")
    for torch_name, keras_name in (
        ("query", "query"),
        ("key", "key"),
        ("value", "value"),
        ("gate", "gate"),
    ):
        if keras_name != "gate" or gate:
            _projection(ctx, torch_name, keras_name, use_bias)
    flat = o_kernel.reshape(heads * value_dim, out_features)
    ctx.weight(
        "output.weight", flat.T, "attention_output/kernel", "reshape(heads*dim, out) + dense_kernel"
    )
    if use_bias:
        ctx.weight(
            "output.bias",
            ctx.keras_weight("attention_output/bias").reshape(-1),
            "attention_output/bias",
            "flatten",
        )

    order = keras_order(rank)
    tensors = [ctx.input(q_pos, order), ctx.input(v_pos, order)]
    if k_pos is not None:
        tensors.append(ctx.input(k_pos, order))
    unflatten = ""
    if rank > 3:  # attention over all the steps axes jointly: one flattened steps axis
        steps = ctx.output_shape(0)[1:-1]
        sizes = f"{tensors[0]}.shape[1:-1]" if None in steps else repr(tuple(int(d) for d in steps))
        unflatten = f".unflatten(1, {sizes})"
        tensors = [f"{t}.flatten(1, -2)" for t in tensors]
    call_args = tensors + [f"{name}={mask}" for name, mask in masks]
    if causal:
        call_args.append("causal=True")
    if scores:
        call_args.append("return_scores=True")
    expr = f"{attr}({', '.join(call_args)}){unflatten}"
    if len(out_shape) > 1:
        expr = f"{expr}.unflatten(-1, {out_shape!r})"
    if scores:
        ctx.outputs(expr, [keras_order(len(ctx.output_shape(0))), keras_order(4)])
    else:
        ctx.output(expr, keras_order(len(ctx.output_shape(0))))


@register("MultiHeadAttention", layout=KERAS)
def multi_head_attention(call, ctx: CallContext) -> None:
    _attention_layer(call, ctx, grouped=False)


@register("GroupedQueryAttention", "GroupQueryAttention", layout=KERAS)
def group_query_attention(call, ctx: CallContext) -> None:
    _attention_layer(call, ctx, grouped=True)


# -- Attention / AdditiveAttention --------------------------------------------------------
@register("Attention", "AdditiveAttention", layout=KERAS)
def attention(call, ctx: CallContext) -> None:
    cfg = ctx.config
    additive = call.layer.class_name == "AdditiveAttention"
    use_scale = bool(cfg.get("use_scale", not additive))
    mode = "additive" if additive else cfg.get("score_mode", "dot")
    if mode not in ("dot", "concat", "additive"):
        raise Unsupported(f"score_mode={mode!r}")
    dropout = float(cfg.get("dropout") or 0.0)
    values = bind(call, _ATTENTION_ARGS)
    _training(values, dropout)
    causal = _flag(values, "use_causal_mask")
    scores = _flag(values, "return_attention_scores")
    query_mask, value_mask = _attention_masks(ctx, call)
    positions = [_position(v, "inputs") for v in values["inputs"]]
    if any(p is None for p in positions):
        raise Unsupported("inputs must be tensors")
    ranks = {len(ctx.input_shape(p)) for p in positions}
    if len(ranks) != 1 or min(ranks) < 3:
        raise Unsupported(f"inputs of ranks {sorted(ranks)}")
    rank = ranks.pop()
    dim = int(ctx.input_shape(positions[0])[-1] or 0)
    args = [] if mode == "dot" else [repr(mode)]
    if use_scale:
        args.append("use_scale=True")
        if additive:
            args.append(f"dim={dim}")
    if dropout:
        args.append(f"dropout={dropout!r}")
    helper = ctx.helper(
        "KerasAttention",
        **{mode: True},
        use_scale=use_scale,
        dropout=bool(dropout),
        key=len(positions) > 2,
        query_mask=query_mask is not None,
        value_mask=value_mask is not None,
        causal=causal,
        return_scores=scores,
    )
    attr = ctx.module(f"{helper}({', '.join(args)})")
    if use_scale:
        ctx.weight("scale", ctx.keras_weight("scale"), "scale")
    if mode == "concat":
        ctx.weight(
            "concat_score_weight", ctx.keras_weight("concat_score_weight"), "concat_score_weight"
        )
    call_args = [ctx.input(p, keras_order(rank)) for p in positions]
    if query_mask is not None:
        call_args.append(f"query_mask={query_mask}")
    if value_mask is not None:
        call_args.append(f"value_mask={value_mask}")
    if causal:
        call_args.append("causal=True")
    if scores:
        call_args.append("return_scores=True")
    expr = f"{attr}({', '.join(call_args)})"
    if scores:
        ctx.outputs(expr, [keras_order(rank), keras_order(len(ctx.output_shape(1)))])
    else:
        ctx.output(expr, keras_order(rank))

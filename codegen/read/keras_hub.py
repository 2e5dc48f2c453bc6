"""KerasHub's transformer blocks, rewritten as the graphs of core Keras layers they run.

A ``keras_hub.layers.TransformerEncoder`` is a MultiHeadAttention, two LayerNormalizations,
two Dense layers, dropouts and residual adds, called in an order its config decides
(``normalize_first``). Written as a nested graph of those core layers (with the block's
variables handed to each), the core converters port it exactly, and the structure stage
turns the blocks of a model into one block class (``TransformerEncoder``) like any other
repeated nested model. It works on the Graph alone (neither Keras nor KerasHub is imported);
the Keras reader runs it (the file reader hands files with KerasHub layers to Keras).

A block whose config or call this module does not know is left as it is, with a reason
(``Layer.unsupported``) that the conversion reports.
"""

from __future__ import annotations

from collections.abc import Callable

from codegen.ir.graph import Call, Graph, Layer, Tensor, TensorRef

# Options of TransformerEncoder/TransformerDecoder configs this module reads.
_BLOCK_OPTIONS = {
    "name",
    "trainable",
    "dtype",
    "intermediate_dim",
    "num_heads",
    "dropout",
    "activation",
    "layer_norm_epsilon",
    "kernel_initializer",
    "bias_initializer",
    "normalize_first",
    # TransformerDecoder's saved build shapes (a loading work-around in KerasHub).
    "decoder_sequence_shape",
    "encoder_sequence_shape",
}
# KerasHub functions serialized as activations, by their registered name.
_HUB_ACTIVATIONS = {"keras_hub>gelu_approximate": "gelu_approximate"}
_GLOROT = {
    "module": "keras.initializers",
    "class_name": "GlorotUniform",
    "config": {"seed": None},
    "registered_name": None,
}
_ZEROS = {"module": "keras.initializers", "class_name": "Zeros", "config": {}}
_ONES = {"module": "keras.initializers", "class_name": "Ones", "config": {}}


class Refused(Exception):
    """The block cannot be written as core layers; the text says why."""


class Inline(Graph):
    """An expansion to splice into the calling graph (a stack of blocks, ``ViTEncoder``),
    so that its blocks are blocks of the model itself."""


def expand_blocks(graph: Graph) -> None:
    """Give every KerasHub transformer block of ``graph`` (nested models too) its subgraph;
    splice in the stacks (:class:`Inline`)."""
    for owner in [graph, *(la.subgraph for la in graph.walk_layers() if la.subgraph)]:
        for call in list(owner.calls):
            layer = call.layer
            expand = EXPANDERS.get(layer.class_name)
            if expand is None or layer.subgraph is not None or layer.unsupported:
                continue
            if call is not layer.calls[0]:
                continue  # a shared block: its first call made its subgraph
            if not _alike(layer.calls):
                layer.unsupported = "a shared KerasHub block called with different arguments"
                continue
            try:
                sub = expand(layer, call)
            except Refused as exc:
                layer.unsupported = str(exc)
                continue
            if isinstance(sub, Inline) and len(layer.calls) > 1:
                layer.unsupported = "a shared KerasHub encoder stack (called more than once)"
            elif isinstance(sub, Inline):
                _splice(owner, call, sub)
            else:
                layer.subgraph = sub


def _alike(calls: list[Call]) -> bool:
    """Whether the calls of a shared block can run one subgraph: the same arguments, tensors
    of the same shapes and dtypes in the same places."""

    def signature(call: Call):
        tensors = [(t.shape, t.dtype, t.masked) for t in call.inputs]
        return tensors, sorted(call.kwargs), len(call.args)

    first = signature(calls[0])
    return all(signature(c) == first for c in calls[1:])


def _splice(owner: Graph, call: Call, sub: Graph) -> None:
    """Replace ``call`` in ``owner`` by the calls of ``sub`` (its inputs are the call's)."""
    if len(call.outputs) != 1 or len(sub.outputs) != 1:
        raise AssertionError("internal: an inline expansion has one output")
    given = {id(t): outer for t, outer in zip(sub.inputs, call.inputs)}
    inner = [c for c in sub.calls if c.layer.class_name != "InputLayer"]
    for each in inner:
        each.inputs = [given.get(id(t), t) for t in each.inputs]
    result, original = sub.outputs[0], call.outputs[0]
    producer = result.producer
    if producer is None or producer not in inner:
        raise AssertionError("internal: an inline expansion's output comes from its calls")
    producer.outputs[result.index] = original
    original.producer, original.index = producer, result.index
    at = owner.calls.index(call)
    owner.calls[at : at + 1] = inner


class _Builder:
    """Builds a nested Graph call by call, the way the readers record one."""

    def __init__(self, block: Layer) -> None:
        self.block = block
        self.calls: list[Call] = []
        self.inputs: list[Tensor] = []
        self.input_names: list[str] = []
        self.used: set[str] = set()

    def input(self, name: str, like: Tensor) -> Tensor:
        config = {"batch_shape": like.shape, "dtype": like.dtype, "name": name}
        layer = Layer(name=name, class_name="InputLayer", config=config)
        tensor = Tensor(shape=like.shape, dtype=like.dtype)
        self._record(layer, [], (), {}, [tensor])
        self.inputs.append(tensor)
        self.input_names.append(name)
        return tensor

    def layer(
        self, name: str, class_name: str, config: dict, weights: bool = True, path: str = ""
    ) -> Layer:
        """A core layer; ``weights``: it owns the block's variables under ``path/`` (its
        name by default)."""
        layer = Layer(name=name, class_name=class_name, config={"name": name, **config})
        if weights:
            prefix = f"{path or name}/"
            for key, value in self.block.weights.items():
                if key.startswith(prefix):
                    layer.weights[key[len(prefix) :]] = value
                    layer.trainable[key[len(prefix) :]] = self.block.trainable.get(key, True)
            self.used.update(f"{prefix}{k}" for k in layer.weights)
        return layer

    def op(self, name: str, class_name: str, config: dict | None = None) -> Layer:
        return Layer(
            name=name, class_name=class_name, config={"name": name, **(config or {})}, is_op=True
        )

    def call(self, layer: Layer, inputs: list[Tensor], args=(), kwargs=None, like=None) -> Tensor:
        """``layer`` called with ``args``/``kwargs`` (TensorRef(i) for ``inputs[i]``); its one
        output is shaped ``like`` (a tensor or a shape)."""
        shape, dtype = (like.shape, like.dtype) if isinstance(like, Tensor) else (like, "float32")
        out = Tensor(shape=tuple(shape), dtype=dtype)
        self._record(layer, inputs, tuple(args), dict(kwargs or {}), [out])
        return out

    def _record(self, layer, inputs, args, kwargs, outputs) -> None:
        call = Call(layer=layer, inputs=list(inputs), outputs=outputs, args=args, kwargs=kwargs)
        call.index = len(layer.calls)
        layer.calls.append(call)
        for i, tensor in enumerate(outputs):
            tensor.producer, tensor.index = call, i
        self.calls.append(call)

    def graph(self, output: Tensor, kind: type = Graph) -> Graph:
        left = sorted(set(self.block.weights) - self.used)
        if left:
            raise Refused(f"variables {left} that a KerasHub block of this config does not have")
        return kind(
            name=self.block.name,
            class_name=self.block.class_name,
            inputs=self.inputs,
            outputs=[output],
            calls=self.calls,
            input_names=self.input_names,
            own_class=True,
            rewritten=True,
        )


def _arguments(call: Call, names: tuple[str, ...]) -> dict:
    """The call's arguments by parameter name (positional ones bound in ``names`` order)."""
    values = dict(zip(names, call.args))
    for key, value in call.kwargs.items():
        values[key] = value
    return values


def _inputs(b: _Builder, call: Call, values: dict) -> dict[str, Tensor]:
    """One subgraph input per input of the call, in its order (the nested model is called
    with the call's inputs), named after the argument it is; by argument name."""
    roles = {v.position: k for k, v in values.items() if isinstance(v, TensorRef)}
    if len(roles) != len(call.inputs):
        raise Refused("called with tensors inside nested arguments, or one tensor twice")
    made = [b.input(roles[i], tensor) for i, tensor in enumerate(call.inputs)]
    return {roles[i]: tensor for i, tensor in enumerate(made)}


def _block_config(layer: Layer) -> dict:
    config = layer.config
    unknown = sorted(set(config) - _BLOCK_OPTIONS)
    if unknown:
        raise Refused(f"unsupported option(s) {', '.join(unknown)}")
    return config


def _activation(value):
    """The activation for a core Dense config: a built-in one, or a KerasHub function as the
    name the core converters know it by."""
    if isinstance(value, dict) and value.get("class_name") == "function":
        registered = value.get("config")
        if registered in _HUB_ACTIVATIONS:
            return _HUB_ACTIVATIONS[registered]
        if isinstance(registered, str) and ">" in registered:
            raise Refused(f"activation {registered!r} (not a Keras or known KerasHub function)")
    return value


def _mask(b: _Builder, mask: Tensor | None, name: str) -> Tensor | None:
    """KerasHub's padding mask ``(batch, S)`` as an attention mask ``(batch, 1, S)``."""
    if mask is None:
        return None
    if mask.rank != 2:
        raise Refused(f"a rank-{mask.rank} {name} (expected (batch, sequence))")
    if not (mask.dtype.startswith(("int", "uint")) or mask.dtype == "bool"):
        # KerasHub casts the mask to int32 first: 0.5 would mask, a bool cast would not.
        raise Refused(f"a {mask.dtype} {name} (integer or bool masks only)")
    shape = (mask.shape[0], 1, mask.shape[1])
    index = (slice(None), None, slice(None))  # mask[:, None, :]
    layer = b.op(f"{name}_steps", "GetItem")
    return b.call(layer, [mask], (TensorRef(0), index), like=Tensor(shape, mask.dtype))


def _attention(
    b: _Builder, name: str, cfg: dict, query: Tensor, value: Tensor, mask, causal, **options
):
    hidden = int(query.shape[-1])
    heads = int(cfg["num_heads"])
    key_dim = hidden // heads
    config = {
        "trainable": cfg.get("trainable", True),
        "num_heads": heads,
        "key_dim": key_dim,
        "value_dim": key_dim,
        "dropout": float(options.get("dropout", cfg.get("dropout")) or 0.0),
        "use_bias": bool(options.get("use_bias", True)),
        "output_shape": None,
        "attention_axes": None,
        "kernel_initializer": cfg.get("kernel_initializer", _GLOROT),
        "bias_initializer": cfg.get("bias_initializer", _ZEROS),
    }
    inputs = [query] if value is query else [query, value]
    kwargs = {"query": TensorRef(0), "value": TensorRef(len(inputs) - 1)}
    if mask is not None:
        inputs.append(mask)
        kwargs["attention_mask"] = TensorRef(len(inputs) - 1)
    if causal:
        kwargs["use_causal_mask"] = True
    return b.call(b.layer(name, "MultiHeadAttention", config), inputs, (), kwargs, like=query)


def _norm(b: _Builder, name: str, cfg: dict, x: Tensor, path: str = "") -> Tensor:
    config = {
        "trainable": cfg.get("trainable", True),
        "axis": [-1],
        "epsilon": float(cfg.get("layer_norm_epsilon", 1e-5)),
        "center": True,
        "scale": True,
        "rms_scaling": False,
        "beta_initializer": _ZEROS,
        "gamma_initializer": _ONES,
    }
    layer = b.layer(name, "LayerNormalization", config, path=path)
    return b.call(layer, [x], (TensorRef(0),), like=x)


def _dense(
    b: _Builder, name: str, cfg: dict, x: Tensor, units: int, activation, bias=True, path=""
) -> Tensor:
    config = {
        "trainable": cfg.get("trainable", True),
        "units": units,
        "activation": activation,
        "use_bias": bool(bias),
        "kernel_initializer": cfg.get("kernel_initializer", _GLOROT),
        "bias_initializer": cfg.get("bias_initializer", _ZEROS),
    }
    shape = (*x.shape[:-1], units)
    layer = b.layer(name, "Dense", config, path=path)
    return b.call(layer, [x], (TensorRef(0),), like=shape)


def _dropout(b: _Builder, name: str, cfg: dict, x: Tensor, rate=None) -> Tensor:
    rate = float((cfg.get("dropout") if rate is None else rate) or 0.0)
    config = {"trainable": True, "rate": rate, "seed": None}
    layer = b.layer(name, "Dropout", {**config, "noise_shape": None}, weights=False)
    return b.call(layer, [x], (TensorRef(0),), like=x)


def _add(b: _Builder, name: str, x: Tensor, residual: Tensor) -> Tensor:
    return b.call(b.op(name, "Add"), [x, residual], (TensorRef(0), TensorRef(1)), like=x)


def _residual(b, cfg, x, name_norm, body: Callable[[Tensor], Tensor], name_add) -> Tensor:
    """``x + body(x)`` with the block's LayerNormalization before (pre-norm) or after."""
    first = bool(cfg.get("normalize_first", False))
    h = _norm(b, name_norm, cfg, x) if first else x
    out = _add(b, name_add, body(h), x)
    return out if first else _norm(b, name_norm, cfg, out)


def _feedforward(b: _Builder, cfg: dict, x: Tensor) -> Tensor:
    hidden = int(x.shape[-1])
    activation = _activation(cfg.get("activation", "relu"))

    def body(h):
        h = _dense(
            b, "feedforward_intermediate_dense", cfg, h, int(cfg["intermediate_dim"]), activation
        )
        h = _dense(b, "feedforward_output_dense", cfg, h, hidden, "linear")
        return _dropout(b, "feedforward_dropout", cfg, h)

    return _residual(b, cfg, x, "feedforward_layer_norm", body, "feedforward_add")


def _check_hidden(x: Tensor | None, cfg: dict) -> None:
    if x is None or x.rank != 3 or x.shape[-1] is None:
        raise Refused("its input must be one (batch, sequence, features) tensor")
    if x.masked:
        raise Refused("an input with a Keras mask and no padding_mask (pass the mask explicitly)")
    if int(x.shape[-1]) // int(cfg["num_heads"]) == 0:
        raise Refused("fewer features than heads")


def transformer_encoder(layer: Layer, call: Call) -> Graph:
    """Self-attention and feed-forward, pre- or post-norm; padding_mask (no attention_mask)."""
    cfg = _block_config(layer)
    values = _arguments(
        call, ("inputs", "padding_mask", "attention_mask", "training", "return_attention_scores")
    )
    for option in ("attention_mask", "return_attention_scores"):
        value = values.get(option)
        if value is not None and value is not False:
            raise Refused(f"called with {option} (only padding_mask is supported)")
    b = _Builder(layer)
    given = _inputs(b, call, values)
    x = given.get("inputs")
    _check_hidden(x, cfg)
    mask = _mask(b, given.get("padding_mask"), "padding_mask")

    def attend(h):
        h = _attention(b, "self_attention_layer", cfg, h, h, mask, causal=False)
        return _dropout(b, "self_attention_dropout", cfg, h)

    x = _residual(b, cfg, x, "self_attention_layer_norm", attend, "self_attention_add")
    return b.graph(_feedforward(b, cfg, x))


_DECODER_ARGS = (
    "decoder_sequence",
    "encoder_sequence",
    "decoder_padding_mask",
    "decoder_attention_mask",
    "encoder_padding_mask",
    "encoder_attention_mask",
    "self_attention_cache",
    "self_attention_cache_update_index",
    "cross_attention_cache",
    "cross_attention_cache_update_index",
    "use_causal_mask",
    "training",
)


def transformer_decoder(layer: Layer, call: Call) -> Graph:
    """Causal (or not) self-attention, optional cross-attention; padding masks, no cache."""
    cfg = _block_config(layer)
    values = _arguments(call, _DECODER_ARGS)
    for option in (
        "decoder_attention_mask",
        "encoder_attention_mask",
        "self_attention_cache",
        "cross_attention_cache",
    ):
        if values.get(option) is not None:
            raise Refused(f"called with {option} (padding masks only, no cache)")
    causal = values.get("use_causal_mask", True)
    if not isinstance(causal, bool):
        raise Refused("use_causal_mask given as a tensor")
    b = _Builder(layer)
    given = _inputs(b, call, values)
    x = given.get("decoder_sequence")
    _check_hidden(x, cfg)
    enc = given.get("encoder_sequence")
    self_mask = _mask(b, given.get("decoder_padding_mask"), "decoder_padding_mask")

    def attend(h):
        h = _attention(b, "self_attention", cfg, h, h, self_mask, causal=causal)
        return _dropout(b, "self_attention_dropout", cfg, h)

    x = _residual(b, cfg, x, "self_attention_layer_norm", attend, "self_attention_add")
    if enc is not None:
        cross_mask = _mask(b, given.get("encoder_padding_mask"), "encoder_padding_mask")

        def cross(h):
            h = _attention(b, "cross_attention", cfg, h, enc, cross_mask, causal=False)
            return _dropout(b, "cross_attention_dropout", cfg, h)

        x = _residual(b, cfg, x, "cross_attention_layer_norm", cross, "cross_attention_add")
    elif "encoder_padding_mask" in given:
        raise Refused("an encoder_padding_mask without an encoder_sequence")
    return b.graph(_feedforward(b, cfg, x))


_VIT_OPTIONS = {
    "name",
    "trainable",
    "dtype",
    "num_layers",
    "num_heads",
    "hidden_dim",
    "mlp_dim",
    "use_mha_bias",
    "use_mlp_bias",
    "dropout_rate",
    "attention_dropout",
    "layer_norm_epsilon",
}


def vit_encoder(layer: Layer, call: Call) -> Graph:
    """Dropout, pre-norm blocks (ViTEncoderBlock, exact gelu), a final LayerNormalization."""
    cfg = layer.config
    unknown = sorted(set(cfg) - _VIT_OPTIONS)
    if unknown:
        raise Refused(f"unsupported option(s) {', '.join(unknown)}")
    if call.kwargs or len(call.inputs) != 1:
        raise Refused("called with arguments besides its input")
    b = _Builder(layer)
    x = b.input("inputs", call.inputs[0])
    _check_hidden(x, cfg)
    if int(x.shape[-1]) != int(cfg["hidden_dim"]):
        raise Refused(f"hidden_dim={cfg['hidden_dim']} for inputs of {x.shape[-1]} features")
    norms = {"layer_norm_epsilon": float(cfg.get("layer_norm_epsilon", 1e-6))}
    # Spliced into the calling graph: named after the encoder, to stay unique there.
    x = _dropout(b, f"{layer.name}_dropout", cfg, x, rate=cfg.get("dropout_rate"))
    for i in range(1, int(cfg["num_layers"]) + 1):
        name = f"transformer_block_{i}"
        block = b.layer(name, "ViTEncoderBlock", {"trainable": cfg.get("trainable", True)})
        block.subgraph = _vit_block(block, x, cfg, norms)
        x = b.call(block, [x], (TensorRef(0),), like=x)
    x = _norm(b, f"{layer.name}_ln", norms, x, path="ln")
    return b.graph(x, Inline)


def _vit_block(block: Layer, like: Tensor, cfg: dict, norms: dict) -> Graph:
    b = _Builder(block)
    x = b.input("inputs", like)
    # Names without a trailing counter (the structure stage strips those); Keras's in path.
    h = _norm(b, "attention_norm", norms, x, path="ln_1")
    h = _attention(
        b,
        "mha",
        cfg,
        h,
        h,
        None,
        causal=False,
        dropout=cfg.get("attention_dropout"),
        use_bias=cfg.get("use_mha_bias", True),
    )
    h = _dropout(b, "attention_dropout", cfg, h, rate=cfg.get("dropout_rate"))
    x = _add(b, "attention_add", h, x)
    y = _norm(b, "mlp_norm", norms, x, path="ln_2")
    bias = cfg.get("use_mlp_bias", True)
    rate = cfg.get("dropout_rate")
    y = _dense(b, "mlp_hidden", cfg, y, int(cfg["mlp_dim"]), "gelu", bias, "mlp/dense_1")
    y = _dropout(b, "mlp_hidden_dropout", cfg, y, rate=rate)
    y = _dense(b, "mlp_output", cfg, y, int(x.shape[-1]), "linear", bias, "mlp/dense_2")
    y = _dropout(b, "mlp_output_dropout", cfg, y, rate=rate)
    return b.graph(_add(b, "mlp_add", x, y))


EXPANDERS: dict[str, Callable[[Layer, Call], Graph]] = {
    "TransformerEncoder": transformer_encoder,
    "TransformerDecoder": transformer_decoder,
    "ViTEncoder": vit_encoder,
}

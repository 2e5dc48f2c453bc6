"""Recurrent layers: LSTM, GRU, SimpleRNN, RNN (of one such cell), Bidirectional, ConvLSTM1D/
2D/3D, and Masking (with the ``ops.any`` that makes its mask).

A layer whose equations are those of ``nn.LSTM``/``nn.GRU``/``nn.RNN`` becomes that module
(``batch_first=True``): LSTM and SimpleRNN with their default activations, GRU with
``reset_after=True``, no recurrent dropout. Anything else becomes a step-by-step module
(``LSTMLoop``/``GRULoop``/``SimpleRNNLoop``, templates/helpers) that follows the Keras cell
line by line. Both are called alike and return what the torch module returns, so Keras's
options become the same few words around the call:

- ``go_backwards``: the input (and mask) reversed in time; the outputs stay reversed.
- a mask (``Embedding(mask_zero=True)``, ``Masking``; in Keras 3 an explicit tensor in the
  call): ``rnn_masked`` runs a torch module over each sequence's real steps only, exactly as
  Keras skips masked steps; step-by-step modules take ``mask=``.
- initial states (Keras ``(N, units)`` tensors) become torch's ``(1, N, units)``.
- ``return_sequences``/``return_state``: ``[0]``, ``[0][:, -1]`` or ``rnn_states``.
- ``dropout`` on a torch module: ``rnn_dropout`` (one mask per sequence, as Keras).

Bidirectional of two matching torch-compatible layers is one ``bidirectional=True`` module;
otherwise ``BidirectionalRNN`` holds the two layers. ConvLSTM has no torch counterpart:
``ConvLSTMLoop`` runs it over channels-first frames.

Size: one family whose converters share the option analysis (which torch module, masks,
states, directions); ~600 lines.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from codegen.ir.graph import TensorRef
from codegen.ir.layout import Layout, channels_first, keras_order

from ..context import CallContext, TrackedConfig, Unsupported, unread_options
from ..registry import AGNOSTIC, KERAS, register
from .activations import activation_name, apply_activation
from .ops import reduced_layout

_KINDS = ("LSTM", "GRU", "SimpleRNN")
_N_STATES = {"LSTM": 2, "GRU": 1, "SimpleRNN": 1}
_TORCH = {"LSTM": "nn.LSTM", "GRU": "nn.GRU", "SimpleRNN": "nn.RNN"}
_LOOP = {"LSTM": "LSTMLoop", "GRU": "GRULoop", "SimpleRNN": "SimpleRNNLoop"}


@dataclass
class _Spec:
    """One direction of a recurrent layer, its configuration read and checked."""

    kind: str
    units: int
    use_bias: bool
    activation: str
    recurrent_activation: str
    reset_after: bool
    dropout: float
    recurrent_dropout: float
    go_backwards: bool
    return_sequences: bool
    return_state: bool
    zero_output_for_mask: bool
    prefix: str  # path of the layer's variables inside the Keras layer ("" or "forward_lstm/")

    @property
    def exact_in_torch(self) -> bool:
        """Whether nn.LSTM/nn.GRU/nn.RNN computes exactly this layer (dropout on the input
        is applied outside the module)."""
        if self.recurrent_dropout:
            return False
        if self.kind == "SimpleRNN":
            return self.activation in ("tanh", "relu")
        if self.kind == "GRU" and not self.reset_after:
            return False
        return self.activation == "tanh" and self.recurrent_activation == "sigmoid"


def _rate(cfg, key: str) -> float:
    rate = float(cfg.get(key, 0.0) or 0.0)
    if rate >= 1.0:
        raise Unsupported(f"{key}={rate!r} (Keras skips dropout at rates >= 1)")
    return max(rate, 0.0)


_CELLS = {"LSTMCell": "LSTM", "GRUCell": "GRU", "SimpleRNNCell": "SimpleRNN"}


def _cell_config(cfg: TrackedConfig) -> tuple[str, TrackedConfig]:
    """The kind and config of the one cell of a generic ``RNN`` layer."""
    cell = cfg.get("cell")
    name = cell.get("class_name") if isinstance(cell, dict) else type(cell).__name__
    if not isinstance(cell, dict) or name not in _CELLS:
        raise Unsupported(f"RNN of a {name} cell (LSTMCell, GRUCell, SimpleRNNCell are supported)")
    if cell.get("registered_name") not in (None, name):
        raise Unsupported(f"RNN of a custom {cell['registered_name']} cell")
    return _CELLS[name], TrackedConfig(cell.get("config") or {})


def _read_spec(cfg: TrackedConfig, kind: str, prefix: str = "") -> _Spec:
    """Read and check the options of an LSTM/GRU/SimpleRNN layer (or an ``RNN`` of one cell)."""
    cell = cfg
    if kind == "RNN":
        kind, cell = _cell_config(cfg)
    if cfg.get("stateful"):
        raise Unsupported("stateful=True (states carried over between batches)")
    if cfg.get("time_major"):
        raise Unsupported("time_major=True")
    cfg.get("unroll")  # a loop written out or not: the same results
    cfg.get("use_cudnn")  # an implementation choice: the same results
    cell.get("unit_forget_bias")  # initialization only
    cell.get("implementation")  # Keras 2: how the products are grouped, the same results
    activation = activation_name(cell.get("activation", "tanh"))
    recurrent = "linear"
    if kind != "SimpleRNN":
        recurrent = activation_name(cell.get("recurrent_activation", "sigmoid"))
    spec = _Spec(
        kind=kind,
        units=int(cell["units"]),
        use_bias=bool(cell.get("use_bias", True)),
        activation=activation,
        recurrent_activation=recurrent,
        reset_after=bool(cell.get("reset_after", True)) if kind == "GRU" else True,
        dropout=_rate(cell, "dropout"),
        recurrent_dropout=_rate(cell, "recurrent_dropout"),
        go_backwards=bool(cfg.get("go_backwards", False)),
        return_sequences=bool(cfg.get("return_sequences", False)),
        return_state=bool(cfg.get("return_state", False)),
        zero_output_for_mask=bool(cfg.get("zero_output_for_mask", False)),
        prefix=prefix,
    )
    if cell is not cfg:
        unread = unread_options(cell)
        if unread:
            raise Unsupported("cell option(s) " + ", ".join(unread))
    return spec


# -- the torch module of one direction ---------------------------------------------------
def _activation_arg(ctx: CallContext, name: str) -> str:
    """A callable computing Keras activation ``name``: ``torch.relu``, ``lambda x: ...``."""
    if name == "linear":
        return "nn.Identity()"
    expr = apply_activation(name, "x", keras_order(2), ctx)
    if expr.endswith("(x)") and "(" not in expr[:-3]:
        return expr[:-3]
    return f"lambda x: {expr}"


def _module_expr(ctx: CallContext, spec: _Spec, input_size: int, bidirectional=False) -> str:
    """Constructor of the module of one direction (both, with ``bidirectional``)."""
    args = [str(input_size), str(spec.units)]
    if spec.exact_in_torch:
        if spec.kind == "SimpleRNN" and spec.activation == "relu":
            args.append('nonlinearity="relu"')
        if not spec.use_bias:
            args.append("bias=False")
        args.append("batch_first=True")
        if bidirectional:
            args.append("bidirectional=True")
        return f"{_TORCH[spec.kind]}({', '.join(args)})"
    ctx.helper(
        _LOOP[spec.kind],
        activation=spec.activation != "tanh",
        recurrent_activation=spec.kind != "SimpleRNN" and spec.recurrent_activation != "sigmoid",
        reset_before=spec.kind == "GRU" and not spec.reset_after,
        dropout=bool(spec.dropout),
        recurrent_dropout=bool(spec.recurrent_dropout),
    )
    if not spec.use_bias:
        args.append("bias=False")
    if spec.kind == "GRU" and not spec.reset_after:
        args.append("reset_after=False")
    if spec.activation != "tanh":
        args.append(f"activation={_activation_arg(ctx, spec.activation)}")
    if spec.kind != "SimpleRNN" and spec.recurrent_activation != "sigmoid":
        args.append(f"recurrent_activation={_activation_arg(ctx, spec.recurrent_activation)}")
    if spec.dropout:
        args.append(f"dropout={spec.dropout!r}")
    if spec.recurrent_dropout:
        args.append(f"recurrent_dropout={spec.recurrent_dropout!r}")
    return f"{_LOOP[spec.kind]}({', '.join(args)})"


def _variables(ctx: CallContext, spec: _Spec) -> dict[str, tuple[str, np.ndarray]]:
    """``kernel``/``recurrent_kernel``/``bias`` -> (Keras variable path, value)."""
    found: dict[str, tuple[str, np.ndarray]] = {}
    for key, value in ctx.layer.weights.items():
        if key.startswith(spec.prefix):
            name = key.rsplit("/", 1)[-1]
            if name in found:
                raise Unsupported(f"several variables named {name!r} under {spec.prefix!r}")
            found[name] = (key, value)
    expected = {"kernel", "recurrent_kernel"} | ({"bias"} if spec.use_bias else set())
    if set(found) != expected:
        raise Unsupported(f"variables {sorted(found)} (expected {sorted(expected)})")
    return found


def _gru_to_torch(w: np.ndarray, units: int) -> np.ndarray:
    """Keras GRU gate blocks (z, r, h) along axis 0 -> nn.GRU's (r, z, n)."""
    z, r, h = w[:units], w[units : 2 * units], w[2 * units :]
    return np.concatenate([r, z, h], axis=0)


def _weights(ctx: CallContext, spec: _Spec, module_path: str, suffix: str = "") -> None:
    """State-dict entries of one direction; ``module_path`` is the prefix inside the layer's
    attribute ("" or "forward_layer."), ``suffix`` torch's ``_reverse`` for a backward half."""
    variables = _variables(ctx, spec)
    kernel_key, kernel = variables["kernel"]
    recurrent_key, recurrent = variables["recurrent_kernel"]
    bias_key, bias = variables.get("bias", ("", None))
    u = spec.units

    def put(name: str, value, source: str, how: str) -> None:
        ctx.weight(f"{module_path}{name}", value, source, how)

    if not spec.exact_in_torch:  # a *Loop module: Keras's gate order and biases
        put("weight_ih", kernel.T, kernel_key, "transpose")
        put("weight_hh", recurrent.T, recurrent_key, "transpose")
        if bias is None:
            return
        if spec.kind == "GRU" and spec.reset_after:  # (2, 3u): input and recurrent biases
            put("bias_ih", bias[0], bias_key, "row 0 (input bias)")
            put("bias_hh", bias[1], bias_key, "row 1 (recurrent bias)")
        elif spec.kind == "GRU":  # reset_after=False: one bias, on the input side
            put("bias_ih", bias, bias_key, "identity")
        else:
            put("bias", bias, bias_key, "identity")
        return
    ih, hh = f"weight_ih_l0{suffix}", f"weight_hh_l0{suffix}"
    b_ih, b_hh = f"bias_ih_l0{suffix}", f"bias_hh_l0{suffix}"
    if spec.kind == "GRU":
        # nn.GRU orders its gates (r, z, n), Keras (z, r, h); Keras's bias (2, 3u) holds the
        # input and the recurrent biases, as nn.GRU's bias_ih and bias_hh (reset_after=True).
        how = "transpose, gates (z, r, h) -> (r, z, n)"
        put(ih, _gru_to_torch(kernel.T, u), kernel_key, how)
        put(hh, _gru_to_torch(recurrent.T, u), recurrent_key, how)
        if bias is not None:
            put(b_ih, _gru_to_torch(bias[0], u), bias_key, "row 0, gates (z, r, h) -> (r, z, n)")
            put(b_hh, _gru_to_torch(bias[1], u), bias_key, "row 1, gates (z, r, h) -> (r, z, n)")
        return
    # LSTM gates are (i, f, c, o) in both. Keras has one bias where torch adds two: all of it
    # goes to bias_ih, bias_hh is zeros (only the sum matters).
    put(ih, kernel.T, kernel_key, "transpose")
    put(hh, recurrent.T, recurrent_key, "transpose")
    if bias is not None:
        put(b_ih, bias, bias_key, "identity")
        put(b_hh, np.zeros_like(bias), "", "zeros (Keras has one bias)")


# -- call arguments ------------------------------------------------------------------------
@dataclass
class _Arguments:
    x: int  # input positions
    states: list[int]
    mask: int | None


def _arguments(ctx: CallContext, rank: int = 3) -> _Arguments:
    call = ctx.call
    names = ("sequences", "initial_state", "mask", "training")
    values = dict(zip(names, call.args))
    for key, value in call.kwargs.items():
        if key not in names:
            raise Unsupported(f"call argument {key}={value!r}")
        values[key] = value
    sequences = values.get("sequences")
    if not isinstance(sequences, TensorRef):
        raise Unsupported("sequences that are not one tensor")
    if len(ctx.input_shape(sequences.position)) != rank:
        raise Unsupported(f"a rank-{len(ctx.input_shape(sequences.position))} input")
    states = values.get("initial_state")
    if states is None:
        states = []
    elif isinstance(states, TensorRef):
        states = [states]
    states = list(states)
    if not all(isinstance(s, TensorRef) for s in states):
        raise Unsupported("initial_state that is not made of tensors")
    mask = values.get("mask")
    if isinstance(mask, (list, tuple)):  # Keras uses the first mask of a nested one
        mask = mask[0] if mask else None
    if mask is not None:
        if not isinstance(mask, TensorRef):
            raise Unsupported(f"mask={mask!r}")
        if len(ctx.input_shape(mask.position)) != 2:
            raise Unsupported("a mask that is not (batch, time)")
    # ``training`` is overridden by the model call's own training flag: nothing to port.
    return _Arguments(
        sequences.position, [s.position for s in states], None if mask is None else mask.position
    )


def _state_arg(ctx: CallContext, positions: list[int], kind: str, directions: int) -> str:
    """Keras initial states (N, units) as torch's hx: (D, N, units), a pair for an LSTM."""
    n = _N_STATES[kind]
    if len(positions) != n * directions:
        raise Unsupported(f"{len(positions)} initial states (expected {n * directions})")
    tensors = [ctx.input(p, keras_order(2)) for p in positions]
    if directions == 1:
        parts = [f"{t}.unsqueeze(0)" for t in tensors]
    else:  # Keras: the forward layer's states, then the backward layer's
        parts = [f"torch.stack([{tensors[i]}, {tensors[n + i]}])" for i in range(n)]
    return parts[0] if n == 1 else f"({', '.join(parts)})"


def _run_expr(
    ctx: CallContext,
    attr: str,
    x: str,
    hx: str | None,
    mask: str | None,
    torch_module: bool,
    zero_output: bool,
    module_helper: str = "RNNLoop",
    bidirectional: bool = False,
) -> str:
    """Expression whose value is what the torch module returns: (output, state).

    ``module_helper`` is the helper module called when it is not a torch module (its
    features follow the arguments it gets); ``bidirectional`` says a torch module is.
    """
    state = f", {hx}" if hx else ""
    zero = ", zero_output_for_mask=True" if zero_output and mask else ""
    features = dict(initial_state=bool(hx), zero_output_for_mask=bool(zero))
    if torch_module and mask:
        ctx.helper("rnn_masked", bidirectional=bidirectional, **features)
        return f"rnn_masked({attr}, {x}, {mask}{state}{zero})"
    if not torch_module:
        ctx.helper(module_helper, mask=bool(mask), **features)
    masked = f", mask={mask}" if mask else ""
    return f"{attr}({x}{state}{masked}{zero})"


def _input_dropout(ctx: CallContext, x: str, rate: float) -> str:
    if not rate:
        return x
    ctx.helper("rnn_dropout")
    return f"rnn_dropout({x}, {rate!r}, self.training)"


def _outputs(ctx: CallContext, expr: str, return_sequences: bool, n_outputs: int) -> None:
    seq = keras_order(3) if return_sequences else keras_order(2)
    layouts = [seq] + [keras_order(2)] * (n_outputs - 1)
    if n_outputs == 1:
        ctx.output(expr, seq)
    else:
        ctx.outputs(expr, layouts)


# -- LSTM / GRU / SimpleRNN ----------------------------------------------------------------
@register(*_KINDS, "RNN", layout=KERAS)
def recurrent(call, ctx: CallContext) -> None:
    spec = _read_spec(ctx.config, call.layer.class_name)
    kind = spec.kind
    args = _arguments(ctx)
    input_size = ctx.input_shape(args.x)[-1]
    if input_size is None:
        raise Unsupported("an unknown number of input features")
    attr = ctx.module(_module_expr(ctx, spec, input_size))
    _weights(ctx, spec, "")
    x = ctx.input(args.x, keras_order(3))
    mask = ctx.input(args.mask, keras_order(2)) if args.mask is not None else None
    if spec.go_backwards:  # Keras reads the sequence reversed and returns the outputs so
        x = f"{x}.flip(1)"
        mask = f"{mask}.flip(1)" if mask else None
    torch_module = spec.exact_in_torch
    if torch_module:
        x = _input_dropout(ctx, x, spec.dropout)
    hx = _state_arg(ctx, args.states, kind, 1) if args.states else None
    run = _run_expr(ctx, attr, x, hx, mask, torch_module, spec.zero_output_for_mask)
    if spec.return_state:
        ctx.helper("rnn_states", return_sequences=spec.return_sequences)
        sequences = ", return_sequences=True" if spec.return_sequences else ""
        expr = f"rnn_states({run}{sequences})"
        _outputs(ctx, expr, spec.return_sequences, 1 + _N_STATES[kind])
        return
    _outputs(
        ctx, f"{run}[0]" if spec.return_sequences else f"{run}[0][:, -1]", spec.return_sequences, 1
    )


# -- Bidirectional ---------------------------------------------------------------------------
def _sublayer(ctx: CallContext, key: str) -> tuple[_Spec, TrackedConfig] | None:
    value = ctx.config.get(key)
    if value is None:
        return None
    if not isinstance(value, dict) or value.get("class_name") not in (*_KINDS, "RNN"):
        kind = value.get("class_name") if isinstance(value, dict) else type(value).__name__
        raise Unsupported(f"Bidirectional around {kind} (LSTM, GRU, SimpleRNN, RNN are supported)")
    if value.get("registered_name") not in (None, value["class_name"]):
        raise Unsupported(f"Bidirectional around a custom {value['registered_name']}")
    cfg = TrackedConfig(value.get("config") or {})
    spec = _read_spec(cfg, value["class_name"], prefix=f"{cfg.get('name')}/")
    unread = unread_options(cfg)
    if unread:
        raise Unsupported(f"{key}: unsupported option(s) " + ", ".join(unread))
    return spec, cfg


def _same_layer(a: _Spec, b: _Spec) -> bool:
    keys = ("kind", "units", "use_bias", "activation", "recurrent_activation", "reset_after")
    return all(getattr(a, k) == getattr(b, k) for k in keys)


@register("Bidirectional", layout=KERAS)
def bidirectional(call, ctx: CallContext) -> None:
    merge_mode = ctx.config.get("merge_mode", "concat")
    if merge_mode not in ("concat", "sum", "ave", "mul", None):
        raise Unsupported(f"merge_mode={merge_mode!r}")
    forward, _ = _sublayer(ctx, "layer")
    backward_layer = _sublayer(ctx, "backward_layer")
    if backward_layer is None:  # Keras then makes the backward layer from the same config
        raise Unsupported("Bidirectional without its backward layer's config")
    backward, _ = backward_layer
    if forward.go_backwards or not backward.go_backwards:
        raise Unsupported("a forward layer with go_backwards=True")
    if forward.kind != backward.kind or forward.units != backward.units:
        raise Unsupported(
            f"a backward layer unlike the forward one ({backward.kind}({backward.units}) "
            f"vs {forward.kind}({forward.units}))"
        )
    args = _arguments(ctx)
    input_size = ctx.input_shape(args.x)[-1]
    if input_size is None:
        raise Unsupported("an unknown number of input features")
    # One bidirectional torch module when both directions are the same torch layer; their
    # own input dropout masks need two.
    single = (
        forward.exact_in_torch
        and backward.exact_in_torch
        and _same_layer(forward, backward)
        and not forward.dropout
        and not backward.dropout
    )
    if single:
        attr = ctx.module(_module_expr(ctx, forward, input_size, bidirectional=True))
        _weights(ctx, forward, "")
        _weights(ctx, backward, "", suffix="_reverse")
    else:
        rates = {s.dropout for s in (forward, backward) if s.exact_in_torch}
        if len(rates) > 1:
            raise Unsupported("forward and backward layers with different dropout rates")
        rate = rates.pop() if rates else 0.0
        loops = [not s.exact_in_torch for s in (forward, backward)]
        ctx.helper(
            "BidirectionalRNN",
            torch_layers=not all(loops),
            loop_layers=any(loops),
            dropout=bool(rate),
        )
        if rate:
            ctx.helper("rnn_dropout")
        layers = [_module_expr(ctx, s, input_size) for s in (forward, backward)]
        extra = f", dropout={rate!r}" if rate else ""
        attr = ctx.module(f"BidirectionalRNN({layers[0]}, {layers[1]}{extra})")
        _weights(ctx, forward, "forward_layer.")
        _weights(ctx, backward, "backward_layer.")
    x = ctx.input(args.x, keras_order(3))
    mask = ctx.input(args.mask, keras_order(2)) if args.mask is not None else None
    hx = _state_arg(ctx, args.states, forward.kind, 2) if args.states else None
    # Keras's Bidirectional makes masked steps output zeros when it returns sequences.
    run = _run_expr(
        ctx, attr, x, hx, mask, single, forward.return_sequences, "BidirectionalRNN", single
    )
    if mask and not single and (forward.exact_in_torch or backward.exact_in_torch):
        ctx.helper("rnn_masked")  # called by BidirectionalRNN (with its own features)
    return_sequences, return_state = forward.return_sequences, forward.return_state
    n_merged = 2 if merge_mode is None else 1
    n_outputs = n_merged + (2 * _N_STATES[forward.kind] if return_state else 0)
    if merge_mode == "concat" and return_sequences and not return_state:
        ctx.output(f"{run}[0]", keras_order(3))
        return
    ctx.helper(
        "rnn_bidirectional_outputs",
        **{"separate" if merge_mode is None else merge_mode: True},
        return_sequences=return_sequences,
        return_state=return_state,
    )
    options = "" if merge_mode == "concat" else f", merge_mode={merge_mode!r}"
    options += ", return_sequences=True" if return_sequences else ""
    options += ", return_state=True" if return_state else ""
    expr = f"rnn_bidirectional_outputs({run}{options})"
    seq = keras_order(3) if return_sequences else keras_order(2)
    layouts = [seq] * n_merged + [keras_order(2)] * (n_outputs - n_merged)
    if n_outputs == 1:
        ctx.output(expr, seq)
    else:
        ctx.outputs(expr, layouts)


# -- ConvLSTM1D/2D/3D --------------------------------------------------------------------------
def _tuple(value, n: int) -> tuple[int, ...]:
    return tuple(int(v) for v in value) if isinstance(value, (list, tuple)) else (int(value),) * n


@register("ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D", layout=KERAS)
def conv_lstm(call, ctx: CallContext) -> None:
    cfg = ctx.config
    n = int(call.layer.class_name[-2])
    if cfg.get("stateful"):
        raise Unsupported("stateful=True (states carried over between batches)")
    if (cfg.get("data_format") or "channels_last") != "channels_last":
        # Keras (TensorFlow) runs it on GPUs only: the port could not be checked.
        raise Unsupported(f"data_format={cfg['data_format']!r}")
    cfg.get("unroll"), cfg.get("unit_forget_bias")  # the same results / initialization only
    padding = str(cfg.get("padding", "valid")).lower()
    if padding not in ("valid", "same"):
        raise Unsupported(f"padding={padding!r}")
    kernel_size = _tuple(cfg["kernel_size"], n)
    strides = _tuple(cfg.get("strides", 1), n)
    dilation = _tuple(cfg.get("dilation_rate", 1), n)
    activation = activation_name(cfg.get("activation", "tanh"))
    recurrent_activation = activation_name(cfg.get("recurrent_activation", "sigmoid"))
    use_bias = bool(cfg.get("use_bias", True))
    dropout, recurrent_dropout = _rate(cfg, "dropout"), _rate(cfg, "recurrent_dropout")
    return_sequences = bool(cfg.get("return_sequences", False))
    return_state = bool(cfg.get("return_state", False))
    zero_output = bool(cfg.get("zero_output_for_mask", False))
    go_backwards = bool(cfg.get("go_backwards", False))
    filters = int(cfg["filters"])
    args = _arguments(ctx, rank=n + 3)
    in_channels = ctx.input_shape(args.x)[-1]
    if in_channels is None:
        raise Unsupported("an unknown number of input channels")

    ctx.helper(
        "ConvLSTMLoop",
        stride=strides != (1,) * n,
        padding=padding == "same" and max(strides) == 1,
        pad=padding == "same" and max(strides) > 1,
        dilation=dilation != (1,) * n,
        activation=activation != "tanh",
        recurrent_activation=recurrent_activation != "sigmoid",
        dropout=bool(dropout),
        recurrent_dropout=bool(recurrent_dropout),
    )
    options = [str(in_channels), str(filters), repr(kernel_size)]
    if strides != (1,) * n:
        options.append(f"stride={strides!r}")
    if padding == "same" and max(strides) > 1:
        # TensorFlow pads "same" with strides unevenly (extra after): a fixed F.pad.
        spatial = ctx.input_shape(args.x)[2:-1]
        if any(size is None for size in spatial):
            raise Unsupported("padding='same' with strides on frames of unknown size")
        pads: list[int] = []
        for size, k, s, d in reversed(list(zip(spatial, kernel_size, strides, dilation))):
            total = max((-(-size // s) - 1) * s + (k - 1) * d + 1 - size, 0)
            pads += [total // 2, total - total // 2]
        options.append(f"padding={tuple(pads)!r}")
    elif padding == "same":
        options.append('padding="same"')
    if dilation != (1,) * n:
        options.append(f"dilation={dilation!r}")
    if not use_bias:
        options.append("bias=False")
    if activation != "tanh":
        options.append(f"activation={_activation_arg(ctx, activation)}")
    if recurrent_activation != "sigmoid":
        options.append(f"recurrent_activation={_activation_arg(ctx, recurrent_activation)}")
    if dropout:
        options.append(f"dropout={dropout!r}")
    if recurrent_dropout:
        options.append(f"recurrent_dropout={recurrent_dropout!r}")
    attr = ctx.module(f"ConvLSTMLoop({', '.join(options)})")
    kernel_key = next(
        k for k in ctx.layer.weights if k.endswith("/kernel") and "recurrent" not in k
    )
    recurrent_key = next(k for k in ctx.layer.weights if k.endswith("/recurrent_kernel"))
    how = "conv kernel (k..., in, out) -> (out, in, k...); gates (i, f, c, o) along out"
    for name, key in (("input_conv.weight", kernel_key), ("recurrent_conv.weight", recurrent_key)):
        w = ctx.keras_weight(key)
        ctx.weight(name, w.transpose(n + 1, n, *range(n)), key, how)
    if use_bias:
        bias_key = next(k for k in ctx.layer.weights if k.endswith("/bias"))
        ctx.weight("input_conv.bias", ctx.keras_weight(bias_key), bias_key, "identity")

    # Frames run channels-first: (N, T, *spatial, C) -> (N, T, C, *spatial).
    frames = Layout((0, 1, n + 2, *range(2, n + 2)))
    x = ctx.input(args.x, frames)
    mask = ctx.input(args.mask, keras_order(2)) if args.mask is not None else None
    if go_backwards:
        x = f"{x}.flip(1)"
        mask = f"{mask}.flip(1)" if mask else None
    hx = None
    if args.states:
        if len(args.states) != 2:
            raise Unsupported(f"{len(args.states)} initial states (expected 2)")
        states = [f"{ctx.input(p, channels_first(n + 2))}.unsqueeze(0)" for p in args.states]
        hx = f"({states[0]}, {states[1]})"
    run = _run_expr(ctx, attr, x, hx, mask, False, zero_output)
    output_layout = frames if return_sequences else channels_first(n + 2)
    if return_state:
        ctx.helper("rnn_states", return_sequences=return_sequences)
        sequences = ", return_sequences=True" if return_sequences else ""
        layouts = [output_layout, channels_first(n + 2), channels_first(n + 2)]
        ctx.outputs(f"rnn_states({run}{sequences})", layouts)
        return
    ctx.output(f"{run}[0]" if return_sequences else f"{run}[0][:, -1]", output_layout)


# -- Masking -----------------------------------------------------------------------------------
@register("Masking", layout=AGNOSTIC, elementwise=True)
def masking(call, ctx: CallContext) -> None:
    """Zeros at the steps whose features all equal ``mask_value``. The mask itself is made by
    separate ``ops.not_equal``/``ops.any`` nodes that Keras records in the graph."""
    value = ctx.config.get("mask_value", 0.0)
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise Unsupported(f"mask_value={value!r}")
    if ctx.n_inputs != 1:
        raise Unsupported("Masking called with a mask")
    layout = ctx.input_layout()
    dim = layout.torch_axis(-1)
    dim = -1 if dim == layout.rank - 1 else dim
    x = ctx.input(0)
    ctx.output(f"torch.where(({x} != {float(value)!r}).any(dim={dim}, keepdim=True), {x}, 0.0)")


@register("Any", "All", layout=AGNOSTIC, op=True)
def any_all(call, ctx: CallContext) -> None:
    """``ops.any``/``ops.all`` (Masking's mask: any feature differs from ``mask_value``)."""
    cfg = ctx.config
    fn = f"torch.{call.layer.class_name.lower()}"
    axis, keepdims = cfg.get("axis"), bool(cfg.get("keepdims", False))
    if len(call.args) != 1 or not isinstance(call.args[0], TensorRef) or call.kwargs:
        raise Unsupported("expected one tensor argument")
    layout = ctx.input_layout()
    x = ctx.input(call.args[0].position)
    rank = layout.rank
    axes = list(range(rank)) if axis is None else [axis] if isinstance(axis, int) else list(axis)
    dims = sorted({layout.torch_axis(int(a)) for a in axes})
    keep = ", keepdim=True" if keepdims else ""
    if len(dims) == rank and not keepdims:
        expr = f"{fn}({x})"
    else:
        dim = dims[0] if len(dims) == 1 else tuple(dims)
        if dim == rank - 1:
            dim = -1
        expr = f"{fn}({x}, dim={dim}{keep})"
    ctx.output(expr, layout if keepdims else reduced_layout(layout, set(dims)))

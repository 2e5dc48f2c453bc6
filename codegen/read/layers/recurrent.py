"""Recurrent layers: LSTM, GRU, SimpleRNN, RNN (of those cells), ConvLSTM1D/2D/3D,
Bidirectional, and Masking (whose mask the file reader makes from keras.ops calls)."""

from __future__ import annotations

from ..shapes import Shape, ShapeError, Site, rule
from ..stored_weights import no_variables, variables_rule
from ._shape_helpers import channels_last, conv_length, ints, same_shape_keep_dtype
from ._variable_helpers import nested, own, with_bias

_CONV_LSTM = ("ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D")
# Layers that run a recurrence over the time axis (a sequence output keeps the input's mask).
RNN_LAYERS = ("LSTM", "GRU", "SimpleRNN", "RNN", *_CONV_LSTM)

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


@rule(*_CONV_LSTM)
def _conv_lstm(site: Site):
    cfg = site.config
    x = site.x
    last = channels_last(cfg)
    n = len(x) - 3
    spatial = list(range(2, 2 + n)) if last else list(range(3, 3 + n))
    kernel = ints(cfg["kernel_size"], n)
    strides = ints(cfg.get("strides", 1), n)
    dilation = ints(cfg.get("dilation_rate", 1) or 1, n)
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


rule("Masking")(same_shape_keep_dtype)


# -- stored variables ---------------------------------------------------------------------------
_CELLS = {"LSTM": "lstm_cell", "GRU": "gru_cell", "SimpleRNN": "simple_rnn_cell"}


@variables_rule(*_CELLS)
def _rnn_variables(class_name: str, c: dict):
    return own(with_bias(["kernel", "recurrent_kernel"], c), "cell/", f"{_CELLS[class_name]}/")


@variables_rule("RNN")
def _generic_rnn_variables(class_name: str, c: dict):
    cell = c.get("cell")
    if not isinstance(cell, dict) or not isinstance(cell.get("config"), dict):
        return None
    cell_config = cell["config"]
    names = with_bias(["kernel", "recurrent_kernel"], cell_config)
    return own(names, "cell/", f"{cell_config.get('name')}/")


@variables_rule(*_CONV_LSTM)
def _conv_lstm_variables(class_name: str, c: dict):
    return own(with_bias(["kernel", "recurrent_kernel"], c), "cell/", "conv_lstm_cell/")


@variables_rule("Bidirectional")
def _bidirectional_variables(class_name: str, c: dict):
    found = []
    for key, attr in (("layer", "forward_layer"), ("backward_layer", "backward_layer")):
        inner = nested(c.get(key), attr)
        if inner is None:
            return None
        found += inner
    return found


no_variables("Masking")

# -- masks and training -------------------------------------------------------------------------
MASK_ARGUMENT = frozenset({*RNN_LAYERS, "Bidirectional"})
TRAINING_DEFAULTS = {name: False for name in RNN_LAYERS}

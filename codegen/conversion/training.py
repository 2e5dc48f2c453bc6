"""What Keras does with a variable in training, recorded beside its state_dict entry.

A layer's config names, per variable, an initializer, a regularizer and a constraint
(``kernel_initializer``, ``recurrent_regularizer``, ``gamma_constraint``...), and the layer
may be frozen (``trainable=False``). The renderer turns these facts into
``requires_grad_(False)`` lines, ``regularization_loss()``, ``apply_constraints()`` and
``reset_parameters()``; here they are only collected, with what the renderer needs to
write them in torch's terms: the Keras shape (fans), and for a norm constraint the torch
dimensions that hold the Keras axes.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# The config prefix of each variable's options (``kernel`` -> ``kernel_regularizer``).
_OPTION_PREFIX = {
    "kernel": "kernel",
    "recurrent_kernel": "recurrent",
    "bias": "bias",
    "depthwise_kernel": "depthwise",
    "pointwise_kernel": "pointwise",
    "embeddings": "embeddings",
    "gamma": "gamma",
    "beta": "beta",
    "alpha": "alpha",
    "moving_mean": "moving_mean",
    "moving_variance": "moving_variance",
}


@dataclass
class TrainingFacts:
    """Keras's training set-up of the variable behind one state_dict entry."""

    frozen: bool = False  # the layer (or a model around it) has trainable=False
    frozen_by: str = ""  # the Keras layer or model whose trainable=False froze it
    regularizer: Any = None  # a Keras config: {"class_name": "L2", "config": {...}} or "l2"
    constraint: Any = None
    initializer: Any = None
    unit_forget_bias: bool = False  # an LSTM bias: ones on the forget gate
    keras_shape: tuple[int, ...] = ()
    # Keras axes counted as (fan_in, fan_out) where the layer tells them (EinsumDense and the
    # attention layers built from it), instead of compute_fans()'s convolution guess.
    fan_axes: tuple[tuple[int, ...], tuple[int, ...]] | None = None
    whole: bool = True  # the entry holds the whole Keras variable (not a row or a part)
    # For each set of Keras axes a norm constraint reduces over: the torch dims that group
    # the same elements (None where no dims do, e.g. a kernel split in parts).
    norm_dims: dict[tuple[int, ...], tuple[int, ...] | None] = field(default_factory=dict)


def layer_config_for(config: dict, variable: str) -> tuple[dict, str]:
    """The config holding ``variable``'s options, and the variable's own name.

    ``lstm_cell/kernel`` is an LSTM's ``kernel``; a wrapper (Bidirectional,
    TimeDistributed) keeps its layer's options in ``layer`` / ``backward_layer``.
    """
    parts = variable.split("/")
    inner = config
    if "layer" in config and isinstance(config.get("layer"), dict):
        wrapped = "backward_layer" if parts[0].startswith("backward") else "layer"
        inner = (config.get(wrapped) or config["layer"]).get("config", {})
    return inner, parts[-1]


_ATTENTION_INPUT_PROJECTIONS = {"query", "key", "value", "gate"}


def einsum_fan_axes(
    config: dict, variable: str, ndim: int
) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
    """Keras 3's EinsumDense gives its VarianceScaling initializer the kernel axes the
    equation reads from the input and writes to the output: an EinsumDense's own equation,
    and for (GroupQuery)MultiHeadAttention's projections (``bqm,muh->bquh``: the model width
    in; ``bquh,uhm->bqm``: the width out)."""
    if isinstance(config.get("equation"), str):
        return _axes_from_equation(config["equation"], ndim)
    if not ({"num_heads", "num_query_heads"} & set(config)):
        return None
    projection = variable.split("/")[-2] if "/" in variable else ""
    if projection in _ATTENTION_INPUT_PROJECTIONS:
        return (0,), tuple(range(1, ndim))
    if projection in ("attention_output", "output"):
        return tuple(range(ndim - 1)), (ndim - 1,)
    return None


def _axes_from_equation(equation: str, ndim: int) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
    """A kernel axis whose letter the output has is an output axis, else an input axis (as
    Keras's ``_analyze_einsum_string`` decides)."""
    match = re.fullmatch(r"\s*([a-zA-Z.]+)\s*,\s*([a-zA-Z]+)\s*->\s*([a-zA-Z.]+)\s*", equation)
    if not match or len(match.group(2)) != ndim:
        return None
    _, kernel, output = match.groups()
    outputs = tuple(i for i, c in enumerate(kernel) if c in output)
    inputs = tuple(i for i, c in enumerate(kernel) if c not in output)
    return inputs, outputs


_REGULARIZER_DEFAULTS = {"l1": (0.01, 0.0), "l2": (0.0, 0.01), "l1_l2": (0.01, 0.01)}


def l1_l2(option: Any) -> tuple[float, float] | None:
    """Keras's (l1, l2) factors of an L1/L2/L1L2 regularizer (or its string name), None for
    any other regularizer or a factor that is not a finite number."""
    name, cfg = option_name(option), option_config(option)
    if isinstance(option, str) and name.lower() in _REGULARIZER_DEFAULTS:
        factors = _REGULARIZER_DEFAULTS[name.lower()]
    elif name == "L1":
        factors = (float(cfg.get("l1", 0.01)), 0.0)
    elif name == "L2":
        factors = (0.0, float(cfg.get("l2", 0.01)))
    elif name == "L1L2":
        factors = (float(cfg.get("l1", 0.0)), float(cfg.get("l2", 0.0)))
    else:
        return None
    return factors if all(math.isfinite(f) for f in factors) else None


def facts_for(
    config: dict, variable: str, keras_array, torch_array, frozen_by: str
) -> TrainingFacts:
    inner, name = layer_config_for(config, variable)
    prefix = _OPTION_PREFIX.get(name)
    if name == "kernel" and "kernel_initializer" not in inner and "depthwise_initializer" in inner:
        prefix = "depthwise"  # Keras 3's DepthwiseConv kernel
    keras_array = np.asarray(keras_array)
    torch_array = np.asarray(torch_array)
    facts = TrainingFacts(
        frozen=bool(frozen_by),
        frozen_by=frozen_by,
        keras_shape=tuple(int(d) for d in keras_array.shape),
        whole=keras_array.size == torch_array.size,
    )
    if prefix is None:
        return facts
    facts.regularizer = inner.get(f"{prefix}_regularizer")
    facts.constraint = inner.get(f"{prefix}_constraint")
    facts.initializer = inner.get(f"{prefix}_initializer")
    facts.unit_forget_bias = name == "bias" and bool(inner.get("unit_forget_bias", False))
    if name == "kernel" and keras_array.ndim >= 2:
        facts.fan_axes = einsum_fan_axes(inner, variable, keras_array.ndim)
    axes = norm_axes(facts.constraint, keras_array.ndim)
    if axes is not None:
        facts.norm_dims[axes] = (
            matching_dims(keras_array, torch_array, axes) if facts.whole else None
        )
    return facts


def option_name(option: Any) -> str:
    """``"L2"`` for ``{"class_name": "L2", ...}`` and for the string ``"l2"``."""
    if isinstance(option, str):
        return option
    if isinstance(option, dict):
        return str(option.get("class_name", ""))
    return ""


def option_config(option: Any) -> dict:
    if isinstance(option, dict) and isinstance(option.get("config"), dict):
        return option["config"]
    return {}


_NORM_CONSTRAINTS = {"maxnorm", "max_norm", "unitnorm", "unit_norm", "minmaxnorm", "min_max_norm"}


def norm_axes(constraint: Any, ndim: int) -> tuple[int, ...] | None:
    """The Keras axes a norm constraint reduces over (default 0), made non-negative."""
    if option_name(constraint).lower() not in _NORM_CONSTRAINTS or ndim == 0:
        return None
    axis = option_config(constraint).get("axis", 0)
    axis = list(axis) if isinstance(axis, (list, tuple)) else [axis]
    if not all(isinstance(a, int) and -ndim <= a < ndim for a in axis):
        return None
    return tuple(sorted({a % ndim for a in axis}))


def matching_dims(keras_array, torch_array, axes: tuple[int, ...]) -> tuple[int, ...] | None:
    """Torch dims whose groups hold the same elements as the groups of Keras ``axes``.

    The entry may be the Keras variable transposed, reshaped or with its rows reordered
    (a Flatten before a Dense, GRU gates): the grouping matches when the group sums of
    squares agree as multisets. Candidate dims are tried with the same reduced size first.
    """
    keras_norms = np.sort(np.square(keras_array.astype(np.float64)).sum(axis=axes).ravel())
    reduced = int(np.prod([keras_array.shape[a] for a in axes]))
    torch_sq = np.square(torch_array.astype(np.float64))
    for count in range(1, torch_array.ndim + 1):
        for dims in itertools.combinations(range(torch_array.ndim), count):
            if int(np.prod([torch_array.shape[d] for d in dims])) != reduced:
                continue
            torch_norms = np.sort(torch_sq.sum(axis=dims).ravel())
            if torch_norms.shape == keras_norms.shape and np.allclose(
                torch_norms, keras_norms, rtol=1e-6, atol=0
            ):
                return dims
    return None

"""The intermediate form every reader produces and every converter consumes.

A :class:`Graph` is a Keras model reduced to plain data: layers (class name, config, named
weights as numpy arrays, nested graph for nested models), calls of those layers (a layer
called twice is one :class:`Layer` with two :class:`Call` objects) and the tensors between
them, with Keras shapes. Converters never learn where a model came from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(eq=False)
class Tensor:
    """A value flowing between calls, described in Keras's own axis order."""

    shape: tuple[int | None, ...]
    dtype: str = "float32"
    producer: Call | None = None
    index: int = 0  # position among the producer's outputs
    masked: bool = False  # Keras attached a mask (Embedding(mask_zero=True), Masking, ...)

    @property
    def rank(self) -> int:
        return len(self.shape)


@dataclass(eq=False)
class Layer:
    """One Keras layer or operation; it may be called several times."""

    name: str
    class_name: str
    config: dict[str, Any]
    # Variables keyed by their path inside the layer ("kernel", "query/kernel", ...).
    weights: dict[str, np.ndarray] = field(default_factory=dict)
    trainable: dict[str, bool] = field(default_factory=dict)
    subgraph: Graph | None = None  # for a nested Sequential/Functional model
    is_op: bool = False  # a keras.ops call recorded in a functional graph
    config_error: str | None = None  # get_config() failed: the layer cannot be ported
    # Why no converter can port it, when a reader knows better than "not supported" (a
    # TensorFlow function without a keras.ops equivalent, a Lambda's Python code).
    unsupported: str = ""
    # (name, class) of the Keras layer it was translated from, when not its own (an
    # operation of a Lambda's code); comments name that layer.
    origin: tuple[str, str] | None = None
    calls: list[Call] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return f"op {self.class_name}" if self.is_op else self.class_name


@dataclass(eq=False)
class Call:
    """One call of a layer: its input tensors (flattened, in argument order) and outputs."""

    layer: Layer
    inputs: list[Tensor]
    outputs: list[Tensor]
    # Arguments as Keras recorded them, with tensors replaced by ``TensorRef``; constants inline.
    args: tuple = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    index: int = 0  # which call of the layer this is


@dataclass(frozen=True)
class TensorRef:
    """Stands for the i-th input tensor of a call inside recorded call arguments."""

    position: int


@dataclass(eq=False)
class Graph:
    """A model: its calls in topological order, its inputs and outputs."""

    name: str
    class_name: str  # "Functional", "Sequential", or a keras.Model subclass built functionally
    inputs: list[Tensor]
    outputs: list[Tensor]
    calls: list[Call]
    input_names: list[str]
    # A model called with / returning a flat dict: its keys, one per input/output, in the order
    # of ``inputs``/``outputs`` (Keras's flattened order: sorted keys). None for lists.
    input_keys: list[str] | None = None
    output_keys: list[str] | None = None
    # A nested graph whose class is named after ``class_name`` (a KerasHub block written as
    # core layers: ``TransformerEncoder``); a top-level subclass always is.
    own_class: bool = False
    # A KerasHub block the reader rewrote as core layers: Keras has no model inside it to
    # compare layer by layer.
    rewritten: bool = False
    # A block made inside a block by structure recovery (a squeeze-excite): it takes its
    # inputs in the layouts its caller holds them (no transposes at its boundary).
    caller_layouts: bool = False
    # Short attribute names for layers of this graph (id(layer) -> name), set by structure
    # recovery for block classes; comments and the weight manifest keep the Keras names.
    labels: dict[int, str] = field(default_factory=dict)

    @property
    def layers(self) -> list[Layer]:
        seen: dict[int, Layer] = {}
        for call in self.calls:
            seen.setdefault(id(call.layer), call.layer)
        return list(seen.values())

    def consumers(self) -> dict[int, list[Call]]:
        """Map id(tensor) -> calls that read it (a call reading it twice appears once)."""
        users: dict[int, list[Call]] = {}
        for call in self.calls:
            for tensor in {id(t): t for t in call.inputs}.values():
                users.setdefault(id(tensor), []).append(call)
        return users

    def walk_layers(self):
        """Every layer of this graph and of nested graphs, depth first."""
        for layer in self.layers:
            yield layer
            if layer.subgraph is not None:
                yield from layer.subgraph.walk_layers()

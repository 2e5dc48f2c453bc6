"""What a converter sees of one call (:class:`CallContext`) and how it emits code for it.

The converter contract: a converter ``function(call, ctx)`` reads the layer's config through
``ctx.config`` (every option it does not read is reported as unsupported), asks for inputs
in the layout it needs (``ctx.input(i, layout)``), declares modules and weights
(``ctx.module``, ``ctx.weight``), and sets each output with its layout (``ctx.output``).
Questions about the graph around the call go through ``ctx`` too (``consumers``,
``calls_of_layer``, ``converter_of``...), never through the engine's internals.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from codegen.errors import ConversionError
from codegen.ir.graph import Call, Graph, Layer, Tensor
from codegen.ir.layout import Layout, permute_between

from .arrays import c_order
from .model import Options, Statement, WeightEntry, shape_text
from .registry import Converter
from .training import facts_for, l1_l2


class Unsupported(Exception):
    """Raised by a converter for a configuration it cannot port exactly."""


class TrackedConfig(dict):
    """A layer config that remembers which keys a converter looked at."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.read: set[str] = set()

    def __getitem__(self, key):
        self.read.add(key)
        return super().__getitem__(key)

    def get(self, key, default=None):
        self.read.add(key)
        return super().get(key, default)


# Config keys that do not change what a trained model computes.
_INERT_KEYS = {"name", "trainable", "dtype", "autocast", "seed", "batch_input_shape", "input_dim"}
_INERT_SUFFIXES = ("_initializer", "_regularizer", "_constraint")


def unread_options(config: TrackedConfig) -> list[str]:
    unread = []
    for key, value in config.items():
        if key in config.read or key in _INERT_KEYS or key.endswith(_INERT_SUFFIXES):
            continue
        if (
            value is None
            or value is False
            or (isinstance(value, (list, dict, tuple)) and not value)
        ):
            continue
        unread.append(f"{key}={value!r}")
    return unread


class Skipped(Exception):
    """A call not converted because a model it runs could not be converted (already reported)."""


class CallContext:
    """What a converter sees of one call, and how it emits code for it.

    ``builder`` is the engine's class builder; converters never touch it: everything they
    may ask or do is a method here.
    """

    def __init__(self, builder, call: Call) -> None:
        self._builder = builder
        self.call = call
        self.layer: Layer = call.layer
        self.config = TrackedConfig(call.layer.config)
        self.pending_outputs: dict[int, tuple[str, Layout]] = {}
        self.expr: str | None = None
        self.last_expr = ""
        self.attr: str | None = None
        self._reads: list[Tensor] = []
        self._first_call = id(call.layer) not in builder.called_layers
        builder.called_layers.add(id(call.layer))

    # -- inputs -------------------------------------------------------------------------
    @property
    def n_inputs(self) -> int:
        return len(self.call.inputs)

    def input_layout(self, i: int = 0) -> Layout:
        return self._builder.layouts[id(self.call.inputs[i])]

    def input_shape(self, i: int = 0) -> tuple:
        return self.call.inputs[i].shape

    def output_shape(self, i: int = 0) -> tuple:
        return self.call.outputs[i].shape

    def input(self, i: int = 0, layout: Layout | None = None) -> str:
        """Expression for input ``i``, permuted into ``layout`` when given and different."""
        return self.value(self.call.inputs[i], layout)

    def value(self, tensor: Tensor, layout: Layout | None = None) -> str:
        """Like :meth:`input`, for any tensor computed earlier in this class.

        For values a Keras call uses without recording them as inputs, such as the source of
        an implicit Keras mask (the token ids of an ``Embedding(mask_zero=True)``).
        """
        if id(tensor) not in self._builder.layouts:
            raise Unsupported("reads a value that was not converted")
        self._reads.append(tensor)
        expr = self._builder.ref(tensor)
        current = self._builder.layouts[id(tensor)]
        if layout is not None and current != layout:
            if current.feature_order is not None or layout.feature_order is not None:
                raise ConversionError("internal: cannot permute a reordered feature axis")
            expr = f"{expr}.permute{permute_between(current, layout)}"
        self.last_expr = expr
        return expr

    # -- the graph around the call ------------------------------------------------------
    @property
    def graph(self) -> Graph:
        """The graph of the class being generated (read only)."""
        return self._builder.graph

    def consumers(self, tensor: Tensor) -> list[Call]:
        """The calls of this class's graph that read ``tensor``."""
        return self._builder.graph.consumers().get(id(tensor), [])

    def is_model_output(self, tensor: Tensor) -> bool:
        """Whether ``tensor`` is returned by the class being generated."""
        return any(t is tensor for t in self._builder.graph.outputs)

    def calls_of_layer(self) -> list[Call]:
        """Every call of this call's layer in this class (a shared layer has several)."""
        return [c for c in self._builder.graph.calls if c.layer is self.layer]

    def converter_of(self, layer: Layer) -> Converter | None:
        """The converter this conversion uses for another layer (built-in or a plugin's)."""
        return self._builder.session.registry.lookup(layer.class_name, layer.is_op)

    def wants_channels_first(self, tensor: Tensor) -> bool:
        """Whether the layers that read ``tensor`` would rather have it channels-first."""
        return self._builder.wants_channels_first(tensor)

    # -- declarations and weights -------------------------------------------------------
    @property
    def attr_name(self) -> str:
        if self.attr is None:
            name = self._builder.graph.labels.get(id(self.layer), self.layer.name)
            self.attr = self._builder.attrs.name(name, key=id(self.layer))
        return self.attr

    @property
    def first_call(self) -> bool:
        """True for the first call of this layer in this class (weights are recorded once)."""
        return self._first_call

    def module(self, expr: str) -> str:
        """Declare ``self.<layer name> = expr`` once per layer; returns ``self.<name>``."""
        key = id(self.layer)
        attr = self.attr_name
        previous = self._builder.declared.get(key)
        if previous is not None and previous[1] != expr:
            raise Unsupported(
                "shared layer called on inputs that need different torch modules "
                f"({previous[1]} vs {expr})"
            )
        if previous is None:
            self._builder.declared[key] = (attr, expr)
        return f"self.{attr}"

    def weight(self, name: str, array, source: str, transform: str = "identity") -> None:
        """Record ``<attr>.<name>`` in the state_dict, taken from Keras variable ``source``."""
        if not self.first_call:
            return
        key = f"{self.attr_name}.{name}" if name else self.attr_name
        trainable = self.layer.trainable.get(source, True) if source else False
        array = c_order(array, _torch_dtype(array))
        facts = None
        if source and source in self.layer.weights:
            frozen_by = self.layer.name if self.layer.config.get("trainable", True) is False else ""
            facts = facts_for(
                self.layer.config, source, self.layer.weights[source], array, frozen_by
            )
        self._builder.model.weights.append(
            WeightEntry(key, array, self.layer.name, source, transform, trainable, facts)
        )

    def keras_weight(self, name: str) -> np.ndarray:
        try:
            return self.layer.weights[name]
        except KeyError:
            raise ConversionError(
                f"layer {self.layer.name!r} ({self.layer.class_name}) has no variable {name!r}; "
                f"it has {sorted(self.layer.weights)}"
            ) from None

    def buffer(
        self, hint: str, expr: str, array: np.ndarray | None = None, source: str = ""
    ) -> str:
        """Declare ``self.register_buffer(<attr>, expr)``; returns ``self.<attr>``.

        With ``array``, the buffer is persistent and filled from the state_dict (weight
        transform ``constant``, or ``identity`` from Keras variable ``source``, a
        non-trainable one): values from the file never reach the code.
        """
        builder = self._builder
        key = (id(self.layer), self.call.index, len(builder.model.buffers))
        attr = builder.attrs.name(hint, key=key)
        builder.model.buffers.append((attr, expr))
        if array is not None:
            builder.model.weights.append(
                WeightEntry(
                    attr,
                    np.ascontiguousarray(array),
                    self.layer.name,
                    source,
                    "identity" if source else "constant",
                    False,
                )
            )
        return f"self.{attr}"

    def note(self, text: str) -> None:
        """Add a note to the docstring of the class being generated (once)."""
        model = self._builder.model
        if text not in model.docstring:
            # The class docstring is rendered after a blank line; end with an indented newline
            # so that the closing quotes go on their own line.
            body = model.docstring.rstrip()
            model.docstring = (f"{body}\n\n    {text}" if body else text) + "\n    "

    def nested_class(self, graph: Graph, input_layouts: list[Layout] | None = None):
        """The class generated for a model this layer runs (built once per layer).

        Raises :class:`Skipped` when that model could not be converted (its problems are
        already reported).
        """
        return self._builder.nested_class(self.layer, graph, input_layouts)

    def adopt_weights(self, sub) -> None:
        """Record the weights of a nested class under this layer's attribute."""
        if not self.first_call:
            return
        frozen = self.layer.config.get("trainable", True) is False
        for w in sub.weights:
            facts = w.training
            if frozen and facts is not None:  # a frozen nested model: the outermost says why
                facts = replace(facts, frozen=True, frozen_by=self.layer.name)
            self._builder.model.weights.append(
                replace(w, key=f"{self.attr_name}.{w.key}", training=facts)
            )

    def convert_inner(
        self, conv: Converter, inner: Call, layout: Layout, input_expr: str, variable_prefix: str
    ) -> tuple[str, Layout]:
        """Convert ``inner`` (a wrapped layer's call on a single step) in place: its one input
        is ``input_expr`` in ``layout``. Returns its output expression and layout; its weights
        are recorded with ``variable_prefix`` in front of their Keras variable names."""
        builder = self._builder
        step_in = inner.inputs[0]
        builder.layouts[id(step_in)] = layout
        recorded = len(builder.model.weights)
        try:
            inner_ctx = CallContext(builder, inner)
            conv.function(inner, inner_ctx)
            unread = unread_options(inner_ctx.config)
            if unread:
                raise Unsupported("unsupported option(s) " + ", ".join(unread))
            if inner_ctx.expr is not None or sorted(inner_ctx.pending_outputs) != [0]:
                raise Unsupported("several outputs")
            expr, inner_layout = inner_ctx.pending_outputs[0]
        finally:
            del builder.layouts[id(step_in)]
        for entry in builder.model.weights[recorded:]:
            if entry.keras_variable:
                entry.keras_variable = variable_prefix + entry.keras_variable
        return expr.replace(builder.ref(step_in), input_expr), inner_layout

    def helper(self, name: str, **features: bool) -> str:
        """Emit helper ``name`` into ``model.py``; returns the name to call it by.

        ``features`` (``causal=True``, ...) are the optional code paths this call needs; the
        helper is rendered with those of every call (``conversion/helpers.py`` lists them).
        """
        self._builder.session.use_helper(name, [f for f, needed in features.items() if needed])
        return name

    @property
    def session(self):
        """State every class of this model shares (for the engine's own converters:
        nested models, skeletons)."""
        return self._builder.session

    @property
    def options(self) -> Options:
        return self._builder.session.options

    # -- outputs ------------------------------------------------------------------------
    def output(self, expr: str, layout: Layout | None = None, index: int = 0) -> None:
        if layout is None:
            layout = self.input_layout(0)
        self.pending_outputs[index] = (expr, layout)

    def outputs(self, expr: str, layouts: list[Layout]) -> None:
        """One expression producing a tuple of every output."""
        self.expr = expr
        for i, layout in enumerate(layouts):
            self.pending_outputs[i] = (None, layout)

    def _activity_penalty(self, n_outputs: int) -> None:
        """A layer's ``activity_regularizer``: its output passes an ActivityPenalty module
        (one per call, as Keras adds a loss term per call) that regularization_loss() reads."""
        config = self.layer.config if isinstance(self.layer.config, dict) else {}
        option = config.get("activity_regularizer")
        if not option:
            return
        if n_outputs != 1 or self.expr is None:
            raise Unsupported("activity_regularizer on a layer with several outputs")
        module = activity_penalty_module(option)
        self.helper("ActivityPenalty")
        builder = self._builder
        key = ("activity", id(self.layer), self.call.index)
        attr = builder.attrs.name(f"{self.layer.name}_activity", key=key)
        builder.declared[key] = (attr, module)
        self.expr = f"self.{attr}({self.expr})"

    def finish(self) -> None:
        call, builder = self.call, self._builder
        n = len(call.outputs)
        if sorted(self.pending_outputs) != list(range(n)):
            raise ConversionError(f"internal: converter for {self.layer.class_name} set no output")
        layouts = [self.pending_outputs[i][1] for i in range(n)]
        if self.expr is None:
            if n != 1:
                raise ConversionError("internal: several outputs need ctx.outputs()")
            self.expr = self.pending_outputs[0][0]
        self._activity_penalty(n)
        for tensor, layout in zip(call.outputs, layouts):
            if len(layout.perm) != tensor.rank:
                # The shapes reaching it are not what its converter computed from (the file
                # reader could not know them after an unsupported layer, say): report the
                # layer, never an internal error.
                raise Unsupported(
                    f"its output shape {shape_text(tensor.shape)} is not the rank-{len(layout.perm)}"
                    " result its converter computed; are its input shapes known? (a layer"
                    " before it may not be supported)"
                )
            builder.layouts[id(tensor)] = layout
        builder.model.statements.append(
            Statement(
                expr=self.expr,
                outputs=list(call.outputs),
                comment=builder._comment(call, call.outputs, layouts),
                reads=self._reads,
                op=self.layer.is_op,
                label=builder._label(call),
            )
        )


def activity_penalty_module(option: Any) -> str:
    """``ActivityPenalty(l1=..., l2=...)`` for a Keras L1/L2/L1L2 regularizer."""
    factors = l1_l2(option)
    if factors is None:
        raise Unsupported(f"activity_regularizer={option!r} (only L1, L2 and L1L2 are ported)")
    l1, l2 = factors
    return f"ActivityPenalty(l1={l1!r}, l2={l2!r})"


def _torch_dtype(array) -> Any:
    array = np.asarray(array)
    if array.dtype.kind == "f":
        return np.float32
    return array.dtype

"""Turn a :class:`Graph` into class models: declarations, forward statements and weights.

Each Keras call becomes one forward statement built by its registered converter through a
:class:`CallContext`. Tensors are referred to by placeholders while converting; variable
names are chosen afterwards, once every statement is known, so that a value used only by
the next statement flows through ``x`` and only branching values get their own names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from codegen import progress
from codegen.errors import ConversionError, UnsupportedError
from codegen.ir.graph import Call, Graph, Layer, Tensor
from codegen.ir.layout import Layout, channels_first, keras_order, permute_between
from codegen.ir.naming import (
    Namespace,
    attribute_namespace,
    comment_text,
    local_namespace,
    to_class_name,
)

from . import registry


class Unsupported(Exception):
    """Raised by a converter for a configuration it cannot port exactly."""


@dataclass
class WeightEntry:
    key: str  # state_dict key relative to the class
    array: np.ndarray
    keras_layer: str
    keras_variable: str  # "" for buffers torch needs but Keras has not (num_batches_tracked)
    transform: str
    trainable: bool = True


@dataclass
class Statement:
    expr: str
    outputs: list[Tensor]
    comment: str
    reads: list[Tensor]
    names: list[str] = field(default_factory=list)
    op: bool = False  # made by a keras.ops call (written inline in the Keras source)
    label: str = ""  # "name (Class)" part of the comment


@dataclass
class ClassModel:
    name: str
    keras_name: str
    keras_class: str
    docstring: str
    declarations: list[tuple[str, str]]  # (attribute, constructor expression)
    params: list[str] = field(default_factory=list)
    statements: list[Statement] = field(default_factory=list)
    returns: list[str] = field(default_factory=list)
    weights: list[WeightEntry] = field(default_factory=list)
    # Buffers (constants of keras.ops calls): (attribute, tensor expression and options),
    # written ``self.register_buffer("<attribute>", <expression>)``.
    buffers: list[tuple[str, str]] = field(default_factory=list)
    input_layouts: list[Layout] = field(default_factory=list)
    output_layouts: list[Layout] = field(default_factory=list)
    graph: Graph | None = None
    # For the parity report: the layout of every tensor (by id), and tensors that
    # drop_aliases renamed away (id -> the tensor whose value they share).
    tensor_layouts: dict[int, Layout] = field(default_factory=dict)
    aliases: dict[int, Tensor] = field(default_factory=dict)


@dataclass
class Options:
    channels_first: bool = False  # the forward interface takes/returns channels-first tensors
    # A layer without a converter becomes a skeleton module (codegen/skeleton.py).
    allow_unsupported: bool = False


class Session:
    """State shared by every class generated for one model file."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self.helpers: list[str] = []
        self.classes: list[ClassModel] = []
        self.class_names = Namespace({"F", "nn", "torch", "math"})
        self.problems: list[str] = []
        self.submodels: dict[int, ClassModel] = {}
        self.failed_models: set[int] = set()  # nested models that could not be converted
        self.helper_sources: dict[str, str] = {}  # helpers made for this model (skeletons)
        self.skeletons: dict[int, str] = {}  # id(layer) -> its skeleton class

    def use_helper(self, name: str) -> None:
        from .helpers import DEPENDENCIES

        for dep in DEPENDENCIES.get(name, ()):
            self.use_helper(dep)
        if name not in self.helpers:
            self.helpers.append(name)
            self.class_names.reserve(name)


def convert_graph(graph: Graph, options: Options, class_name: str | None = None) -> Session:
    """Build every class; every problem in the model is reported in one UnsupportedError."""
    session = Session(options)
    builder = ClassBuilder(graph, session, top_level=True, class_name=class_name)
    builder.build()
    if session.problems:
        raise UnsupportedError(session.problems)
    return session


def _missing_text(layer: Layer) -> str:
    if layer.unsupported:
        return layer.unsupported
    return f"{'keras.ops call' if layer.is_op else 'layer'} not supported"


class _Skipped(Exception):
    """A call not converted because a model it runs could not be converted (already reported)."""


def preferred_input_layouts(graph: Graph) -> list[Layout]:
    """Channels-first for inputs whose consumers are spatial layers, Keras order otherwise."""
    users = graph.consumers()
    layouts = []
    for tensor in graph.inputs:
        layouts.append(
            channels_first(tensor.rank)
            if _wants_channels_first(tensor, users)
            else keras_order(tensor.rank)
        )
    return layouts


def _wants_channels_first(tensor: Tensor, users: dict, depth: int = 0) -> bool:
    if tensor.rank < 3 or depth > 50:
        return False
    for call in users.get(id(tensor), []):
        layer = call.layer
        if layer.subgraph is not None:
            sub = layer.subgraph
            position = call.inputs.index(tensor)
            if position < len(sub.inputs) and _wants_channels_first(
                sub.inputs[position], sub.consumers(), depth + 1
            ):
                return True
            continue
        conv = registry.lookup(layer.class_name, layer.is_op)
        if conv is None:
            continue
        if conv.layout == registry.SPATIAL and layer.config.get("data_format") != "channels_first":
            return True
        if conv.layout == registry.AGNOSTIC and any(
            _wants_channels_first(out, users, depth + 1) for out in call.outputs
        ):
            return True
    return False


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


class ClassBuilder:
    def __init__(
        self,
        graph: Graph,
        session: Session,
        top_level: bool,
        class_name: str | None = None,
        input_layouts: list[Layout] | None = None,
    ) -> None:
        self.graph = graph
        self.session = session
        self.top_level = top_level
        self.attrs = attribute_namespace()
        self.layouts: dict[int, Layout] = {}
        self.placeholders: dict[int, Tensor] = {}
        self.declared: dict[int, tuple[str, str]] = {}  # id(layer) -> (attr, expr)
        self.called_layers: set[int] = set()
        self.failed = False
        name = class_name or to_class_name(graph.name)
        self.model = ClassModel(
            name=_unique_class(session, name),
            keras_name=graph.name,
            keras_class=graph.class_name,
            docstring="",
            declarations=[],
            graph=graph,
        )
        internal = input_layouts or preferred_input_layouts(graph)
        self.internal_input_layouts = internal
        if top_level and not session.options.channels_first:
            self.model.input_layouts = [keras_order(t.rank) for t in graph.inputs]
        else:
            self.model.input_layouts = list(internal)

    # -- placeholders -------------------------------------------------------------------
    def ref(self, tensor: Tensor) -> str:
        self.placeholders[id(tensor)] = tensor
        return f"\x00{id(tensor)}\x00"

    def build(self) -> ClassModel:
        from .skeleton import converter_for

        graph = self.graph
        for tensor, layout in zip(graph.inputs, self.model.input_layouts):
            self.layouts[id(tensor)] = layout
        # Values that could not be converted; calls reading them are skipped (after checking
        # that a converter exists) so that one problem does not cause false follow-on ones.
        failed: set[int] = set()
        for index, call in enumerate(graph.calls):
            if self.top_level:
                progress.update("converting", index, len(graph.calls))
            layer = call.layer
            if layer.class_name == "InputLayer":
                self._input_statement(call)
                continue
            if any(id(t) in failed for t in call.inputs):
                self._report_missing(layer)
                failed.update(id(t) for t in call.outputs)
                continue
            ctx = CallContext(self, call)
            try:
                if layer.subgraph is not None:
                    convert_nested(call, ctx)
                else:
                    conv = converter_for(layer, self.session.options, _missing_text(layer))
                    if conv is None:
                        raise Unsupported(_missing_text(layer))
                    if layer.config_error:
                        raise Unsupported(f"its config cannot be read ({layer.config_error})")
                    try:
                        conv.function(call, ctx)
                    except KeyError as exc:  # a config without an option Keras always writes
                        raise Unsupported(f"its config has no {exc.args[0]!r} option") from None
                    except (TypeError, ValueError, ArithmeticError) as exc:  # a bad config value
                        raise Unsupported(
                            f"its converter failed: {type(exc).__name__}: {exc} (an unexpected config value?)"
                        ) from None
                    unread = unread_options(ctx.config)
                    if unread:
                        raise Unsupported("unsupported option(s) " + ", ".join(unread))
                ctx.finish()
            except _Skipped:
                failed.update(id(t) for t in call.outputs)
            except Unsupported as exc:
                self._problem(layer, str(exc))
                failed.update(id(t) for t in call.outputs)
        self.failed = bool(failed)
        if self.failed:
            return self.model
        self._finish()
        self.session.classes.append(self.model)
        return self.model

    def _problem(self, layer: Layer, text: str) -> None:
        problem = f"{layer.name!r} ({comment_text(layer.class_name)}): {text}"
        if problem not in self.session.problems:  # a shared layer is reported once
            self.session.problems.append(problem)

    def _report_missing(self, layer: Layer) -> None:
        """For a call that was skipped: still name it if nothing could ever convert it."""
        for each in [layer, *(layer.subgraph.walk_layers() if layer.subgraph is not None else ())]:
            missing = registry.lookup(each.class_name, each.is_op) is None
            if each.subgraph is None and each.class_name != "InputLayer" and missing:
                self._problem(each, _missing_text(each))

    def _input_statement(self, call: Call) -> None:
        tensor = call.outputs[0]
        position = next(i for i, t in enumerate(self.graph.inputs) if t is tensor)
        interface = self.model.input_layouts[position]
        internal = self.internal_input_layouts[position]
        if interface != internal:
            perm = permute_between(interface, internal)
            stmt = Statement(
                expr=f"{self.ref(tensor)}.permute{perm}",
                outputs=[tensor],
                comment=self._comment(call, [tensor], [internal], "to channels-first"),
                reads=[tensor],
            )
            self.model.statements.append(stmt)
            self.layouts[id(tensor)] = internal

    def _comment(
        self, call: Call, outputs: list[Tensor], layouts: list[Layout], note: str = ""
    ) -> str:
        shapes = ", ".join(
            shape_text(layout.torch_shape(t.shape)) for t, layout in zip(outputs, layouts)
        )
        text = f"{self._label(call)} -> {shapes}"
        return f"{text} {note}".rstrip()

    @staticmethod
    def _label(call: Call) -> str:
        kind = f"ops.{call.layer.class_name}" if call.layer.is_op else call.layer.class_name
        return f"{comment_text(call.layer.name)} ({comment_text(kind)})"  # both from the file

    # -- naming and return ----------------------------------------------------------------
    def _finish(self) -> None:
        graph, model = self.graph, self.model
        locals_ = local_namespace()
        inputs = {id(t): i for i, t in enumerate(graph.inputs)}
        statements, aliases = drop_aliases(model.statements, set(inputs))
        model.tensor_layouts, model.aliases = self.layouts, aliases

        def resolve(tensor: Tensor) -> Tensor:
            return aliases.get(id(tensor), tensor)

        outputs = {id(resolve(t)) for t in graph.outputs}
        model.statements = statements = inline_operations(statements, outputs | set(inputs))
        rebind_at: dict[int, int] = {}  # input tensor -> its permute statement
        reads_at: dict[int, set[int]] = {}
        for i, stmt in enumerate(statements):
            if len(stmt.outputs) == 1 and id(stmt.outputs[0]) in inputs:
                rebind_at[id(stmt.outputs[0])] = i
                continue
            for tensor in stmt.reads:
                reads_at.setdefault(id(tensor), set()).add(i)
        last = len(statements) - 1

        def flows_on(tensor: Tensor, i: int) -> bool:
            """Whether ``tensor`` made at statement ``i`` is needed only by the next line."""
            uses = reads_at.get(id(tensor), set())
            if id(tensor) in outputs:
                return i == last and not uses and len(graph.outputs) == 1
            return uses == {i + 1}

        names: dict[int, str] = {}
        params = []
        for position, tensor in enumerate(graph.inputs):
            at = rebind_at.get(id(tensor), -1)
            if len(graph.inputs) == 1 and flows_on(tensor, at):
                name = "x"
            else:
                name = locals_.name(graph.input_names[position], fallback="inputs")
            names[id(tensor)] = name
            params.append(name)
        for i, stmt in enumerate(statements):
            stmt_names = []
            for k, tensor in enumerate(stmt.outputs):
                if id(tensor) in inputs:
                    stmt_names.append(names[id(tensor)])  # an input re-bound after its permute
                    continue
                if len(stmt.outputs) == 1 and flows_on(tensor, i):
                    name = "x"
                elif (
                    len(stmt.outputs) > 1
                    and id(tensor) not in outputs
                    and not reads_at.get(id(tensor))
                ):
                    name = "_"  # an output of a multi-output call that nothing reads
                else:
                    layer = tensor.producer.layer.name if tensor.producer else "value"
                    suffix = f"_{k}" if len(stmt.outputs) > 1 else ""
                    name = locals_.name(layer + suffix, fallback="value")
                names[id(tensor)] = name
                stmt_names.append(name)
            stmt.names = stmt_names
        pattern = re.compile("\x00(\\d+)\x00")

        def substitute(text: str) -> str:
            return pattern.sub(lambda m: names[int(m.group(1))], text)

        for stmt in statements:
            stmt.expr = substitute(stmt.expr)
        model.params = params
        returns, out_layouts = [], []
        for tensor in graph.outputs:
            layout = self.layouts[id(tensor)]
            target = self._output_target(layout)
            expr = names[id(resolve(tensor))]
            if layout.feature_order is not None:
                raise ConversionError("internal: a reordered feature axis reached a model output")
            if layout != target:
                expr = f"{expr}.permute{permute_between(layout, target)}"
            returns.append(expr)
            out_layouts.append(target)
        model.returns = returns
        model.output_layouts = out_layouts
        model.declarations = [self.declared[k] for k in self.declared]

    def _output_target(self, layout: Layout) -> Layout:
        if not self.top_level:
            return layout
        if self.session.options.channels_first and layout == channels_first(layout.rank):
            return layout
        return keras_order(layout.rank)


# An inlined expression keeps the line short enough to read at a glance.
INLINE_MAX_LENGTH = 72
_PLACEHOLDER = re.compile("\x00(\\d+)\x00")


def drop_aliases(
    statements: list[Statement], input_ids: set[int]
) -> tuple[list[Statement], dict[int, Tensor]]:
    """Drop statements that only rename a value (``x = x``: a transpose the layout absorbed,
    a Flatten of a flat tensor); later reads use the value itself.

    Returns the remaining statements and ``id(renamed tensor) -> tensor``.
    """
    aliases: dict[int, Tensor] = {}
    kept: list[Statement] = []

    def redirect(match: re.Match) -> str:
        key = int(match.group(1))
        return f"\x00{id(aliases[key]) if key in aliases else key}\x00"

    for stmt in statements:
        if aliases:
            stmt.expr = _PLACEHOLDER.sub(redirect, stmt.expr)
            stmt.reads = [aliases.get(id(t), t) for t in stmt.reads]
        bare = _PLACEHOLDER.fullmatch(stmt.expr)
        if bare and len(stmt.outputs) == 1 and id(stmt.outputs[0]) not in input_ids:
            source = next((t for t in stmt.reads if id(t) == int(bare.group(1))), None)
            if source is not None:
                aliases[id(stmt.outputs[0])] = source
                continue
        kept.append(stmt)
    return kept, aliases


def inline_operations(statements: list[Statement], keep: set[int]) -> list[Statement]:
    """Write a keras.ops call inside the statement that uses it, as the Keras source did.

    ``x = x + 3.0; x = F.relu6(x); x = x * 0.1666`` becomes ``x = F.relu6(x + 3.0) * 0.1666``:
    a statement is folded into the next one when it comes from a keras.ops call (or is a
    plain function feeding one), its only value is read exactly once, by that next statement
    only, and must not stay named (``keep``: ids of model inputs and outputs). Python's own
    parser places the parentheses, so the meaning cannot change.
    """
    readers: dict[int, int] = {}
    for stmt in statements:
        for tensor in {id(t): t for t in stmt.reads}.values():
            readers[id(tensor)] = readers.get(id(tensor), 0) + 1
    result: list[Statement] = []
    for stmt in statements:
        previous = result[-1] if result else None
        if previous is not None and _can_inline(previous, stmt, keep, readers):
            merged = _substitute(stmt.expr, previous.outputs[0], previous.expr)
            if merged is not None and len(_PLACEHOLDER.sub("x", merged)) <= INLINE_MAX_LENGTH:
                tensor = previous.outputs[0]
                reads = [t for t in previous.reads] + [t for t in stmt.reads if t is not tensor]
                comment = f"{previous.label}, {stmt.comment}"
                result[-1] = Statement(
                    expr=merged,
                    outputs=stmt.outputs,
                    comment=comment if len(comment) <= 110 else stmt.comment,
                    reads=reads,
                    op=stmt.op,  # a layer call ends the chain: it may not be inlined further
                    label=f"{previous.label}, {stmt.label}",
                )
                continue
        result.append(stmt)
    return result


def _can_inline(producer: Statement, consumer: Statement, keep: set, readers: dict) -> bool:
    if len(producer.outputs) != 1:
        return False
    # A layer's own line stays a line, unless it is a plain function (no submodule) that
    # feeds an operation, as in ``layers.ReLU(6.0)(x + 3.0) * (1.0 / 6.0)``.
    if not producer.op and not (consumer.op and "self." not in producer.expr):
        return False
    tensor = producer.outputs[0]
    if id(tensor) in keep or readers.get(id(tensor), 0) != 1:
        return False
    return consumer.expr.count(f"\x00{id(tensor)}\x00") == 1


def _substitute(expr: str, tensor: Tensor, value: str) -> str | None:
    """``expr`` with the placeholder of ``tensor`` replaced by the expression ``value``."""
    import ast

    def to_names(text: str) -> str:
        return _PLACEHOLDER.sub(lambda m: f"__k2t_{m.group(1)}__", text)

    target = f"__k2t_{id(tensor)}__"
    try:
        tree = ast.parse(to_names(expr), mode="eval")
        replacement = ast.parse(to_names(value), mode="eval").body
    except SyntaxError:
        return None

    class Replace(ast.NodeTransformer):
        def visit_Name(self, node):
            return replacement if node.id == target else node

    merged = ast.unparse(Replace().visit(tree))
    return re.sub(r"__k2t_(\d+)__", lambda m: f"\x00{m.group(1)}\x00", merged)


def _unique_class(session: Session, name: str) -> str:
    """``name`` itself (CamelCase is kept), with a numeric suffix if already taken."""
    import builtins
    import keyword

    candidate, counter = name, 1
    while (
        candidate in session.class_names.taken
        or keyword.iskeyword(candidate)
        or hasattr(builtins, candidate)
    ):
        candidate = f"{name}{counter}"
        counter += 1
    session.class_names.reserve(candidate)
    return candidate


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def shape_text(shape) -> str:
    # Only integers are written: a shape is read from the file and ends up in comments.
    dims = [
        "N" if i == 0 and d is None else (str(int(d)) if _is_int(d) else "?")
        for i, d in enumerate(shape)
    ]
    return "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"


class CallContext:
    """What a converter sees of one call, and how it emits code for it."""

    def __init__(self, builder: ClassBuilder, call: Call) -> None:
        self.builder = builder
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
        return self.builder.layouts[id(self.call.inputs[i])]

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
        if id(tensor) not in self.builder.layouts:
            raise Unsupported("reads a value that was not converted")
        self._reads.append(tensor)
        expr = self.builder.ref(tensor)
        current = self.builder.layouts[id(tensor)]
        if layout is not None and current != layout:
            if current.feature_order is not None or layout.feature_order is not None:
                raise ConversionError("internal: cannot permute a reordered feature axis")
            expr = f"{expr}.permute{permute_between(current, layout)}"
        self.last_expr = expr
        return expr

    # -- declarations and weights -------------------------------------------------------
    @property
    def attr_name(self) -> str:
        if self.attr is None:
            self.attr = self.builder.attrs.name(self.layer.name, key=id(self.layer))
        return self.attr

    @property
    def first_call(self) -> bool:
        """True for the first call of this layer in this class (weights are recorded once)."""
        return self._first_call

    def module(self, expr: str) -> str:
        """Declare ``self.<layer name> = expr`` once per layer; returns ``self.<name>``."""
        key = id(self.layer)
        attr = self.attr_name
        previous = self.builder.declared.get(key)
        if previous is not None and previous[1] != expr:
            raise Unsupported(
                "shared layer called on inputs that need different torch modules "
                f"({previous[1]} vs {expr})"
            )
        if previous is None:
            self.builder.declared[key] = (attr, expr)
        return f"self.{attr}"

    def weight(self, name: str, array, source: str, transform: str = "identity") -> None:
        """Record ``<attr>.<name>`` in the state_dict, taken from Keras variable ``source``."""
        if not self.first_call:
            return
        key = f"{self.attr_name}.{name}" if name else self.attr_name
        trainable = self.layer.trainable.get(source, True) if source else False
        self.builder.model.weights.append(
            WeightEntry(
                key,
                np.asarray(array, dtype=_torch_dtype(array), order="C"),
                self.layer.name,
                source,
                transform,
                trainable,
            )
        )

    def keras_weight(self, name: str) -> np.ndarray:
        try:
            return self.layer.weights[name]
        except KeyError:
            raise ConversionError(
                f"layer {self.layer.name!r} ({self.layer.class_name}) has no variable {name!r}; "
                f"it has {sorted(self.layer.weights)}"
            ) from None

    def helper(self, name: str) -> str:
        self.builder.session.use_helper(name)
        return name

    @property
    def options(self) -> Options:
        return self.builder.session.options

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

    def finish(self) -> None:
        call, builder = self.call, self.builder
        n = len(call.outputs)
        if sorted(self.pending_outputs) != list(range(n)):
            raise ConversionError(f"internal: converter for {self.layer.class_name} set no output")
        layouts = [self.pending_outputs[i][1] for i in range(n)]
        if self.expr is None:
            if n != 1:
                raise ConversionError("internal: several outputs need ctx.outputs()")
            self.expr = self.pending_outputs[0][0]
        for tensor, layout in zip(call.outputs, layouts):
            if len(layout.perm) != tensor.rank:
                raise ConversionError(
                    f"internal: layout {layout.perm} for a rank-{tensor.rank} output of {self.layer.name}"
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


def _torch_dtype(array) -> Any:
    array = np.asarray(array)
    if array.dtype.kind == "f":
        return np.float32
    return array.dtype


def convert_nested(call: Call, ctx: CallContext) -> None:
    """A Sequential/Functional model used as a layer becomes an instance of its own class."""
    builder = ctx.builder
    session = builder.session
    if id(call.layer) in session.failed_models:
        raise _Skipped()
    sub = session.submodels.get(id(call.layer))
    if sub is None:
        child = ClassBuilder(call.layer.subgraph, session, top_level=False)
        sub = child.build()
        if child.failed:  # its problems are already listed
            session.failed_models.add(id(call.layer))
            raise _Skipped()
        session.submodels[id(call.layer)] = sub
    if len(call.inputs) != len(sub.input_layouts):
        raise Unsupported("nested model called with a different number of inputs")
    args = ", ".join(ctx.input(i, layout) for i, layout in enumerate(sub.input_layouts))
    attr = ctx.module(f"{sub.name}()")
    if ctx.first_call:
        for w in sub.weights:
            builder.model.weights.append(
                WeightEntry(
                    f"{ctx.attr_name}.{w.key}",
                    w.array,
                    w.keras_layer,
                    w.keras_variable,
                    w.transform,
                    w.trainable,
                )
            )
    if len(call.outputs) == 1:
        ctx.output(f"{attr}({args})", sub.output_layouts[0])
    else:
        ctx.outputs(f"{attr}({args})", sub.output_layouts)

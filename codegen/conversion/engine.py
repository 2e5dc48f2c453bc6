"""The engine: a :class:`Graph` in, one :class:`ClassModel` per model class out.

Each Keras call becomes one forward statement built by its converter (looked up in the
session's :class:`~codegen.conversion.registry.Registry`) through a
:class:`~codegen.conversion.context.CallContext`. Tensors are referred to by placeholders
while converting; variable names are chosen afterwards, once every statement is known, so
that a value used only by the next statement flows through ``x`` and only branching values
get their own names.
"""

from __future__ import annotations

from codegen import progress
from codegen.errors import ConversionError, UnsupportedError
from codegen.ir.graph import Call, Graph, Layer, Tensor
from codegen.ir.layout import Layout, channels_first, keras_order, permute_between
from codegen.ir.naming import (
    attribute_namespace,
    comment_text,
    local_namespace,
    own_class_name,
    to_class_name,
)

from .context import CallContext, Skipped, Unsupported, unread_options
from .model import ClassModel, Options, Session, Statement, shape_text, unique_class
from .registry import AGNOSTIC, SPATIAL, Registry
from .statements import PLACEHOLDER, drop_aliases, inline_operations, placeholder


def convert_graph(
    graph: Graph,
    options: Options,
    class_name: str | None = None,
    *,
    registry: Registry,
) -> Session:
    """Build every class; every problem in the model is reported in one UnsupportedError.

    ``registry`` holds the converters to use (:func:`codegen.conversion.pipeline.converter_registry`
    assembles built-ins, plugins and skeletons).
    """
    session = Session(options, registry)
    builder = ClassBuilder(graph, session, top_level=True, class_name=class_name)
    builder.build()
    if session.problems:
        raise UnsupportedError(session.problems)
    return session


def _missing_text(layer: Layer) -> str:
    if layer.unsupported:
        return layer.unsupported
    return f"{'keras.ops call' if layer.is_op else 'layer'} not supported"


def preferred_input_layouts(graph: Graph, registry: Registry) -> list[Layout]:
    """Channels-first for inputs whose consumers are spatial layers, Keras order otherwise."""
    users = graph.consumers()
    layouts = []
    for tensor in graph.inputs:
        layouts.append(
            channels_first(tensor.rank)
            if wants_channels_first(tensor, users, registry)
            else keras_order(tensor.rank)
        )
    return layouts


def wants_channels_first(tensor: Tensor, users: dict, registry: Registry, depth: int = 0) -> bool:
    """Whether the layers reading ``tensor`` (through layout-agnostic ones) want channels-first."""
    if tensor.rank < 3 or depth > 50:
        return False
    for call in users.get(id(tensor), []):
        layer = call.layer
        if layer.subgraph is not None:
            sub = layer.subgraph
            position = call.inputs.index(tensor)
            if position < len(sub.inputs) and wants_channels_first(
                sub.inputs[position], sub.consumers(), registry, depth + 1
            ):
                return True
            continue
        conv = registry.lookup(layer.class_name, layer.is_op)
        if conv is None:
            continue
        if conv.layout == SPATIAL and layer.config.get("data_format") != "channels_first":
            return True
        if conv.layout == AGNOSTIC and any(
            wants_channels_first(out, users, registry, depth + 1) for out in call.outputs
        ):
            return True
    return False


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
        own = _own_class(graph) if top_level or graph.own_class else None
        name = class_name or own_class_name(own) or to_class_name(graph.name)
        self.model = ClassModel(
            name=unique_class(session, name),
            keras_name=graph.name,
            keras_class=graph.class_name,
            docstring="",
            declarations=[],
            graph=graph,
        )
        internal = input_layouts or preferred_input_layouts(graph, session.registry)
        self.internal_input_layouts = internal
        if top_level and not session.options.channels_first:
            self.model.input_layouts = [keras_order(t.rank) for t in graph.inputs]
        else:
            self.model.input_layouts = list(internal)

    # -- what CallContext asks -----------------------------------------------------------
    def wants_channels_first(self, tensor: Tensor) -> bool:
        return wants_channels_first(tensor, self.graph.consumers(), self.session.registry)

    def nested_class(
        self, layer: Layer, graph: Graph, input_layouts: list[Layout] | None = None
    ) -> ClassModel:
        """The class of a model ``layer`` runs, built once per layer for the whole session."""
        session = self.session
        if id(layer) in session.failed_models:
            raise Skipped()
        sub = session.submodels.get(id(layer))
        if sub is None:
            label = self.graph.labels.get(id(layer))  # a shorter name chosen for the model
            child = ClassBuilder(
                graph,
                session,
                top_level=False,
                class_name=to_class_name(label) if label else None,
                input_layouts=input_layouts,
            )
            sub = child.build()
            if child.failed:  # its problems are already listed
                session.failed_models.add(id(layer))
                raise Skipped()
            session.submodels[id(layer)] = sub
        return sub

    # -- placeholders -------------------------------------------------------------------
    def ref(self, tensor: Tensor) -> str:
        self.placeholders[id(tensor)] = tensor
        return placeholder(tensor)

    def build(self) -> ClassModel:
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
                    if layer.unsupported:  # the reader found what the nested graph misses
                        raise Unsupported(layer.unsupported)
                    convert_nested(call, ctx)
                else:
                    conv = self.session.registry.converter_for(layer, _missing_text(layer))
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
            except Skipped:
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
            missing = self.session.registry.lookup(each.class_name, each.is_op) is None
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
        name = call.layer.name
        if call.layer.origin is not None:
            name, kind = call.layer.origin
        return f"{comment_text(name)} ({comment_text(kind)})"  # both from the file

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
                keys = graph.input_keys if self.top_level else None
                raw = keys[position] if keys else graph.input_names[position]
                name = locals_.name(raw, fallback="inputs")
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
                    producer = tensor.producer.layer if tensor.producer else None
                    layer = graph.labels.get(id(producer), producer.name) if producer else "value"
                    suffix = f"_{k}" if len(stmt.outputs) > 1 else ""
                    name = locals_.name(layer + suffix, fallback="value")
                names[id(tensor)] = name
                stmt_names.append(name)
            stmt.names = stmt_names

        def substitute(text: str) -> str:
            return PLACEHOLDER.sub(lambda m: names[int(m.group(1))], text)

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
        if self.top_level and _plain_keys(graph.output_keys):
            model.output_keys = list(graph.output_keys)
        model.declarations = [self.declared[k] for k in self.declared]

    def _output_target(self, layout: Layout) -> Layout:
        if not self.top_level:
            return layout
        if self.session.options.channels_first and layout == channels_first(layout.rank):
            return layout
        return keras_order(layout.rank)


# The classes of plain (not subclassed) Keras models: a port is named after the model.
_PLAIN_MODELS = {"Functional", "Sequential", "Model"}


def _own_class(graph: Graph) -> str | None:
    """A keras.Model subclass built functionally (``BertBackbone``) names its port."""
    return None if graph.class_name in _PLAIN_MODELS else graph.class_name


def _plain_keys(keys: list[str] | None) -> bool:
    """Dict keys fit to be written as string literals of a returned dict (identifiers only:
    a key from the file is data, and anything else is returned as a tuple instead)."""
    return bool(keys) and all(k.isidentifier() and k.isascii() for k in keys)


def convert_nested(call: Call, ctx: CallContext) -> None:
    """A Sequential/Functional model used as a layer becomes an instance of its own class."""
    graph = call.layer.subgraph
    layouts = [ctx.input_layout(i) for i in range(ctx.n_inputs)] if graph.caller_layouts else None
    sub = ctx.nested_class(graph, layouts)
    if len(call.inputs) != len(sub.input_layouts):
        raise Unsupported("nested model called with a different number of inputs")
    args = ", ".join(ctx.input(i, layout) for i, layout in enumerate(sub.input_layouts))
    attr = ctx.module(f"{sub.name}()")
    ctx.adopt_weights(sub)
    if len(call.outputs) == 1:
        ctx.output(f"{attr}({args})", sub.output_layouts[0])
    else:
        ctx.outputs(f"{attr}({args})", sub.output_layouts)

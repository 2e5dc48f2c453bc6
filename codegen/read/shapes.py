"""Keras output shapes and dtypes of a layer call, computed from the config alone.

The TensorFlow-free reader needs the shape of every tensor (converters read them) but a model
file records them only partly: Keras 3 configs give the input shapes of each call, legacy
configs only the model's input shapes. Each rule follows the layer's
``compute_output_shape`` in Keras 3.15 (``None`` for unknown sizes, the batch axis first).

This module is the engine: :class:`Site` (one call as a rule sees it), the registries and
:func:`infer`. The rules themselves live with the other facts of their layer family in
:mod:`codegen.read.layers` and register with :func:`rule` (by Keras class name, ``RULES``) or
:func:`op_rule` (keras.ops operations recorded in a functional graph, by operation class name,
``OP_RULES``). A class without a rule raises :class:`ShapeError`, which names it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from codegen.ir.graph import Graph, TensorRef

Shape = tuple


class ShapeError(Exception):
    """No rule, or a rule that cannot be applied to these inputs."""


@dataclass
class Site:
    """One call as a shape rule sees it."""

    class_name: str
    config: dict
    shapes: list[Shape]  # of the call's input tensors, in Call.inputs order
    dtypes: list[str]
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    # Output shapes/dtypes of a nested model called on these inputs (set for models).
    run_subgraph: Callable | None = None

    @property
    def compute_dtype(self) -> str:
        return compute_dtype(self.config.get("dtype"))

    def value(self, position: int, name: str, default=None):
        """Call argument by position or keyword (TensorRef for tensors)."""
        if position < len(self.args):
            return self.args[position]
        return self.kwargs.get(name, default)

    def shape_of(self, value) -> Shape:
        if not isinstance(value, TensorRef):
            raise ShapeError(f"expected a tensor argument, got {value!r}")
        return self.shapes[value.position]

    def dtype_of(self, value) -> str:
        if isinstance(value, TensorRef):
            return self.dtypes[value.position]
        if hasattr(value, "dtype") and hasattr(value, "shape"):  # a numpy constant
            return (
                str(value.dtype) if value.ndim else ("float" if value.dtype.kind == "f" else "int")
            )
        if isinstance(value, bool):
            return "bool"
        if isinstance(value, int):
            return "int"
        return "float"

    def first(self) -> TensorRef:
        """The first tensor argument (the first of a list, for merge layers)."""
        value = self.args[0] if self.args else None
        if isinstance(value, (list, tuple)) and value:
            value = value[0]
        if not isinstance(value, TensorRef):
            if self.shapes:
                return TensorRef(0)
            raise ShapeError("a call without tensor inputs")
        return value

    @property
    def x(self) -> Shape:
        return self.shape_of(self.first())

    @property
    def x_dtype(self) -> str:
        return self.dtype_of(self.first())

    def listed(self) -> list[TensorRef]:
        """Tensors of a list argument (merge layers, ops.concatenate)."""
        value = self.args[0] if self.args else None
        if isinstance(value, (list, tuple)):
            refs = [v for v in value if isinstance(v, TensorRef)]
            if len(refs) == len(value):
                return refs
        raise ShapeError("expected a list of tensors as first argument")


def compute_dtype(policy) -> str:
    """The compute dtype of a Keras dtype policy (string or serialized DTypePolicy)."""
    if policy is None:
        return "float32"
    if isinstance(policy, dict):
        policy = (policy.get("config") or {}).get("name", "float32")
    policy = str(policy)
    if policy.startswith("mixed_"):
        return policy[len("mixed_") :]
    if policy.startswith(("int8_from_", "int4_from_", "float8_from_", "gptq", "awq")):
        return policy.rsplit("_from_", 1)[-1] if "_from_" in policy else "float32"
    return policy


def is_float(dtype: str) -> bool:
    return "float" in dtype


# -- registries ---------------------------------------------------------------------------------
RULES: dict[str, Callable[[Site], list]] = {}
OP_RULES: dict[str, Callable[[Site], list]] = {}


def _add(table: dict, kind: str, names: tuple[str, ...], fn: Callable) -> Callable:
    for name in names:
        if name in table:
            raise ValueError(f"shape rule for {kind} {name} registered twice")
        table[name] = fn
    return fn


def rule(*names: str):
    """Register ``fn(site) -> [(shape, dtype), ...]`` as the rule of these layer classes."""
    return lambda fn: _add(RULES, "layer", names, fn)


def op_rule(*names: str):
    """Register ``fn(site) -> [(shape, dtype), ...]`` as the rule of these keras.ops operations."""
    return lambda fn: _add(OP_RULES, "keras.ops operation", names, fn)


def infer(site: Site, is_op: bool) -> list[tuple[Shape, str]]:
    """Output (shape, dtype) pairs of one call; ShapeError names a class without a rule.

    The rules are those registered so far: importing :mod:`codegen.read.layers` registers
    them all (the file reader does).
    """
    fn = (OP_RULES if is_op else RULES).get(site.class_name)
    if fn is None:
        kind = "keras.ops operation" if is_op else "layer"
        raise ShapeError(f"no shape rule for {kind} {site.class_name}")
    try:
        return fn(site)
    except ShapeError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise ShapeError(f"cannot compute the output shape of {site.class_name}: {exc!r}") from None


def infer_graph(graph: Graph, shapes: list, dtypes: list) -> list:
    """Output (shape, dtype) of a nested model (its Graph) called on tensors of these shapes."""
    known: dict[int, tuple] = {}
    for tensor, shape, dtype in zip(graph.inputs, shapes, dtypes):
        known[id(tensor)] = (tuple(shape), tensor.dtype)
    for call in graph.calls:
        if call.layer.class_name == "InputLayer":
            continue
        if not all(id(t) in known for t in call.inputs):
            raise ShapeError(f"nested model {graph.name!r} has an unknown input")
        in_shapes = [known[id(t)][0] for t in call.inputs]
        in_dtypes = [known[id(t)][1] for t in call.inputs]
        if call.layer.subgraph is not None:
            results = infer_graph(call.layer.subgraph, in_shapes, in_dtypes)
        else:
            site = Site(
                call.layer.class_name,
                call.layer.config,
                in_shapes,
                in_dtypes,
                call.args,
                call.kwargs,
            )
            results = infer(site, call.layer.is_op)
        for tensor, result in zip(call.outputs, results):
            known[id(tensor)] = result
    return [known[id(t)] for t in graph.outputs]

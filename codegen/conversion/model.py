"""What the converter produces for each class: declarations, statements, weights.

:class:`ClassModel` is the contract between conversion and rendering: the renderer turns
it into source without looking back at the Keras graph. :class:`Session` holds what every
class of one model shares (helpers, class names, the converter registry).
"""

from __future__ import annotations

import builtins
import keyword
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np

from codegen.errors import ConversionError
from codegen.ir.graph import Graph, Tensor
from codegen.ir.layout import Layout
from codegen.ir.naming import Namespace

from .helpers import DEPENDENCIES, FEATURES, PASSED_ON, feature_owner
from .registry import Registry
from .training import TrainingFacts


@dataclass
class WeightEntry:
    key: str  # state_dict key relative to the class
    array: np.ndarray
    keras_layer: str
    keras_variable: str  # "" for buffers torch needs but Keras has not (num_batches_tracked)
    transform: str
    trainable: bool = True
    training: TrainingFacts | None = None  # Keras's training set-up of the variable


@dataclass
class Statement:
    expr: str
    outputs: list[Tensor]
    comment: str
    reads: list[Tensor]
    names: list[str] = field(default_factory=list)
    op: bool = False  # made by a keras.ops call (written inline in the Keras source)
    label: str = ""  # "name (Class)" part of the comment
    guard: str = ""  # a condition the statement runs under (a block's optional step)


@dataclass
class ClassModel:
    name: str
    keras_name: str
    keras_class: str
    docstring: str
    declarations: list[tuple[str, str]]  # (attribute, constructor expression)
    init_params: list[str] = field(default_factory=list)  # constructor arguments (blocks)
    title: str = ""  # first docstring line, when not "Port of Keras <class> <name>."
    params: list[str] = field(default_factory=list)
    statements: list[Statement] = field(default_factory=list)
    returns: list[str] = field(default_factory=list)
    # forward() returns {key: value} (Keras dict outputs), in the order of ``returns``.
    output_keys: list[str] | None = None
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
    # Module-level tables the class builds from (the arguments of its blocks, stage by
    # stage), each written out as source right before the class.
    constants: list[str] = field(default_factory=list)
    # A block instance's class, merged away by structure recovery: the class that now
    # computes its lines (statement index here -> index there), and where the instance sits
    # in its parent (``conv2.0``), so the report can still compare each of its layers.
    tap_as: tuple[str, dict[int, int]] | None = None
    tap_parent: str = ""
    tap_path: str = ""


@dataclass
class Options:
    # The forward interface takes/returns channels-first tensors. (Skeletons for layers
    # without a converter come from the registry's fallback, conversion/pipeline.py.)
    channels_first: bool = False


class Session:
    """State shared by every class generated for one model file."""

    def __init__(self, options: Options, registry: Registry) -> None:
        self.options = options
        self.registry = registry
        self.helpers: list[str] = []
        self.classes: list[ClassModel] = []
        self.class_names = Namespace({"F", "nn", "torch", "math"})
        self.problems: list[str] = []
        self.submodels: dict[int, ClassModel] = {}
        self.failed_models: set[int] = set()  # nested models that could not be converted
        # Helpers made for this model (skeletons): name -> (template, values to render it).
        self.helper_views: dict[str, tuple[str, dict[str, Any]]] = {}
        self.skeletons: dict[int, str] = {}  # id(layer) -> its skeleton class
        # Features of specialised helpers (helpers.FEATURES) that some call needs.
        self.helper_features: dict[str, set[str]] = {}

    def use_helper(self, name: str, features: Iterable[str] = ()) -> None:
        """Emit helper ``name`` (once), with at least the code paths ``features`` need."""
        for dep in DEPENDENCIES.get(name, ()):
            self.use_helper(dep)
        if name not in self.helpers:
            self.helpers.append(name)
            self.class_names.reserve(name)
        owner = feature_owner(name)
        unknown = sorted(set(features) - set(FEATURES.get(owner, ())))
        if unknown:
            raise ConversionError(
                f"helper {name} has no feature(s) {unknown} (see conversion/helpers.py)"
            )
        self.helper_features.setdefault(owner, set()).update(features)

    def helper_flags(self, name: str) -> dict[str, bool]:
        """Each feature of helper ``name``: whether some call of this model needs it."""
        owner = feature_owner(name)
        used = set(self.helper_features.get(owner, ()))
        for caller, callees in PASSED_ON.items():
            passed = set(callees.get(owner, ())) & self.helper_features.get(caller, set())
            used |= passed
        return {feature: feature in used for feature in FEATURES.get(owner, ())}


def unique_class(session: Session, name: str) -> str:
    """``name`` itself (CamelCase is kept), with a numeric suffix if already taken."""
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

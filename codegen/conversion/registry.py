"""Which converter ports which Keras class: the :class:`Registry` one conversion uses.

Converters register with :func:`register` (by Keras class name, or operation name for
keras.ops calls) into the table being collected: the built-in table while
:mod:`codegen.conversion.layers` is imported, a plugin's own table while the plugin loader
imports that plugin (:func:`collecting`). Nothing patches a global at conversion time: the
pipeline assembles a :class:`Registry` (built-ins, then plugins, then an optional fallback
such as skeletons) and hands it to the engine.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

# How a converter treats axis order, used to choose the layout of model inputs:
#   "spatial"  - wants channels-first (convolutions, pooling, ...)
#   "agnostic" - follows whatever layout its input has (activations, merges, normalization)
#   "keras"    - needs Keras's own order (Reshape, RNNs, ...)
SPATIAL, AGNOSTIC, KERAS = "spatial", "agnostic", "keras"


@dataclass(frozen=True)
class Converter:
    key: str
    function: Callable
    layout: str
    # Unary and element-wise: the output keeps the input's layout, feature order included.
    elementwise: bool
    origin: str | None = None  # the plugin that registered it; None for a built-in


@dataclass
class Table:
    """Converters and helper sources one source (the built-ins, or one plugin) registered."""

    origin: str | None = None
    converters: dict[str, Converter] = field(default_factory=dict)
    helpers: dict[str, str] = field(default_factory=dict)


_BUILTIN = Table()
_COLLECTING: list[Table] = [_BUILTIN]


def op_key(class_name: str) -> str:
    return f"ops.{class_name}"


def register(*class_names: str, layout: str = AGNOSTIC, elementwise: bool = False, op=False):
    """Register ``function(call, ctx)`` as the converter of these Keras classes."""

    def decorator(function: Callable) -> Callable:
        # A built-in family module imported for the first time while a plugin is being
        # loaded still registers into the built-in table.
        builtin = function.__module__.startswith("codegen.conversion.layers.")
        table = _BUILTIN if builtin else _COLLECTING[-1]
        for name in class_names:
            key = op_key(name) if op else name
            if key in table.converters or (table is not _BUILTIN and key in _BUILTIN.converters):
                raise ValueError(f"converter for {key} registered twice")
            table.converters[key] = Converter(key, function, layout, elementwise, table.origin)
        return function

    return decorator


def collecting_table() -> Table:
    """The table registrations go to now (a plugin's, while it is being loaded)."""
    return _COLLECTING[-1]


@contextlib.contextmanager
def collecting(table: Table) -> Iterator[Table]:
    """Registrations made inside the block (a plugin's import) go to ``table``."""
    _COLLECTING.append(table)
    try:
        yield table
    finally:
        _COLLECTING.remove(table)


def builtin_table() -> Table:
    """The built-in converters (filled by importing :mod:`codegen.conversion.layers`)."""
    return _BUILTIN


class Registry:
    """The converters of one conversion: built-ins first, then plugins, then a fallback.

    Plugins may add classes but never replace a built-in converter or each other's
    (:class:`ValueError` names both). ``fallback(layer, reason)`` supplies a converter for a
    layer nobody converts (skeleton modules with ``--allow-unsupported``).
    """

    def __init__(
        self,
        builtins: Table,
        plugins: Sequence[Table] = (),
        fallback: Callable | None = None,
    ) -> None:
        merged: dict[str, Converter] = dict(builtins.converters)
        helpers: dict[str, str] = {}
        for table in plugins:
            for key, conv in table.converters.items():
                if key in merged:
                    other = merged[key].origin or "a built-in converter"
                    raise ValueError(
                        f"plugin {table.origin}: {key} already has a converter ({other})"
                    )
                merged[key] = conv
            helpers.update(table.helpers)
        self._converters = merged
        self.helpers: Mapping[str, str] = MappingProxyType(helpers)
        self.fallback = fallback

    def lookup(self, class_name: str, is_op: bool = False) -> Converter | None:
        """The converter registered for this class (a plugin's ``"Name"`` also matches a
        class saved under a registered name ``"package>Name"``); no fallback."""
        conv = self._converters.get(op_key(class_name) if is_op else class_name)
        if conv is None and not is_op and ">" in class_name:
            candidate = self._converters.get(class_name.rsplit(">", 1)[1])
            if candidate is not None and candidate.origin is not None:
                conv = candidate
        return conv

    def converts(self, class_name: str, is_op: bool = False) -> bool:
        """Whether a converter (not the fallback) ports this class: the reader's question."""
        return self.lookup(class_name, is_op) is not None

    def converter_for(self, layer, reason: str = "") -> Converter | None:
        """The converter of ``layer``, or the fallback's (a skeleton) when there is none."""
        conv = self.lookup(layer.class_name, layer.is_op)
        if conv is None and self.fallback is not None:
            conv = self.fallback(layer, reason)
        return conv

    def items(self) -> dict[str, Converter]:
        """Every converter by key, sorted."""
        return dict(sorted(self._converters.items()))

"""Converters registered by Keras class name (layers) or operation name (keras.ops calls)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

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


_REGISTRY: dict[str, Converter] = {}


def op_key(class_name: str) -> str:
    return f"ops.{class_name}"


def register(*class_names: str, layout: str = AGNOSTIC, elementwise: bool = False, op=False):
    """Register ``function(call, ctx)`` as the converter of these Keras classes."""

    def decorator(function: Callable) -> Callable:
        for name in class_names:
            key = op_key(name) if op else name
            if key in _REGISTRY:
                raise ValueError(f"converter for {key} registered twice")
            _REGISTRY[key] = Converter(key, function, layout, elementwise)
        return function

    return decorator


def lookup(class_name: str, is_op: bool = False) -> Converter | None:
    _load_builtin_converters()
    return _REGISTRY.get(op_key(class_name) if is_op else class_name)


def registered() -> dict[str, Converter]:
    _load_builtin_converters()
    return dict(sorted(_REGISTRY.items()))


_loaded = False


def _load_builtin_converters() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        import importlib
        import pkgutil

        from . import layers

        for info in sorted(pkgutil.iter_modules(layers.__path__), key=lambda i: i.name):
            importlib.import_module(f"{layers.__name__}.{info.name}")

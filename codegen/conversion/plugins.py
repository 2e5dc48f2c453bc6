"""Converters for your own Keras layers, loaded from plugins.

A plugin is a Python file or module that registers converters exactly as the built-in ones
do (see ``docs/converters.md``)::

    from .plugins import CallContext, helper, register

    @register("MyCustomLayer")                  # the class name in the model's config
    def my_custom_layer(call, ctx: CallContext) -> None:
        ...

Plugins come from ``--plugin FILE.py`` / ``--plugin package.module`` on the command line,
``convert(..., plugins=[...])`` in Python (paths, module names, or callables that register
converters when called) and from installed distributions declaring an entry point in the
``keras2torch.converters`` group (the entry point's module is imported, or its object called
if it is a function). A converter is looked up by the Keras class name; a class saved under
a registered name ``"package>MyCustomLayer"`` also matches a plugin converter registered as
``"MyCustomLayer"``.

Importing a plugin file may also define and register the Keras class itself
(``keras.saving.register_keras_serializable``): Keras then loads the layer for real and
``--verify`` can run it. Without the class, the layer is loaded as a stand-in from its config
(see :mod:`codegen.standins`).

Plugins are scoped: each conversion gets a :class:`~codegen.conversion.registry.Registry`
holding the built-in converters plus exactly the plugins it is given, those passed to
:func:`use` (for every conversion in the process) and the entry points; converters that a
plugin registered stay out of other conversions. Loading a plugin imports it once, with
its registrations collected into its own table, never into the built-in one.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import os
import sys
import textwrap
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from codegen.errors import InputError

# What a converter needs, importable from one place.
from codegen.ir.layout import Layout, channels_first, keras_order, native_layout

from .context import CallContext, Unsupported
from .helpers import is_builtin_helper
from .layers import builtin_converters
from .registry import (
    AGNOSTIC,
    KERAS,
    SPATIAL,
    Registry,
    Table,
    collecting,
    collecting_table,
    register,
)

ENTRY_POINT_GROUP = "keras2torch.converters"

__all__ = [
    "AGNOSTIC",
    "KERAS",
    "SPATIAL",
    "CallContext",
    "Layout",
    "Unsupported",
    "channels_first",
    "helper",
    "keras_order",
    "keras_variables",
    "native_layout",
    "register",
]


@dataclass
class Plugin:
    origin: str  # what the user gave: a path, a module name, an entry point
    table: Table = field(default_factory=Table)
    module: ModuleType | None = None

    @property
    def converters(self):
        return self.table.converters


_LOADED: dict[str, Plugin] = {}  # key: resolved path, module name or entry point
_ENTRY_POINTS: list[Plugin] | None = None


# -- what plugins call ---------------------------------------------------------------------
def helper(name: str, source: str) -> str:
    """Declare a helper (a class or function, as Python source) a converter can use.

    It is written into ``model.py`` only when a converter calls ``ctx.helper(name)``; the
    source must define ``name`` and may use ``torch``, ``nn``, ``F`` and ``math``.
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"helper name {name!r} is not a Python identifier")
    source = textwrap.dedent(source).strip()
    try:
        compile(source, f"<helper {name}>", "exec")
    except SyntaxError as exc:
        raise ValueError(f"helper {name!r} does not compile: {exc}") from None
    if is_builtin_helper(name):
        raise ValueError(f"helper name {name!r} is taken by a built-in helper")
    helpers = collecting_table().helpers
    previous = helpers.get(name)
    if previous is not None and previous != source:
        raise ValueError(f"helper {name!r} is already defined with other source")
    helpers[name] = source
    return name


def keras_variables(ctx: CallContext) -> list[tuple[str, Any]]:
    """``(name, numpy array)`` of the layer's Keras variables, in the order it created them.

    Names depend on how the file was read: a ``.keras`` file does not store variable names,
    so a layer read without its Keras class has ``variable_0``, ``variable_1``...; rely on the
    order (pass the name on to ``ctx.weight`` for the weight manifest).
    """
    return list(ctx.layer.weights.items())


# -- loading -------------------------------------------------------------------------------
def _capture(origin: str, run: Callable[[], Any]) -> Plugin:
    """Run ``run`` (an import) with its registrations collected into the plugin's table."""
    builtin_converters()  # built-ins first: a plugin clashing with one is reported here
    plugin = Plugin(origin, Table(origin))
    try:
        with collecting(plugin.table):
            result = run()
    except InputError:
        raise
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise InputError(f"plugin {origin}: {_describe(exc, origin)}") from None
    if isinstance(result, ModuleType):
        plugin.module = result
    return plugin


def _describe(exc: BaseException, origin: str) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    where = ""
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename == origin or Path(frame.filename).name == Path(origin).name:
            where = f" (line {frame.lineno})"
            break
    if isinstance(exc, ValueError) and "registered twice" in text:
        text += "; a built-in converter or another plugin already handles this class"
    return f"{type(exc).__name__}{where}: {text}" if text else f"{type(exc).__name__}{where}"


def _is_path(spec: str) -> bool:
    return spec.endswith(".py") or os.sep in spec or "/" in spec or Path(spec).is_file()


def load_plugin(spec: Any) -> Plugin:
    """Import a plugin once: a ``.py`` path, a module name, or a callable (called each time)."""
    if callable(spec) and not isinstance(spec, (str, os.PathLike, ModuleType)):
        name = getattr(spec, "__qualname__", repr(spec))
        return _capture(f"{getattr(spec, '__module__', '')}.{name}", spec)
    if isinstance(spec, ModuleType):
        # Already imported: its converters were registered then, for every conversion.
        return Plugin(spec.__name__, module=spec)
    text = os.fspath(spec)
    if isinstance(spec, os.PathLike) or _is_path(text):
        path = Path(text).expanduser()
        if not path.is_file():
            raise InputError(f"plugin {text}: no such file")
        key = str(path.resolve())
        if key not in _LOADED:
            _LOADED[key] = _capture(str(path), lambda: _import_file(path))
        return _LOADED[key]
    if not all(part.isidentifier() for part in text.split(".")):
        raise InputError(f"plugin {text!r}: neither a .py file nor a module name")
    if text not in _LOADED:

        def run():
            try:
                return importlib.import_module(text)
            except ModuleNotFoundError as exc:
                if exc.name and text.startswith(exc.name):
                    raise InputError(
                        f"plugin {text}: no such module (give a path to a .py file, or "
                        "install the package that provides it)"
                    ) from None
                raise

        _LOADED[text] = _capture(text, run)
    return _LOADED[text]


def _import_file(path: Path) -> ModuleType:
    resolved = path.resolve()
    digest = hashlib.sha1(str(resolved).encode()).hexdigest()[:10]
    stem = "".join(c if c.isalnum() else "_" for c in path.stem)
    name = f"keras2torch_plugin_{stem}_{digest}"
    spec = importlib.util.spec_from_file_location(name, resolved)
    if spec is None or spec.loader is None:
        raise InputError(f"plugin {path}: cannot be imported as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    # Let the plugin import modules next to it (its own Keras layers, say).
    folder = str(resolved.parent)
    added = folder not in sys.path
    if added:
        sys.path.insert(0, folder)
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    finally:
        if added and folder in sys.path:
            sys.path.remove(folder)
    return module


def entry_point_plugins() -> list[Plugin]:
    """Plugins that installed distributions declare in the ``keras2torch.converters`` group."""
    global _ENTRY_POINTS
    if _ENTRY_POINTS is None:
        from importlib.metadata import entry_points

        found = []
        for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            origin = f"entry point {ep.name!r} ({ep.value})"

            def run(ep=ep):
                obj = ep.load()
                if callable(obj) and not isinstance(obj, (ModuleType, type)):
                    obj()
                return obj if isinstance(obj, ModuleType) else None

            found.append(_capture(origin, run))
        _ENTRY_POINTS = found
    return _ENTRY_POINTS


_USED: list[Any] = []  # plugins for every conversion in this process (:func:`use`)


def use(*specs: Any) -> None:
    """Use these plugins in every later conversion of this process (not only one call)."""
    for spec in specs:
        load_plugin(spec)  # fail now, not in the middle of a later conversion
        if spec not in _USED:
            _USED.append(spec)


def forget(*specs: Any) -> None:
    """Undo :func:`use`."""
    for spec in specs:
        if spec in _USED:
            _USED.remove(spec)


@contextlib.contextmanager
def using(*specs: Any):
    """``with using("my_converters.py"): ...``: the plugins for the conversions in the block."""
    use(*specs)
    try:
        yield
    finally:
        forget(*specs)


def activate(
    specs: Iterable[Any] | None = None, entry_points: bool = True, fallback=None
) -> Registry:
    """The converters for one conversion: the built-ins, these plugins, those of :func:`use`
    and (unless ``entry_points=False``) the installed entry points."""
    plugins = list(entry_point_plugins()) if entry_points else []
    for spec in [*_USED, *(specs or ())]:
        plugin = load_plugin(spec)
        if plugin not in plugins:
            plugins.append(plugin)
    try:
        return Registry(builtin_converters(), [p.table for p in plugins], fallback)
    except ValueError as exc:
        raise InputError(str(exc)) from None


def lookup(class_name: str, is_op: bool = False):
    """The converter a conversion with the plugins of :func:`use` would use for a class."""
    return activate().lookup(class_name, is_op)

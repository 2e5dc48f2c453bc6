"""The converter registry a conversion uses, assembled in one place.

Built-in converters, then the user's plugins (those given, those of
:func:`~codegen.conversion.plugins.use`, the installed entry points), then, with
``--allow-unsupported``, skeleton modules for the layers nobody converts.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .plugins import activate
from .registry import Registry
from .skeleton import skeleton_converter


def converter_registry(
    plugins: Iterable[Any] | None = None,
    *,
    allow_unsupported: bool = False,
    entry_points: bool = True,
) -> Registry:
    fallback = skeleton_converter if allow_unsupported else None
    return activate(plugins, entry_points=entry_points, fallback=fallback)

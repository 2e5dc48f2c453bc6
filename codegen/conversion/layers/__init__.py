"""Converters, one module per Keras layer family; each registers its classes on import.

A family module here mirrors :mod:`codegen.read.layers` (the same family's shape rules and
stored-variable facts): adding a layer is its facts there, its converter here, and one
parity test in ``tests/conversion/layers/``.
"""

import importlib
import pkgutil

from ..registry import Table, builtin_table

# Every family module (discovered, so that adding a family is adding a file); importing one
# registers its converters.
FAMILIES = tuple(
    importlib.import_module(f"{__name__}.{info.name}")
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda info: info.name)
    if not info.name.startswith("_")
)


def builtin_converters() -> Table:
    """Every built-in converter (registered when the family modules above were imported)."""
    return builtin_table()

"""Converters, one module per Keras layer family; each registers its classes on import.

A family module here mirrors :mod:`codegen.read.layers` (the same family's shape rules and
stored-variable facts): adding a layer is its facts there, its converter here, and one
parity test in ``tests/conversion/layers/``.
"""

from ..registry import Table, builtin_table
from . import (  # noqa: F401  (imported for their registrations)
    activations,
    applications,
    attention,
    conv,
    core,
    embedding,
    merging,
    normalization,
    ops,
    pooling,
    preprocessing,
    recurrent,
    reshaping,
    spatial,
    tfops,
    wrappers,
)


def builtin_converters() -> Table:
    """Every built-in converter (registered when the family modules above were imported)."""
    return builtin_table()

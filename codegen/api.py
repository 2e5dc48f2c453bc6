"""The public Python API: ``codegen.convert``, ``generate``, ``verify_folder``.

A small surface over the application layer (:mod:`codegen.app`), which runs the stages
read → convert → render → check; see ``docs/architecture.md``.
"""

from __future__ import annotations

from .app.convert import (
    MODULE_FILE,
    WEIGHTS_FILE,
    ConversionResult,
    Generated,
    convert,
    count_layers,
    generate,
)
from .app.verify import verify_folder
from .read.paths import READERS, load_reference, read_path

__all__ = [
    "MODULE_FILE",
    "READERS",
    "WEIGHTS_FILE",
    "ConversionResult",
    "Generated",
    "convert",
    "count_layers",
    "generate",
    "load_reference",
    "read_path",
    "verify_folder",
]

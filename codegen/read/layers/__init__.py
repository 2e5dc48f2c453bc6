"""What the file reader knows about each Keras layer class, one module per layer family.

A family module here mirrors the converter module of the same name in
:mod:`codegen.conversion.layers` and holds, for its classes:

- the shape rule (``@rule("Dense")``, or ``@op_rule("Matmul")`` for a keras.ops operation;
  the engine, :class:`~codegen.read.shapes.Site` and :func:`~codegen.read.shapes.infer`, is
  :mod:`codegen.read.shapes`);
- the stored variables (``@variables_rule("Dense")``: their keys in Keras's storage order for
  a config; ``no_variables("Flatten")`` for a class that holds none; the reading of ``.h5`` and
  ``model.weights.h5`` files is :mod:`codegen.read.stored_weights`);
- what Keras 3 records in each call without being asked, as module constants the lookups
  below merge: ``MASK_ARGUMENT`` (call() takes ``mask=``), ``TRAINING_DEFAULTS`` (call()'s
  ``training`` default, where not None) and ``KEEPS_MASK`` (the output carries the first
  input's mask);
- shared class lists: ``MERGE_LAYERS`` (merging), ``AUGMENTATION_LAYERS`` (preprocessing),
  ``STOCHASTIC_LAYERS`` (core), ``RNN_LAYERS`` (recurrent).

Adding a layer = its facts here + its converter in ``codegen/conversion/layers/<same family>.py``
+ one parity test. ``tests/read/test_layer_facts.py`` checks that the two sides list the same classes.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable

from ..shapes import OP_RULES, RULES, Site
from ..stored_weights import VARIABLE_RULES, Var
from . import core, merging, preprocessing, recurrent

# Every family module (discovered, so that adding a family is adding a file); importing one
# registers its shape rules and variable facts.
FAMILIES = tuple(
    importlib.import_module(f"{__name__}.{info.name}")
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda info: info.name)
    if not info.name.startswith("_")
)


def _merged(attribute: str) -> dict:
    merged: dict = {}
    for family in FAMILIES:
        table = getattr(family, attribute, {})
        if not isinstance(table, dict):
            table = dict.fromkeys(table, True)
        for name, value in table.items():
            if name in merged:
                raise ValueError(f"{attribute}: {name} listed by two layer families")
            merged[name] = value
    return merged


_MASK_ARGUMENT = frozenset(_merged("MASK_ARGUMENT"))
_TRAINING_DEFAULTS: dict[str, bool] = _merged("TRAINING_DEFAULTS")
_KEEPS_MASK = frozenset(_merged("KEEPS_MASK"))

MERGE_LAYERS = merging.MERGE_LAYERS
AUGMENTATION_LAYERS = preprocessing.AUGMENTATION_LAYERS
STOCHASTIC_LAYERS = core.STOCHASTIC_LAYERS
RNN_LAYERS = recurrent.RNN_LAYERS


def shape_rule(class_name: str, is_op: bool = False) -> Callable[[Site], list] | None:
    """The shape rule of a layer class (or keras.ops operation); None when there is none."""
    return (OP_RULES if is_op else RULES).get(class_name)


def stored_variables(class_name: str, config: dict) -> list[Var] | None:
    """A layer's variables in Keras's storage order; None for a class without facts (or a
    config they cannot tell). Raises WeightsUnsupported for weights the reader cannot map."""
    fn = VARIABLE_RULES.get(class_name)
    return None if fn is None else fn(class_name, config)


def takes_mask(class_name: str) -> bool:
    """Keras 3 records the input's mask as ``mask=`` in each call (call() takes one)."""
    return class_name in _MASK_ARGUMENT


def training_default(class_name: str) -> bool | None:
    """The ``training`` Keras 3 records in each call; None where it records none."""
    return _TRAINING_DEFAULTS.get(class_name)


def keeps_mask(class_name: str) -> bool:
    """The layer's output carries the mask of its first input (Keras's default compute_mask)."""
    return class_name in _KEEPS_MASK


def is_merge(class_name: str) -> bool:
    return class_name in MERGE_LAYERS


def is_rnn(class_name: str) -> bool:
    return class_name in RNN_LAYERS

"""The bookkeeping every Keras 1 layer rewrite shares (:mod:`codegen.read.keras1_config`,
:mod:`codegen.read.keras1_convolutions`): a layer's options are taken one by one, renamed
to their Keras 2 names, and any option left over raises :class:`InputError` naming it.
"""

from __future__ import annotations

from codegen.errors import InputError

DATA_FORMATS = {"th": "channels_first", "tf": "channels_last"}
_PADDINGS = ("valid", "same")
# Keys every Keras 1 layer may carry, with their Keras 2 names (None: dropped, no effect at
# inference).
_COMMON = {
    "name": "name",
    "trainable": "trainable",
    "batch_input_shape": "batch_input_shape",
    "input_dtype": "dtype",
    "init": None,  # Keras 1 initializer names; a ported model keeps its trained values
    "inner_init": None,
    "W_regularizer": None,
    "b_regularizer": None,
    "activity_regularizer": None,
    "W_constraint": None,
    "b_constraint": None,
    "input_dim": None,
    "input_length": None,
}


class Keras1Layer:
    """One Keras 1 layer config being rewritten: take its keys, then check none is left."""

    def __init__(self, class_name: str, config: dict, keep: tuple[str, ...] = ()) -> None:
        self.class_name = class_name
        self.left = dict(config)
        self.out: dict = {}
        for key, new in _COMMON.items():
            if key in self.left and key not in keep:
                value = self.left.pop(key)
                if new is not None:
                    self.out[new] = value

    def take(self, key: str, default=None):
        return self.left.pop(key, default)

    def need(self, key: str):
        """An option Keras 1 always saved (a missing one is not a Keras 1 config)."""
        if self.left.get(key) is None:
            raise self.refuse(f"no {key!r}")
        return self.left.pop(key)

    def drop(self, *keys: str) -> None:
        """Options without effect at inference (initializers, regularizers, constraints)."""
        for key in keys:
            self.left.pop(key, None)

    def refuse(self, what: str) -> InputError:
        return InputError(f"Keras 1 layer {self.class_name} with {what}: not supported")

    def data_format(self) -> str:
        ordering = self.take("dim_ordering", "tf")
        if ordering not in DATA_FORMATS:
            raise self.refuse(f"dim_ordering={ordering!r}")
        return DATA_FORMATS[ordering]

    def padding(self) -> str:
        mode = self.take("border_mode", "valid")
        if mode not in _PADDINGS:
            raise self.refuse(f"border_mode={mode!r}")
        return mode

    def ints(self, key: str, default, count: int) -> list[int]:
        """A Keras 1 tuple option of ``count`` integers (one integer repeated)."""
        return self.as_ints(key, self.take(key, default), count)

    def as_ints(self, key: str, value, count: int) -> list[int]:
        if isinstance(value, int) and not isinstance(value, bool):
            value = [value] * count
        if not isinstance(value, (list, tuple)) or len(value) != count:
            raise self.refuse(f"{key}={value!r}")
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise self.refuse(f"{key}={value!r}")
        return list(value)

    def finish(self, class_name: str) -> tuple[str, dict]:
        if self.left:
            raise self.refuse(f"option(s) {sorted(self.left)}")
        return class_name, self.out

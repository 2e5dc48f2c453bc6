"""The arguments of a TensorFlow function in a ``TFOpLambda`` node, checked and read by name
(shared by :mod:`codegen.read.tf_functions` and :mod:`codegen.read.tf_array_functions`)."""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any

from codegen.ir.graph import Tensor


class TFFunctionUnsupported(Exception):
    """A TensorFlow function (or argument) without a keras.ops equivalent here."""


# emit(class_name, config, args, kwargs=None, is_op=True) -> output tensors
Emit = Callable[..., list]


def _params(function: str, first, kwargs: dict, names: tuple[str, ...], defaults: dict) -> dict:
    """Arguments by name: ``first`` is the first parameter; ``name=`` is ignored."""
    values = dict(defaults)
    values[names[0]] = first
    for key, value in kwargs.items():
        if key == "name":
            continue
        if key not in names:
            raise TFFunctionUnsupported(f"tf.{function} with argument {key}={_show(value)}")
        values[key] = value
    return values


def _show(value) -> str:
    if isinstance(value, Tensor):
        return "<tensor>"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _scalar(function: str, what: str, value) -> Any:
    if isinstance(value, bool) or not isinstance(value, numbers.Number):
        raise TFFunctionUnsupported(f"tf.{function} with {what}={_show(value)} (only numbers)")
    return value


def _int_list(function: str, what: str, value) -> list[int] | int | None:
    if value is None or isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, (list, tuple)) and all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        return list(value)
    raise TFFunctionUnsupported(
        f"tf.{function} with {what}={_show(value)} (only constant integers)"
    )


def _tensor(function: str, what: str, value) -> Tensor:
    if not isinstance(value, Tensor):
        raise TFFunctionUnsupported(f"tf.{function} with a constant {what} ({_show(value)})")
    return value

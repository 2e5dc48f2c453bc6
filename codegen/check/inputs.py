"""The inputs a check runs both models on: the user's own (``--inputs FILE``) or drawn.

In: the :class:`Graph` (input names, shapes, dtypes) and what the user gave: a path to an
``.npz`` (one array per model input, by input name or in order) or ``.npy`` (one input), or
arrays in memory (a list, a dict by input name, one array). Out: :class:`CheckInputs`, the
arrays in Keras layout and a note per input saying where it came from.

Arrays are checked against the model before anything runs or is written: the rank and every
dimension the model fixes, one batch size for all inputs, and a dtype the input can take
(numbers and booleans for float inputs, integers and booleans for integer inputs, booleans
for boolean inputs); they are then cast to the input's own dtype, as Keras would. Files are
read with ``allow_pickle=False``: an archive holding Python objects is refused, never
unpickled.
"""

from __future__ import annotations

import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from codegen.errors import InputError
from codegen.ir.graph import Graph, Tensor

from .default_inputs import default_inputs

_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = b"PK\x03\x04"


@dataclass
class CheckInputs:
    arrays: list[np.ndarray]
    notes: list[str]  # per input: what was drawn and why, or which array of which file
    given: bool  # the user's own data, not drawn

    @property
    def batch(self) -> int:
        return int(self.arrays[0].shape[0]) if self.arrays and self.arrays[0].ndim else 0


def choose_inputs(graph: Graph, given: Any = None, batch: int = 2) -> CheckInputs:
    """The user's inputs checked against ``graph``, or inputs drawn from what it records."""
    if given is None:
        drawn = default_inputs(graph, batch)
        return CheckInputs([d.array for d in drawn], [d.why for d in drawn], given=False)
    if isinstance(given, CheckInputs):
        return given
    if isinstance(given, (str, os.PathLike)):
        named, origin = read_inputs_file(Path(given)), f"{given}"
    elif isinstance(given, dict):
        named, origin = dict(given), "the arrays given"
    elif isinstance(given, (list, tuple)):
        named, origin = {f"arr_{i}": a for i, a in enumerate(given)}, "the arrays given"
    else:
        named, origin = {"arr_0": given}, "the array given"
    return fit_inputs(graph, named, origin)


def read_inputs_file(path: Path) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` (in archive order) or ``.npy`` file, never unpickling."""
    if not path.is_file():
        raise InputError(f"--inputs {path}: no such file")
    try:
        with open(path, "rb") as f:
            head = f.read(8)
        if head.startswith(_NPY_MAGIC):
            return {"arr_0": np.load(path, allow_pickle=False)}
        if not head.startswith(_ZIP_MAGIC):
            raise InputError(f"--inputs {path}: not an .npz or .npy file")
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except InputError:
        raise
    except ValueError as exc:
        if "pickle" in str(exc):
            raise InputError(
                f"--inputs {path}: holds Python objects (pickled); only plain numeric arrays "
                "are read (np.savez(path, name=array) with a numeric dtype)"
            ) from None
        raise InputError(f"--inputs {path}: unreadable ({_first_line(exc)})") from None
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise InputError(f"--inputs {path}: unreadable ({_first_line(exc)})") from None
    if not arrays:
        raise InputError(f"--inputs {path}: holds no arrays")
    return arrays


def fit_inputs(graph: Graph, named: dict[str, Any], origin: str) -> CheckInputs:
    """Match arrays to the model's inputs (by name, else in order) and check each one."""
    names = list(graph.input_names) or [f"input_{i}" for i in range(len(graph.inputs))]
    keys = _match(names, named, origin)
    arrays, notes = [], []
    for i, (tensor, name, key) in enumerate(zip(graph.inputs, names, keys)):
        arrays.append(_fit(tensor, named[key], f"input {i} {name!r}", origin))
        notes.append(f"from {origin}, array {key!r}" if len(named) > 1 else f"from {origin}")
    batches = {int(a.shape[0]) for a in arrays}
    if len(batches) > 1:
        sizes = ", ".join(f"{n!r} {int(a.shape[0])}" for n, a in zip(names, arrays))
        raise InputError(f"inputs from {origin}: batch sizes differ ({sizes})")
    return CheckInputs(arrays, notes, given=True)


def _match(names: list[str], named: dict[str, Any], origin: str) -> list[str]:
    """The key of each model input: its name, ``input_<i>`` (as --emit-test writes), or
    the archive's order when there are exactly as many arrays as inputs."""
    if all(n in named for n in names):
        return names
    positional = [f"input_{i}" for i in range(len(names))]
    if all(k in named for k in positional):
        return positional
    if len(named) == len(names):
        return sorted(named, key=_archive_order(list(named)))
    listed = ", ".join(repr(k) for k in list(named)[:8])
    wanted = ", ".join(repr(n) for n in names)
    raise InputError(
        f"inputs from {origin}: {len(named)} array(s) ({listed}) for a model with "
        f"{len(names)} input(s) ({wanted}); name each array after its input, or give "
        "exactly one array per input in order"
    )


def _archive_order(keys: list[str]):
    """np.savez(path, a, b) names arrays arr_0, arr_1, ...: by number, else as stored."""

    def key(name: str):
        match = re.fullmatch(r"arr_(\d+)", name)
        return (0, int(match.group(1))) if match else (1, keys.index(name))

    return key


def _fit(tensor: Tensor, array: Any, what: str, origin: str) -> np.ndarray:
    expected = _shape_text(("N", *tensor.shape[1:]))
    if not isinstance(array, np.ndarray):
        try:
            array = np.asarray(array)
        except Exception as exc:  # noqa: BLE001 - anything a caller may hand over
            raise InputError(f"{what}: not an array ({_first_line(exc)})") from None
    got = f"{_shape_text(array.shape)} {array.dtype}"
    problem = _dtype_problem(tensor.dtype, array)
    if array.ndim != len(tensor.shape) or array.ndim == 0 or array.shape[0] < 1:
        problem = problem or "shape"
    elif any(d is not None and d != n for d, n in zip(tensor.shape[1:], array.shape[1:])):
        problem = problem or "shape"
    if problem:
        detail = "" if problem == "shape" else f" ({problem})"
        raise InputError(
            f"{what} from {origin}: expected shape {expected} {tensor.dtype}, got {got}{detail}"
        )
    return np.ascontiguousarray(array.astype(tensor.dtype, copy=False))


def _dtype_problem(dtype: str, array: np.ndarray) -> str:
    """Why ``array`` cannot feed an input of ``dtype`` ("" when it can)."""
    kind = array.dtype.kind
    if kind not in "biuf":
        return f"{array.dtype} values are not numbers"
    if "float" in dtype:
        return ""
    if "int" in dtype:
        if kind == "f":
            return f"the input takes integers; cast them, e.g. x.astype({dtype!r})"
        if kind in "iu" and array.size:
            info = np.iinfo(dtype)
            if array.min() < info.min or array.max() > info.max:
                return f"values outside the range of {dtype}"
        return ""
    if dtype == "bool":
        return "" if kind == "b" else "the input takes booleans"
    return f"inputs of dtype {dtype} cannot be checked"


def _shape_text(shape) -> str:
    inner = ", ".join("None" if d is None else str(d) for d in shape)
    return f"({inner}{',' if len(shape) == 1 else ''})"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__

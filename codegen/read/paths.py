"""Choose the reader for a model file, and load the reference model verification runs.

``read_path`` gives a :class:`~codegen.ir.graph.Graph` (with the Keras model when Keras read
it); ``load_reference`` gives the model as its own framework runs it.
"""

from __future__ import annotations

import os
from pathlib import Path
from collections.abc import Callable
from typing import Any

from codegen.errors import ConversionError, InputError
from codegen.ir.graph import Graph

READERS = (None, "file", "keras")


def read_path(
    path: str | os.PathLike,
    reader: str | None = None,
    converts: Callable[[str, bool], bool] | None = None,
) -> tuple[Graph, Any, str]:
    """``(graph, keras model or None, reader used)`` for a model file.

    ``reader=None``: the TensorFlow-free file reader, or Keras where that reader cannot
    reproduce the model exactly (it says so with :class:`FileReaderUnsupported`).
    ``converts(class_name, is_op)``: whether the conversion has a converter for a class (pass
    the registry's, plugins included; default: the built-in classes), see
    :func:`codegen.read.from_file.read_file`.
    """
    if reader == "keras":
        return _read_with_keras(path)
    from codegen.read.from_file import FileReaderUnsupported, read_file

    try:
        return read_file(path, converts=converts), None, "file"
    except FileReaderUnsupported as exc:
        if reader == "file":
            raise
        import importlib.util

        if importlib.util.find_spec("keras") is None:
            raise InputError(
                f"{path}: {exc} (reading it with Keras needs Keras installed)"
            ) from None
        try:
            return _read_with_keras(path)
        except InputError as keras_exc:
            raise InputError(f"{path}: {exc}; {keras_exc}") from None
    except ConversionError:
        raise
    except Exception as exc:  # h5py/zipfile/json on a damaged file: one clear line
        text = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        raise InputError(
            f"{path}: cannot be read, the file looks damaged ({type(exc).__name__}"
            f"{': ' + text if text else ''})"
        ) from None


def _read_with_keras(path) -> tuple[Graph, Any, str]:
    from codegen.read.from_keras import load_keras_file, read_model

    model = load_keras_file(path)
    return read_model(model), model, "keras"


def load_reference(path: str | os.PathLike) -> tuple[Any, str]:
    """The model as its framework runs it, for verification: ``(model, framework)``.

    Files written by Keras 3 load with Keras 3. Files written by Keras 2/tf.keras load with
    tf-keras (Keras 2.x) when it is installed, since it reads them as they were meant
    (Keras 3 changed hard_sigmoid, for one), else with Keras 3. A file with a Lambda layer is
    never loaded by tf-keras (it would unmarshal the layer's Python code).
    """
    from codegen.read.formats import open_model_file
    from codegen.read.from_file import spec_has_lambda

    with open_model_file(path) as model_file:
        legacy = model_file.keras_major < 3
        lambdas = spec_has_lambda(model_file) if legacy else []
    errors = []
    order = ["tf_keras", "keras"] if legacy and not lambdas else ["keras"]
    for framework in order:
        try:
            if framework == "keras":
                from codegen.read.from_keras import load_keras_file

                return load_keras_file(path), "Keras 3"
            return _load_tf_keras(path)
        except ImportError:
            errors.append(f"{framework} is not installed")
        except InputError as exc:
            errors.append(str(exc))
    if legacy and lambdas:
        errors.append(f"tf-keras is not used: Lambda layer(s) {lambdas} hold Python code")
    raise InputError("cannot load a reference model to verify against: " + "; ".join(errors))


def _load_tf_keras(path) -> tuple[Any, str]:
    import shutil
    import tempfile

    from codegen.read.keras_import import _stderr_silenced

    with _stderr_silenced():
        import tf_keras
    link_dir = tempfile.mkdtemp(prefix="keras2torch-")
    try:
        from codegen.read.formats import sniff

        link = Path(link_dir) / ("model.keras" if sniff(path) == "zip" else "model.h5")
        os.symlink(Path(path).resolve(), link)
        try:
            with _stderr_silenced():
                model = tf_keras.models.load_model(link, compile=False)
        except Exception as exc:  # tf-keras raises many types for files it cannot read
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise InputError(f"tf-keras could not load it: {text}") from None
    finally:
        shutil.rmtree(link_dir, ignore_errors=True)
    return model, f"tf-keras {tf_keras.__version__}"

"""What kind of Keras file a path holds, told from its content (never from its extension).

Only ``h5py``, ``zipfile`` and ``json`` are used: nothing here imports TensorFlow or Keras.

- an HDF5 file whose root carries ``model_config``: a full model saved by Keras 1/2, tf.keras or
  Keras 3's legacy ``.h5`` writer (weights under ``model_weights/``);
- an HDF5 file with weights only (``model.save_weights``), in the Keras 2 layout
  (``layer_names`` at the root) or the Keras 3 one (``layers/.../vars``): not a model;
- a zip archive with ``config.json`` and ``model.weights.h5``: a Keras 3 ``.keras`` file.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from typing_extensions import Self

from codegen.errors import InputError

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
ZIP_SIGNATURE = b"PK\x03\x04"

WEIGHTS_ONLY_HINT = (
    "holds only weights (saved with save_weights), not a model: supply the architecture too "
    "(build the model in Keras, load these weights into it and convert that model, "
    "or convert the full model file saved with model.save)"
)


@dataclass
class ModelFile:
    """A Keras model file opened for reading: its config and where its weights are."""

    path: Path
    kind: str  # "h5" (full-model HDF5) or "keras" (Keras 3 zip)
    config: dict[str, Any]
    keras_version: str | None = None
    backend: str | None = None
    weights: Any = None  # h5py.File: root of the weights (model_weights/ or model.weights.h5)
    _handles: list = field(default_factory=list)

    @property
    def keras_major(self) -> int:
        """The major Keras version that wrote the file (tf-keras 2.13+ writes .keras too)."""
        if self.kind == "keras" and not self.keras_version:
            return 3
        try:
            return int(str(self.keras_version).split(".")[0])
        except ValueError:
            return 2  # tf.keras files sometimes say "2.x-tf"; unknown means Keras 2

    def close(self) -> None:
        for handle in reversed(self._handles):
            try:
                handle.close()
            except Exception:
                pass
        self._handles.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def sniff(path: str | os.PathLike) -> str:
    """``"h5"`` or ``"zip"`` from the first bytes of ``path``; InputError for anything else."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        if (path / "saved_model.pb").exists():
            raise InputError(
                f"{path}: is a TensorFlow SavedModel directory; keras2torch reads .keras and .h5 "
                "model files (load it in Keras and save it with model.save('model.keras'))"
            )
        raise InputError(f"{path}: is a directory, expected a .keras or .h5 model file")
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror})") from None
    if head.startswith(HDF5_SIGNATURE):
        return "h5"
    if head.startswith(ZIP_SIGNATURE):
        return "zip"
    raise InputError(
        f"{path}: not a Keras model file (expected a .keras zip archive or an HDF5 .h5 file)"
    )


def _text(value) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return str(value)


def _json(value, path: Path, what: str):
    try:
        return json.loads(_text(value))
    except (ValueError, UnicodeDecodeError):
        raise InputError(f"{path}: its {what} is not valid JSON (a damaged file?)") from None


def open_model_file(path: str | os.PathLike) -> ModelFile:
    """Open a full-model ``.h5`` or a ``.keras`` archive; InputError for anything else."""
    path = Path(path)
    kind = sniff(path)
    import h5py

    if kind == "h5":
        try:
            f = h5py.File(path, "r")
        except OSError as exc:
            raise InputError(f"{path}: an HDF5 file that cannot be read ({exc})") from None
        attrs = f.attrs
        if "model_config" not in attrs:
            weights_only = "layer_names" in attrs or "layers" in f or "vars" in f
            f.close()
            if weights_only:
                raise InputError(f"{path}: {WEIGHTS_ONLY_HINT}")
            raise InputError(
                f"{path}: an HDF5 file, but not one written by Keras (no model_config)"
            )
        config = _json(attrs["model_config"], path, "model_config")
        version = _text(attrs["keras_version"]) if "keras_version" in attrs else None
        backend = _text(attrs["backend"]) if "backend" in attrs else None
        if "model_weights" in f:
            weights = f["model_weights"]
        elif "layer_names" in attrs:  # very old files keep the weights at the root
            weights = f
        else:
            weights = None
        if weights is not None:  # Keras 1-2.0 wrote both with the weights only
            wattrs = weights.attrs
            if version is None and "keras_version" in wattrs:
                version = _text(wattrs["keras_version"])
            if backend is None and "backend" in wattrs:
                backend = _text(wattrs["backend"])
        return ModelFile(path, "h5", config, version, backend, weights, [f])

    try:
        archive = zipfile.ZipFile(path)
        names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputError(f"{path}: a damaged zip archive ({exc})") from None
    if "config.json" not in names:
        archive.close()
        raise InputError(
            f"{path}: a zip archive, but not a Keras .keras file (it has no config.json)"
        )
    config = _json(archive.read("config.json"), path, "config.json")
    metadata = {}
    if "metadata.json" in names:
        metadata = _json(archive.read("metadata.json"), path, "metadata.json")
    handles: list = [archive]
    weights = None
    if "model.weights.h5" in names:
        # Read the archive member in memory: HDF5 needs random access.
        buffer = io.BytesIO(archive.read("model.weights.h5"))
        try:
            weights = h5py.File(buffer, "r")
        except OSError as exc:
            archive.close()
            raise InputError(f"{path}: its model.weights.h5 cannot be read ({exc})") from None
        handles.append(weights)
    elif any(n.startswith("model.weights") for n in names):
        archive.close()
        raise InputError(
            f"{path}: keeps its weights as "
            f"{sorted(n for n in names if n.startswith('model.weights'))}; "
            "only model.weights.h5 is supported by the TensorFlow-free reader (try --reader keras)"
        )
    if not isinstance(config, dict):
        archive.close()
        raise InputError(f"{path}: config.json does not describe a model")
    return ModelFile(
        path,
        "keras",
        config,
        metadata.get("keras_version"),
        None,
        weights,
        handles,
    )

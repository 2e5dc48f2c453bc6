"""What ``model.compile()`` recorded: the optimizer, the loss, the metrics.

Keras 3 keeps ``compile_config`` in a ``.keras`` file's config.json (and answers
``get_compile_config()`` on a live compiled model); Keras 2 keeps ``training_config`` in an
``.h5`` file's attributes (``optimizer_config``, ``loss``, ``metrics``). Both come back as
``{"optimizer": {"class_name", "config"}, "loss": ..., "metrics": ...}``, or None.
"""

from __future__ import annotations

import json
import os
import zipfile
from typing import Any


def compile_config(model_or_path: Any) -> dict | None:
    if isinstance(model_or_path, (str, os.PathLike)):
        try:
            return _from_file(os.fspath(model_or_path))
        except (OSError, ValueError, KeyError, zipfile.BadZipFile):
            return None  # a damaged record is no record: train.py says so
    getter = getattr(model_or_path, "get_compile_config", None)
    if getter is None or not getattr(model_or_path, "compiled", False):
        return None
    return _normalized(getter())


def _from_file(path: str) -> dict | None:
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
        return _normalized(config.get("compile_config")) if isinstance(config, dict) else None
    import h5py

    with h5py.File(path, "r") as f:
        raw = f.attrs.get("training_config")
    if raw is None:
        return None
    training = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
    if not isinstance(training, dict):
        return None
    return _normalized(
        {
            "optimizer": training.get("optimizer_config"),
            "loss": training.get("loss"),
            "metrics": training.get("metrics"),
        }
    )


def _normalized(config) -> dict | None:
    if not isinstance(config, dict):
        return None
    return {key: config.get(key) for key in ("optimizer", "loss", "metrics")}

"""Import Keras (and TensorFlow) without its start-up noise on the user's terminal."""

from __future__ import annotations

import contextlib
import os
import sys


@contextlib.contextmanager
def _stderr_silenced():
    """TensorFlow's C++ start-up logs bypass Python; silence file descriptor 2 meanwhile."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def import_keras():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "keras" in sys.modules:
        return sys.modules["keras"]
    with _stderr_silenced():
        import keras
    return keras


def keras_setting(name: str, default):
    """A global Keras setting (``epsilon``, ``image_data_format``) without importing Keras.

    The running Keras's value when Keras is already imported; otherwise what Keras would
    read at import time from ``$KERAS_HOME/keras.json`` (``~/.keras/keras.json``).
    """
    keras = sys.modules.get("keras")
    if keras is not None:
        getter = getattr(keras.config, name, None)
        if getter is not None:
            return getter()
    import json

    if "KERAS_HOME" in os.environ:
        base = os.environ["KERAS_HOME"]
    else:
        home = os.path.expanduser("~")
        base = os.path.join(home if os.access(home, os.W_OK) else "/tmp", ".keras")
    try:
        with open(os.path.join(base, "keras.json")) as f:
            value = json.load(f).get(name, default)
    except (OSError, ValueError, AttributeError):
        return default
    return default if value is None else value

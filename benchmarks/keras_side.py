"""The TensorFlow side: build the benchmark models, convert them, time ``predict_on_batch``.

Run as a worker (``python -m benchmarks.keras_side``); never imported by the PyTorch side.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

from benchmarks.inputs import make_input
from benchmarks.worker import serve

IMAGE = {"shape": [224, 224, 3], "dtype": "float32"}
TOKENS = {"shape": [128], "dtype": "int32", "vocab": 20000}


def _application(name):
    def build(keras):
        return getattr(keras.applications, name)(weights=None, classifier_activation=None)

    return build


def lstm_classifier(keras):
    L = keras.layers
    tokens = keras.Input((128,), dtype="int32", name="tokens")
    x = L.Embedding(20000, 128)(tokens)
    x = L.LSTM(128)(x)
    return keras.Model(tokens, L.Dense(2)(x), name="lstm_classifier")


def bilstm_classifier(keras):
    L = keras.layers
    tokens = keras.Input((128,), dtype="int32", name="tokens")
    x = L.Embedding(20000, 128)(tokens)
    x = L.Bidirectional(L.LSTM(64))(x)
    return keras.Model(tokens, L.Dense(2)(x), name="bilstm_classifier")


def transformer_encoder(keras, layers: int = 2, dim: int = 128, heads: int = 4):
    L = keras.layers
    tokens = keras.Input((128,), dtype="int32", name="tokens")
    x = L.Embedding(20000, dim)(tokens)
    for _ in range(layers):
        attended = L.MultiHeadAttention(heads, dim // heads)(x, x)
        x = L.LayerNormalization(epsilon=1e-6)(x + attended)
        hidden = L.Dense(dim * 2, activation="relu")(x)
        x = L.LayerNormalization(epsilon=1e-6)(x + L.Dense(dim)(hidden))
    x = L.GlobalAveragePooling1D()(x)
    return keras.Model(tokens, L.Dense(2)(x), name="transformer_encoder")


def tiny_cnn(keras):
    """The smoke test's model: seconds to build, convert and time."""
    L = keras.layers
    image = keras.Input((32, 32, 3), name="image")
    x = L.Conv2D(8, 3, strides=2, padding="same")(image)
    x = L.ReLU()(L.BatchNormalization()(x))
    x = L.GlobalAveragePooling2D()(x)
    return keras.Model(image, L.Dense(3)(x), name="tiny_cnn")


# name -> (builder, input spec, whether it is an image model)
MODELS = {
    "resnet50": (_application("ResNet50"), IMAGE, True),
    "mobilenetv2": (_application("MobileNetV2"), IMAGE, True),
    "efficientnetb0": (_application("EfficientNetB0"), IMAGE, True),
    "lstm_classifier": (lstm_classifier, TOKENS, False),
    "bilstm_classifier": (bilstm_classifier, TOKENS, False),
    "transformer_encoder": (transformer_encoder, TOKENS, False),
    "tiny_cnn": (tiny_cnn, {"shape": [32, 32, 3], "dtype": "float32"}, True),
}


def randomize(model, seed: int = 0) -> None:
    """Random weights scaled by fan-in (activations stay O(1)); BatchNorm statistics too."""
    rng = np.random.default_rng(seed)
    for var in model.weights:
        shape, name = tuple(var.shape), var.path.rsplit("/", 1)[-1]
        if "int" in str(var.dtype):
            continue
        if "variance" in name or name == "gamma":
            value = rng.uniform(0.5, 1.5, shape)
        elif len(shape) >= 2 and name != "embeddings":
            fan_in = (
                int(np.prod(shape[:-1])) if "depthwise" not in name else int(np.prod(shape[:-2]))
            )
            value = rng.normal(0.0, 1.0 / np.sqrt(max(fan_in, 1)), shape)
        else:
            value = rng.normal(0.0, 0.1, shape)
        var.assign(value.astype(np.float32))


def prepare(names: list[str], out_dir: str) -> dict:
    """Build, randomize and save each model as ``.keras``; convert it (and, for image
    models, a ``--channels-first`` port). Returns what the PyTorch side needs to load them."""
    import codegen
    from codegen.read.keras_import import import_keras

    keras = import_keras()
    out = Path(out_dir)
    prepared = {}
    for name in names:
        builder, spec, image = MODELS[name]
        model = builder(keras)
        randomize(model)
        path = out / f"{name}.keras"
        model.save(path)
        variants = {"": False, "_cf": True} if image else {"": False}
        ports = {}
        for suffix, channels_first in variants.items():
            result = codegen.convert(
                model, out / f"{name}{suffix}", force=True, channels_first=channels_first
            )
            ports["channels_first" if channels_first else "keras_layout"] = {
                "dir": str(result.module_path.parent),
                "class": result.class_name,
            }
        prepared[name] = {
            "keras_file": str(path),
            "input": spec,
            "image": image,
            "layers": len(model.layers),
            "parameters": int(model.count_params()),
            "ports": ports,
        }
    return prepared


_loaded: dict = {}


def load(name: str, keras_file: str, spec: dict, batch: int) -> list:
    """Load the saved model, run it once; returns the output (for the parity check)."""
    from codegen.read.keras_import import import_keras

    keras = import_keras()
    key = (name, batch)
    if name not in {k[0] for k in _loaded}:
        model = keras.saving.load_model(keras_file, compile=False)
    else:
        model = next(m for (n, _), (m, _) in _loaded.items() if n == name)
    x = make_input(spec, batch)
    _loaded[key] = (model, x)
    return np.asarray(model.predict_on_batch(x)).tolist()


def run(name: str, batch: int, reps: int = 1, warm: float = 0.0) -> list[float]:
    """Seconds of each of ``reps`` calls, after untimed ones for ``warm`` seconds (one at
    least, when ``warm`` is set)."""
    model, x = _loaded[(name, batch)]
    times = []
    until = time.perf_counter() + warm
    while warm and (time.perf_counter() < until or not times):
        model.predict_on_batch(x)
        times.append(0.0)
    times.clear()
    for _ in range(reps):
        start = time.perf_counter()
        model.predict_on_batch(x)
        times.append(time.perf_counter() - start)
    return times


if __name__ == "__main__":
    serve({"prepare": prepare, "load": load, "run": run})

"""Build the bundled sample models and their generated ports, deterministically.

    python samples/build_samples.py           # rebuild .keras files and regenerate ports
    python samples/build_samples.py --ports   # only regenerate samples/<name>/model.py

Weights are random (seeded), BatchNorm statistics included, so the ports are checked on
non-trivial values. tests/test_samples.py regenerates every port and diffs it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

SAMPLES = Path(__file__).resolve().parent


def mnist_cnn(keras):
    """The porting guide's classifier: a hand port gets the kernel layout and Flatten order wrong."""
    layers = keras.layers
    return keras.Sequential(
        [
            keras.Input((28, 28, 1), name="image"),
            layers.Conv2D(32, (3, 3), activation="relu", name="conv"),
            layers.MaxPooling2D((2, 2), name="pool"),
            layers.Flatten(name="flatten"),
            layers.Dense(10, activation="softmax", name="classifier"),
        ],
        name="mnist_cnn",
    )


def bn_conv(keras):
    """The porting guide's second example: BatchNormalization then Conv2D."""
    layers = keras.layers
    return keras.Sequential(
        [
            keras.Input((28, 28, 1), name="image"),
            layers.BatchNormalization(name="input_norm"),
            layers.Conv2D(32, (3, 3), activation="relu", name="conv"),
        ],
        name="bn_conv",
    )


def small_resnet(keras):
    """A small residual network: stride-2 'same' convolutions on an odd-sized input."""
    layers = keras.layers

    def block(x, filters, stride, name):
        shortcut = x
        y = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False, name=f"{name}_conv1")(x)
        y = layers.BatchNormalization(epsilon=1.001e-5, name=f"{name}_bn1")(y)
        y = layers.ReLU(name=f"{name}_relu1")(y)
        y = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv2")(y)
        y = layers.BatchNormalization(epsilon=1.001e-5, name=f"{name}_bn2")(y)
        if stride != 1 or shortcut.shape[-1] != filters:
            shortcut = layers.Conv2D(filters, 1, strides=stride, use_bias=False, name=f"{name}_proj")(x)
            shortcut = layers.BatchNormalization(epsilon=1.001e-5, name=f"{name}_proj_bn")(shortcut)
        y = layers.Add(name=f"{name}_add")([shortcut, y])
        return layers.ReLU(name=f"{name}_out")(y)

    inputs = keras.Input((33, 33, 3), name="image")
    x = layers.Rescaling(1.0 / 255, name="rescale")(inputs)
    x = layers.Conv2D(16, 3, strides=2, padding="same", use_bias=False, name="stem_conv")(x)
    x = layers.BatchNormalization(epsilon=1.001e-5, name="stem_bn")(x)
    x = layers.ReLU(name="stem_relu")(x)
    x = block(x, 16, 1, "block1")
    x = block(x, 32, 2, "block2")
    x = block(x, 64, 2, "block3")
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = layers.Dropout(0.2, name="dropout")(x)
    outputs = layers.Dense(10, name="logits")(x)
    return keras.Model(inputs, outputs, name="small_resnet")


BUILDERS = {"mnist_cnn": mnist_cnn, "bn_conv": bn_conv, "small_resnet": small_resnet}


def randomize(model, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for var in model.weights:
        name = var.path.rsplit("/", 1)[-1]
        shape = tuple(var.shape)
        if "variance" in name or name == "gamma":
            value = rng.uniform(0.5, 1.5, size=shape)
        else:
            value = rng.normal(0.0, 0.3, size=shape)
        var.assign(value.astype(np.float32))


def model_path(name: str) -> Path:
    return SAMPLES / f"{name}.keras"


def port_source(name: str) -> str:
    """The generated model.py for sample ``name``, exactly as the CLI writes it."""
    from codegen.api import generate
    from codegen.read_keras import load_keras_file

    source = f"samples/{name}.keras"
    command = f"keras2torch convert {source} -o samples/{name}"
    model = load_keras_file(model_path(name))
    return generate(model, source=source, command=command).source


def build(only_ports: bool = False) -> None:
    from codegen.keras_import import import_keras

    keras = import_keras()
    for seed, (name, builder) in enumerate(BUILDERS.items()):
        if not only_ports:
            keras.utils.set_random_seed(seed)
            model = builder(keras)
            randomize(model, seed)
            model.save(model_path(name))
        out = SAMPLES / name
        out.mkdir(exist_ok=True)
        (out / "model.py").write_text(port_source(name))
        print(f"samples/{name}.keras -> samples/{name}/model.py")


if __name__ == "__main__":
    build(only_ports="--ports" in sys.argv[1:])

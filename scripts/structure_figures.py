"""Line counts of generated model.py files, --flat vs structured (the default), with parity.

    python scripts/structure_figures.py [NAME ...]

NAME is a keras.applications model (random weights, scaled by fan-in), a sample under
samples/ (its .keras file), or one of the models defined here as users write them, with
Keras's automatic names: ``unet`` (built by helper functions), ``vgg``,
``prenorm_encoder``. Prints a Markdown table: lines flat, lines structured, the block classes made (with
their instances), and max|Δ| / max|ref| of the structured port against Keras.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from applications import (  # noqa: E402
    convert_and_compare,
    randomize_scaled,
    without_initialisation,
)

from codegen.api import generate  # noqa: E402
from codegen.check.compare import keras_outputs, load_module_from_source  # noqa: E402
from codegen.read.keras_import import import_keras  # noqa: E402

DEFAULT = [
    "ResNet50",
    "MobileNetV2",
    "EfficientNetB0",
    "EfficientNetB7",
    "DenseNet121",
    "ConvNeXtTiny",
    "transformer_classifier",
    "small_resnet",
    "unet",
    "vgg",
    "prenorm_encoder",
]


def unet(keras):
    """A small U-Net built by helper functions, as users write one (automatic names)."""
    layers = keras.layers

    def double_conv(x, width):
        for _ in range(2):
            x = layers.Conv2D(width, 3, padding="same", use_bias=False)(x)
            x = layers.ReLU()(layers.BatchNormalization()(x))
        return x

    inputs = keras.Input((64, 64, 3))
    x, skips = inputs, []
    for width in (16, 32, 64, 128):
        x = double_conv(x, width)
        skips.append(x)
        x = layers.MaxPooling2D()(x)
    x = double_conv(x, 256)
    for width, skip in zip((128, 64, 32, 16), reversed(skips)):
        x = layers.Conv2DTranspose(width, 2, strides=2)(x)
        x = double_conv(layers.Concatenate()([skip, x]), width)
    return keras.Model(inputs, layers.Conv2D(2, 1)(x), name="unet")


def vgg(keras):
    """A VGG-style net: stages of two and of three convolutions, automatic names."""
    layers = keras.layers
    inputs = keras.Input((64, 64, 3))
    x = inputs
    for width, convs in ((16, 2), (32, 2), (64, 3), (128, 3), (128, 3)):
        for _ in range(convs):
            x = layers.Conv2D(width, 3, padding="same", activation="relu")(x)
        x = layers.MaxPooling2D()(x)
    x = layers.Dense(64, activation="relu")(layers.Flatten()(x))
    return keras.Model(inputs, layers.Dense(10)(x), name="vgg")


def prenorm_encoder(keras):
    """A pre-norm transformer encoder (four layers), written inline with automatic names."""
    layers = keras.layers
    inputs = keras.Input((16, 32))
    x = inputs
    for _ in range(4):
        h = layers.LayerNormalization()(x)
        x = layers.Add()([x, layers.MultiHeadAttention(num_heads=4, key_dim=8)(h, h)])
        h = layers.LayerNormalization()(x)
        h = layers.Dense(32)(layers.Dense(64, activation="gelu")(h))
        x = layers.Add()([x, h])
    x = layers.GlobalAveragePooling1D()(layers.LayerNormalization()(x))
    return keras.Model(inputs, layers.Dense(3)(x), name="prenorm_encoder")


BUILT_HERE = {"unet": unet, "vgg": vgg, "prenorm_encoder": prenorm_encoder}


def sample(keras, name: str) -> dict:
    if name in BUILT_HERE:
        model = BUILT_HERE[name](keras)
        randomize_scaled(model)
    else:
        model = keras.saving.load_model(ROOT / "samples" / f"{name}.keras", compile=False)
    flat = generate(model, structured=False, command="x")
    structured = generate(model, command="x")
    module = load_module_from_source(structured.source)
    net = getattr(module, structured.top.name)()
    net.load_state_dict(structured.state_dict, strict=True)
    net.eval()
    rng = np.random.default_rng(1)
    inputs = []
    for tensor in model.inputs:
        shape = [2 if d is None else d for d in tensor.shape]
        if "int" in str(tensor.dtype):
            inputs.append(rng.integers(0, 5, shape).astype(str(tensor.dtype)))
        else:
            inputs.append(rng.normal(size=shape).astype(np.float32))
    ref = keras_outputs(model, inputs)[0]
    with torch.no_grad():
        got = net(*[torch.from_numpy(x) for x in inputs])
    got = (got[0] if isinstance(got, tuple) else got).numpy()
    return dict(
        flat=flat.source,
        source=structured.source,
        max_abs=float(np.max(np.abs(got - ref))),
        max_ref=float(np.max(np.abs(ref))),
    )


def initialisation_lines(source: str) -> int:
    """Lines of reset_parameters() and the helpers only it calls."""
    return len(source.splitlines()) - len(without_initialisation(source).splitlines())


def main(names: list[str]) -> None:
    keras = import_keras()
    print(
        "| model | lines, flat | lines, structured | of which initialisation | block classes "
        "| max abs err / max abs ref |"
    )
    print("|---|---:|---:|---:|---|---:|")
    for name in names:
        if name in BUILT_HERE or (ROOT / "samples" / f"{name}.keras").exists():
            result = sample(keras, name)
            flat_lines = len(result["flat"].splitlines())
        else:
            result = convert_and_compare(keras, name, structured=True)
            flat_lines = len(convert_and_compare(keras, name)["source"].splitlines())
        source = result["source"]
        net = getattr(
            load_module_from_source(source), re.findall(r"^class (\w+)", source, re.M)[-1]
        )()
        blocks = []
        for cls in re.findall(r'^class (\w+)\(nn.Module\):\n    """A block', source, re.M):
            uses = sum(type(m).__name__ == cls for m in net.modules())
            blocks.append(f"{cls} ×{uses}")
        ratio = result["max_abs"] / max(1e-30, result["max_ref"])
        print(
            f"| {name} | {flat_lines} | {len(source.splitlines())} | "
            f"{initialisation_lines(source)} | {', '.join(blocks) or '—'} | {ratio:.1e} |"
        )


if __name__ == "__main__":
    main(sys.argv[1:] or DEFAULT)

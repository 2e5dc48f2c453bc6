"""Build the bundled sample models and their generated ports, deterministically.

    python samples/build_samples.py           # rebuild .keras files and regenerate ports
    python samples/build_samples.py --ports   # only regenerate samples/<name>/model.py
    python samples/build_samples.py NAME...   # only these samples

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


def text_classifier(keras):
    """Embedding(mask_zero=True) -> Bidirectional(LSTM) -> Dense: padded steps are skipped."""
    layers = keras.layers
    inputs = keras.Input((None,), dtype="int32", name="tokens")
    x = layers.Embedding(TEXT_VOCAB, 32, mask_zero=True, name="embedding")(inputs)
    x = layers.Bidirectional(layers.LSTM(24), name="bilstm")(x)
    x = layers.Dropout(0.3, name="dropout")(x)
    outputs = layers.Dense(4, activation="softmax", name="classifier")(x)
    return keras.Model(inputs, outputs, name="text_classifier")


def crnn_ocr(keras):
    """A CRNN for OCR: convolutions over a 32x128 text line, then one step per column."""
    layers = keras.layers
    inputs = keras.Input((32, 128, 1), name="image")
    x = layers.Conv2D(32, 3, padding="same", activation="relu", name="conv1")(inputs)
    x = layers.MaxPooling2D(2, name="pool1")(x)  # 16 x 64
    x = layers.Conv2D(64, 3, padding="same", activation="relu", name="conv2")(x)
    x = layers.MaxPooling2D(2, name="pool2")(x)  # 8 x 32
    x = layers.Conv2D(64, 3, padding="same", use_bias=False, name="conv3")(x)
    x = layers.BatchNormalization(name="bn3")(x)
    x = layers.ReLU(name="relu3")(x)
    x = layers.MaxPooling2D((2, 1), name="pool3")(x)  # 4 x 32: the width is the time axis
    x = layers.Permute((2, 1, 3), name="columns")(x)  # (32 steps, 4 rows, 64 channels)
    x = layers.Reshape((32, 4 * 64), name="features")(x)
    x = layers.Bidirectional(layers.GRU(48, return_sequences=True), name="bigru")(x)
    outputs = layers.TimeDistributed(
        layers.Dense(37, activation="softmax"), name="characters"  # 36 symbols + CTC blank
    )(x)
    return keras.Model(inputs, outputs, name="crnn_ocr")


def transformer_classifier(keras):
    """A small transformer encoder; token and position embeddings written with keras.ops."""
    layers, ops = keras.layers, keras.ops
    dim, heads = 32, 4
    tokens = keras.Input((TRANSFORMER_LENGTH,), dtype="int32", name="tokens")
    # Positions computed from the tokens keep the position embedding a layer of the model:
    # `position_embedding(ops.arange(length))` would freeze its table into a constant.
    positions = ops.cumsum(ops.ones_like(tokens), axis=1) - 1  # 0, 1, ..., length - 1
    x = layers.Embedding(TRANSFORMER_VOCAB, dim, name="token_embedding")(tokens)
    x = x + layers.Embedding(TRANSFORMER_LENGTH, dim, name="position_embedding")(positions)
    for i in (1, 2):
        attention = layers.MultiHeadAttention(
            heads, dim // heads, dropout=0.1, name=f"block{i}_attention"
        )(x, x)
        x = layers.LayerNormalization(epsilon=1e-6, name=f"block{i}_norm1")(x + attention)
        y = layers.Dense(64, activation="relu", name=f"block{i}_ffn1")(x)
        y = layers.Dense(dim, name=f"block{i}_ffn2")(y)
        y = layers.Dropout(0.1, name=f"block{i}_dropout")(y)
        x = layers.LayerNormalization(epsilon=1e-6, name=f"block{i}_norm2")(x + y)
    x = layers.GlobalAveragePooling1D(name="pool")(x)
    x = layers.Dropout(0.1, name="dropout")(x)
    outputs = layers.Dense(2, activation="softmax", name="classifier")(x)
    return keras.Model(tokens, outputs, name="transformer_classifier")


def seq2seq_autoencoder(keras):
    """LSTM encoder -> RepeatVector -> LSTM decoder -> TimeDistributed(Dense)."""
    layers = keras.layers
    steps, features = 30, 3
    inputs = keras.Input((steps, features), name="series")
    x = layers.LSTM(32, name="encoder")(inputs)
    x = layers.RepeatVector(steps, name="repeat")(x)
    x = layers.LSTM(32, return_sequences=True, name="decoder")(x)
    outputs = layers.TimeDistributed(layers.Dense(features), name="reconstruction")(x)
    return keras.Model(inputs, outputs, name="seq2seq_autoencoder")


TEXT_VOCAB = 1000
TRANSFORMER_VOCAB, TRANSFORMER_LENGTH = 200, 24

BUILDERS = {
    "mnist_cnn": mnist_cnn,
    "bn_conv": bn_conv,
    "small_resnet": small_resnet,
    "text_classifier": text_classifier,
    "crnn_ocr": crnn_ocr,
    "transformer_classifier": transformer_classifier,
    "seq2seq_autoencoder": seq2seq_autoencoder,
}


def padded_tokens(rng, batch: int, length: int, vocab: int) -> np.ndarray:
    """Token ids in [1, vocab) padded with zeros: sequences of different real lengths, padded
    on the right, except every third one, padded on the left; the first is never padded."""
    ids = rng.integers(1, vocab, size=(batch, length))
    for row in range(1, batch):
        real = int(rng.integers(1, length))
        if row % 3 == 2:
            ids[row, : length - real] = 0
        else:
            ids[row, real:] = 0
    return ids.astype(np.int32)


def sample_inputs(name: str, batch: int, seed: int = 1) -> list[np.ndarray] | None:
    """Inputs a sample's port is checked on where random floats or ids in [0, 10) would not be
    valid or telling (token ids, padding); None for the other samples."""
    rng = np.random.default_rng(seed + batch)
    if name == "text_classifier":
        ids = padded_tokens(rng, batch, 40, TEXT_VOCAB)
        if batch == 1:
            ids[0, 25:] = 0  # a padded single sequence too
        return [ids]
    if name == "transformer_classifier":
        ids = rng.integers(0, TRANSFORMER_VOCAB, size=(batch, TRANSFORMER_LENGTH))
        return [ids.astype(np.int32)]
    return None


# Spread of the random weights; the CRNN's deep convolutions over a 32x128 image would grow
# its activations (and float32 rounding) far beyond a trained network's with 0.3.
WEIGHT_SCALE = {"crnn_ocr": 0.1}


def randomize(model, seed: int, scale: float = 0.3) -> None:
    rng = np.random.default_rng(seed)
    for var in model.weights:
        name = var.path.rsplit("/", 1)[-1]
        shape = tuple(var.shape)
        if "variance" in name or name == "gamma":
            value = rng.uniform(0.5, 1.5, size=shape)
        else:
            value = rng.normal(0.0, scale, size=shape)
        var.assign(value.astype(np.float32))


def model_path(name: str) -> Path:
    return SAMPLES / f"{name}.keras"


def port_source(name: str) -> str:
    """The generated model.py for sample ``name``, exactly as the CLI writes it."""
    from codegen.api import generate
    from codegen.read.from_keras import load_keras_file

    source = f"samples/{name}.keras"
    command = f"keras2torch convert {source} -o samples/{name}"
    model = load_keras_file(model_path(name))
    return generate(model, source=source, command=command).source


def build(only_ports: bool = False, names=()) -> None:
    from codegen.read.keras_import import import_keras

    keras = import_keras()
    for seed, (name, builder) in enumerate(BUILDERS.items()):
        if names and name not in names:
            continue
        if not only_ports:
            keras.utils.set_random_seed(seed)
            model = builder(keras)
            randomize(model, seed, WEIGHT_SCALE.get(name, 0.3))
            model.save(model_path(name))
        out = SAMPLES / name
        out.mkdir(exist_ok=True)
        (out / "model.py").write_text(port_source(name))
        print(f"samples/{name}.keras -> samples/{name}/model.py")


if __name__ == "__main__":
    args = sys.argv[1:]
    build(only_ports="--ports" in args, names=[a for a in args if not a.startswith("-")])

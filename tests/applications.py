"""Converting keras.applications models: shared by the tests and the sweep script."""

from __future__ import annotations

import re
import time

import numpy as np
import torch

# Every keras.applications architecture in Keras 3.15, with an input size that is odd and
# non-square where the architecture allows it (None keeps the default).
APPLICATIONS = {
    "ConvNeXtBase": (97, 129),
    "ConvNeXtLarge": (97, 129),
    "ConvNeXtSmall": (97, 129),
    "ConvNeXtTiny": (97, 129),
    "ConvNeXtXLarge": (97, 129),
    "DenseNet121": (97, 129),
    "DenseNet169": (97, 129),
    "DenseNet201": (97, 129),
    "EfficientNetB0": (97, 129),
    "EfficientNetB1": (97, 129),
    "EfficientNetB2": (97, 129),
    "EfficientNetB3": (97, 129),
    "EfficientNetB4": (97, 129),
    "EfficientNetB5": (97, 129),
    "EfficientNetB6": (97, 129),
    "EfficientNetB7": (97, 129),
    "EfficientNetV2B0": (97, 129),
    "EfficientNetV2B1": (97, 129),
    "EfficientNetV2B2": (97, 129),
    "EfficientNetV2B3": (97, 129),
    "EfficientNetV2L": (97, 129),
    "EfficientNetV2M": (97, 129),
    "EfficientNetV2S": (97, 129),
    "InceptionResNetV2": (97, 129),
    "InceptionV3": (97, 129),
    "MobileNet": (97, 129),
    "MobileNetV2": (97, 129),
    "MobileNetV3Large": (97, 129),
    "MobileNetV3Small": (97, 129),
    "NASNetLarge": None,
    "NASNetMobile": None,  # NASNet's cell alignment needs its own sizes
    "ResNet101": (97, 129),
    "ResNet101V2": (97, 129),
    "ResNet152": (97, 129),
    "ResNet152V2": (97, 129),
    "ResNet50": (97, 129),
    "ResNet50V2": (97, 129),
    "VGG16": (97, 129),
    "VGG19": (97, 129),
    "Xception": (97, 129),
}


def build(keras, name: str):
    builder = getattr(keras.applications, name)
    size = APPLICATIONS[name]
    kwargs = dict(weights=None, classifier_activation=None)
    if size is not None:
        kwargs["input_shape"] = (*size, 3)
    return builder(**kwargs)


def randomize_scaled(model, seed: int = 0) -> None:
    """Random weights that keep activations O(1) through deep networks (fan-in scaling)."""
    rng = np.random.default_rng(seed)
    for layer in model._flatten_layers(include_self=False, recursive=True):
        for var in layer._trainable_variables + layer._non_trainable_variables:
            shape = tuple(var.shape)
            name = var.path.rsplit("/", 1)[-1]
            if "int" in str(var.dtype):
                continue
            if "variance" in name:
                value = rng.uniform(0.5, 1.5, shape)
            elif name == "gamma" and len(shape) == 1 and type(layer).__name__ != "LayerScale":
                value = rng.uniform(0.5, 1.5, shape)
            elif name in ("beta", "bias", "moving_mean", "mean", "gamma"):
                value = rng.normal(0.0, 0.1, shape)
            elif len(shape) >= 2:
                if "depthwise" in name or type(layer).__name__.startswith("Depthwise"):
                    fan_in = int(np.prod(shape[:-2]))
                else:
                    fan_in = int(np.prod(shape[:-1]))
                value = rng.normal(0.0, 1.0 / np.sqrt(max(fan_in, 1)), shape)
            else:
                value = rng.normal(0.0, 0.1, shape)
            var.assign(value.astype(np.float32))


def convert_and_compare(
    keras, name: str, batch: int = 2, seed: int = 0, structured: bool = False
) -> dict:
    """Build, randomize, convert in memory, load strictly; returns figures for the report."""
    from codegen.api import generate
    from codegen.check.compare import keras_outputs, load_module_from_source

    model = build(keras, name)
    randomize_scaled(model, seed)
    start = time.perf_counter()
    generated = generate(model, structured=structured)
    seconds = time.perf_counter() - start
    module = load_module_from_source(generated.source)
    net = getattr(module, generated.top.name)()
    net.load_state_dict(generated.state_dict, strict=True)
    net.eval()
    shape = [batch, *model.input_shape[1:]]
    shape = [37 if d is None else d for d in shape]
    x = np.random.default_rng(seed + 1).normal(size=shape).astype(np.float32)
    ref = keras_outputs(model, [x])[0]
    with torch.no_grad():
        got = net(torch.from_numpy(x)).numpy()
    n_params = sum(
        v.numel() for k, v in generated.state_dict.items() if not k.endswith("num_batches_tracked")
    )
    return dict(
        name=name,
        parameters=model.count_params(),
        torch_parameters=n_params,
        seconds=seconds,
        max_abs=float(np.max(np.abs(got - ref))),
        max_ref=float(np.max(np.abs(ref))),
        shape_ok=got.shape == ref.shape,
        source=generated.source,
    )


def without_initialisation(source: str) -> str:
    """model.py without reset_parameters() and the helpers only it calls (issue 13's
    initializers, about the same in the flat and the structured form)."""
    source = re.sub(
        r"\n    @torch.no_grad\(\)\n    def reset_parameters\(self\).*?(?=\n    (?:@|def )|\Z)",
        "",
        source,
        flags=re.S,
    )
    source = re.sub(r"\n\n\ndef (variance_scaling_|fans)\(.*?(?=\n\n\n)", "", source, flags=re.S)
    if not re.search(r"\bmath\.", source.split("import math\n", 1)[-1]):
        source = source.replace("import math\n\n", "", 1)  # imported for variance_scaling_
    return source

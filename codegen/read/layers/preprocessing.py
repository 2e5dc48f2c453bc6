"""Preprocessing layers a trained model carries: Rescaling, Normalization and the random
augmentation layers (CenterCrop and Resizing are in ``spatial.py``)."""

from __future__ import annotations

from ..shapes import rule
from ..stored_weights import no_variables, variables_rule
from ._shape_helpers import same_shape
from ._variable_helpers import own

# Keras 3.15 random augmentation layers: they only act in training (checked: identity at
# inference), so a port keeps them as nn.Identity.
AUGMENTATION_LAYERS = (
    "AugMix",
    "CutMix",
    "MixUp",
    "RandAugment",
    "RandomBrightness",
    "RandomColorDegeneration",
    "RandomColorJitter",
    "RandomContrast",
    "RandomCrop",
    "RandomElasticTransform",
    "RandomErasing",
    "RandomFlip",
    "RandomGaussianBlur",
    "RandomGrayscale",
    "RandomHue",
    "RandomInvert",
    "RandomPerspective",
    "RandomPosterization",
    "RandomRotation",
    "RandomSaturation",
    "RandomSharpness",
    "RandomShear",
    "RandomTranslation",
    "RandomZoom",
    "Solarization",
)

# RandomCrop changes the shape: its rule is Resizing's, in spatial.py.
rule("Rescaling", "Normalization", *(n for n in AUGMENTATION_LAYERS if n != "RandomCrop"))(
    same_shape
)


@variables_rule("Normalization")
def _normalization_variables(class_name: str, c: dict):
    if c.get("mean") is not None:
        return []
    return own(["mean", "variance", "count"], trainable=False)


no_variables("Rescaling", *AUGMENTATION_LAYERS)

# Keras 3 records ``training=True`` in each call of an augmentation layer.
TRAINING_DEFAULTS = {name: True for name in AUGMENTATION_LAYERS}
KEEPS_MASK = frozenset({"Normalization", "Rescaling"})

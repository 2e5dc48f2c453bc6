"""Core layers: InputLayer, Dense, Identity, ActivityRegularization, the dropout and noise
layers, and Lambda (read, never run: reported as unsupported)."""

from __future__ import annotations

from ..shapes import ShapeError, Site, compute_dtype, rule
from ..stored_weights import no_variables, variables_rule
from ._shape_helpers import out, same_shape_keep_dtype
from ._variable_helpers import frozen_kernel, lora, own, reject_quantized, with_bias

# Layers whose output in training mode is random (at inference: the identity).
STOCHASTIC_LAYERS = (
    "Dropout",
    "SpatialDropout1D",
    "SpatialDropout2D",
    "SpatialDropout3D",
    "GaussianNoise",
    "GaussianDropout",
    "AlphaDropout",
)

rule("Identity", "ActivityRegularization", *STOCHASTIC_LAYERS)(same_shape_keep_dtype)


@rule("InputLayer")
def _input(site: Site):
    cfg = site.config
    shape = cfg.get("batch_shape") or cfg.get("batch_input_shape")
    if shape is None:
        raise ShapeError("InputLayer without batch_shape")
    dtype = cfg.get("dtype") or "float32"
    if isinstance(dtype, dict):
        dtype = compute_dtype(dtype)
    return [(tuple(shape), str(dtype))]


@rule("Dense")
def _dense(site: Site):
    return out(site, site.x[:-1] + (int(site.config["units"]),))


# -- stored variables ---------------------------------------------------------------------------
@variables_rule("Dense")
def _dense_variables(class_name: str, c: dict):
    reject_quantized(class_name, c)
    return frozen_kernel(own(with_bias(["kernel"], c)), c) + lora(c)


no_variables("InputLayer", "Identity", "ActivityRegularization", "Lambda", *STOCHASTIC_LAYERS)

# -- masks and training -------------------------------------------------------------------------
# Keras 3 records ``training`` in each call where call()'s default is not None.
TRAINING_DEFAULTS = {name: False for name in STOCHASTIC_LAYERS}
KEEPS_MASK = frozenset({"Dense", "Identity", "ActivityRegularization", *STOCHASTIC_LAYERS})

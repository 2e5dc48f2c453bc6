"""tf.keras TensorFlow-op layers (``TFOpLambda``, ``SlicingOpLambda``, ``TensorFlowOpLayer``):
the file reader turns the first two into keras.ops operations (:mod:`codegen.read.tf_functions`),
so they have no shape rule of their own; none holds variables. (The rule of
``ops.Logsumexp``, which ``tf.reduce_logsumexp`` becomes, is the reduction rule in
``ops.py``.) ``ops.argmax``/``ops.argmin`` (``tf.math.argmax``/``argmin``), ``ops.top_k``, ``ops.one_hot`` and
``ops.pad`` (``tf.math.top_k``, ``tf.one_hot``, ``tf.pad``) are here."""

from __future__ import annotations

from ..shapes import Site, compute_dtype, op_rule
from ..stored_weights import no_variables
from .ops import _reduce_shape


@op_rule("Argmax", "Argmin")
def _arg_reduction(site: Site):
    cfg = site.config
    shape = _reduce_shape(site.x, cfg.get("axis"), bool(cfg.get("keepdims", False)))
    return [(shape, "int32")]  # Keras's index dtype on every backend


no_variables("TFOpLambda", "SlicingOpLambda", "TensorFlowOpLayer")


@op_rule("TopK")
def _top_k(site: Site):
    shape = (*site.x[:-1], int(site.config["k"]))
    return [(shape, site.x_dtype), (shape, "int32")]


@op_rule("OneHot")
def _one_hot(site: Site):
    cfg = site.config
    axis = int(cfg.get("axis", -1))
    out = list(site.x)
    out.insert(len(out) if axis == -1 else axis, int(cfg["num_classes"]))
    dtype = cfg.get("dtype")
    if isinstance(dtype, dict):
        dtype = compute_dtype(dtype)
    return [(tuple(out), "float32" if dtype is None else str(dtype))]


@op_rule("Pad")
def _pad(site: Site):
    widths = site.config["pad_width"]
    if len(widths) == 1:  # one (before, after) pair for every axis
        widths = list(widths) * len(site.x)
    out = tuple(
        None if d is None else d + int(before) + int(after)
        for d, (before, after) in zip(site.x, widths)
    )
    return [(out, site.x_dtype)]

"""tf.keras TensorFlow-op layers (``TFOpLambda``, ``SlicingOpLambda``, ``TensorFlowOpLayer``):
the file reader turns the first two into keras.ops operations (:mod:`codegen.read.tf_functions`),
so they have no shape rule of their own; none holds variables. (The rule of
``ops.Logsumexp``, which ``tf.reduce_logsumexp`` becomes, is the reduction rule in
``ops.py``.) ``ops.argmax``/``ops.argmin`` (``tf.math.argmax``/``argmin``) are here."""

from __future__ import annotations

from ..shapes import Site, op_rule
from ..stored_weights import no_variables
from .ops import _reduce_shape


@op_rule("Argmax", "Argmin")
def _arg_reduction(site: Site):
    cfg = site.config
    shape = _reduce_shape(site.x, cfg.get("axis"), bool(cfg.get("keepdims", False)))
    return [(shape, "int32")]  # Keras's index dtype on every backend


no_variables("TFOpLambda", "SlicingOpLambda", "TensorFlowOpLayer")

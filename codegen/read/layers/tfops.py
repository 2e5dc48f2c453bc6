"""tf.keras TensorFlow-op layers (``TFOpLambda``, ``SlicingOpLambda``, ``TensorFlowOpLayer``):
the file reader turns the first two into keras.ops operations (:mod:`codegen.read.tf_functions`),
so they have no shape rule of their own; none holds variables. (The rule of
``ops.Logsumexp``, which ``tf.reduce_logsumexp`` becomes, is the reduction rule in
``ops.py``.)"""

from __future__ import annotations

from ..stored_weights import no_variables

no_variables("TFOpLambda", "SlicingOpLambda", "TensorFlowOpLayer")

"""Reading: a live ``keras.Model``, a ``.keras`` zip or a legacy ``.h5`` in, a
:class:`~codegen.ir.graph.Graph` out.

- ``paths``: which reader a file gets (TensorFlow-free first, Keras where needed) and the
  reference model verification runs.
- ``from_keras``: a live Keras 3 model (or a file through Keras's safe loader).
- ``from_file``: any model file with h5py/zipfile alone, no TensorFlow (its weights:
  ``file_weights``; its call order, Keras's: ``graph_order``).
- ``formats``, ``legacy_config``: what a file holds; configs of every Keras era, normalised.
- ``shapes``: the shape-inference engine; ``stored_weights``: reading variables from files.
- ``layers/``: facts per Keras layer family (shape rules, stored variables, masks), mirroring
  ``codegen/conversion/layers/``.
- ``tf_functions``: tf.keras ``TFOpLambda`` nodes as keras.ops operations (``file_ops``:
  the file reader's layers that become operations).
- ``lambda_layer``: a ``Lambda``'s bytecode, never run, as those operations: the payload read
  as data (``lambda_payload``, with xdis), decoded (``lambda_bytecode``), evaluated
  symbolically (``lambda_eval``, calls by ``lambda_functions``); live models' Lambdas
  (``lambda_live``).
- ``standins``, ``keras_import``: loading with Keras without its noise or missing classes.

A new reader is one module here that returns a ``Graph``.
"""

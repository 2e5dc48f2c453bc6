"""Conversion: a :class:`~codegen.ir.graph.Graph` in, class models (declarations, forward
statements, weights) out.

- ``registry``: which converter ports which Keras class; :class:`Registry` per conversion.
- ``pipeline``: assembles that registry (built-ins, plugins, skeleton fallback).
- ``engine``: builds one :class:`ClassModel` per model class, calling converters.
- ``context``: :class:`CallContext`, all a converter may see and do.
- ``model``: the data handed to rendering (``ClassModel``, ``Statement``, ``WeightEntry``).
- ``statements``: placeholders, alias dropping, inlining of keras.ops calls.
- ``layers/``: the built-in converters, one module per Keras layer family.
- ``plugins``, ``skeleton``: user converters, and modules to finish by hand.
- ``weights``, ``dtypes``, ``helpers``: weight transforms, dtype names, helper templates.
"""

"""The intermediate form every stage shares: a Keras model reduced to plain data.

- ``graph``: :class:`Graph` (layers, calls, tensors with Keras shapes and dtypes, nested
  graphs), what every reader produces and the converter consumes.
- ``layout``: :class:`Layout`, how a torch tensor's axes relate to the Keras tensor's.
- ``naming``: one namespace turning names from the file into safe Python identifiers.

Imports nothing from the other stages.
"""

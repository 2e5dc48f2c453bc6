"""Structure recovery (``--structured``): repeated sub-graphs become block classes, chains of
blocks ``nn.Sequential`` stages.

Enters: a :class:`~codegen.ir.graph.Graph` (and the converter registry). Leaves: a converted
:class:`~codegen.conversion.model.Session` whose classes a person would have written.

- ``blocks``: segments between cut tensors, signatures up to what varies, repeating units,
  block kinds (found from the graph's structure; names only break ties and label).
- ``group``: each instance of a kind as a nested graph the engine converts, with short
  attribute names.
- ``unify``: the instance classes of a kind merged into one, what varies as constructor
  arguments.
- ``stages``: runs of blocks as ``nn.Sequential`` stages; weight keys follow the module tree.
- ``pipeline``: all of it, falling back to the flat form for kinds that cannot be merged.
"""

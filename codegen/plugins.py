"""The plugin API: everything a converter for your own Keras layer needs, from one place.

See ``docs/converters.md``::

    from codegen.plugins import CallContext, helper, register

    @register("MyCustomLayer")
    def my_custom_layer(call, ctx: CallContext) -> None:
        ...

The implementation lives in :mod:`codegen.conversion`; this module is the stable surface.
"""

from .conversion import plugins as _implementation
from .conversion.plugins import *  # noqa: F403  (what a converter needs: see its __all__)
from .conversion.plugins import activate, forget, load_plugin, lookup, use, using

__all__ = [
    *_implementation.__all__,
    "activate",
    "forget",
    "load_plugin",
    "lookup",
    "use",
    "using",
]

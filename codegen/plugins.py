"""The plugin API: everything a converter for your own Keras layer needs, from one place.

See ``docs/converters.md``::

    from codegen.plugins import CallContext, helper, register

    @register("MyCustomLayer")
    def my_custom_layer(call, ctx: CallContext) -> None:
        ...

The implementation lives in :mod:`codegen.conversion`; this module is the stable surface.
"""

from .conversion.plugins import *  # noqa: F401,F403
from .conversion.plugins import (  # noqa: F401
    __all__,
    activate,
    deactivate,
    forget,
    load_plugin,
    lookup,
    owner,
    use,
    using,
)

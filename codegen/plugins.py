"""The plugin API: everything a converter for your own Keras layer needs, from one place.

See ``docs/converters.md``::

    from codegen.plugins import CallContext, helper, register

    @register("MyCustomLayer")
    def my_custom_layer(call, ctx: CallContext) -> None:
        ...

The implementation lives in :mod:`codegen.conversion`; this module is the stable surface.
"""

from .conversion.plugins import (
    AGNOSTIC,
    KERAS,
    SPATIAL,
    CallContext,
    Layout,
    Unsupported,
    activate,
    channels_first,
    forget,
    helper,
    keras_order,
    keras_variables,
    load_plugin,
    lookup,
    native_layout,
    register,
    use,
    using,
)

__all__ = [
    "AGNOSTIC",
    "KERAS",
    "SPATIAL",
    "CallContext",
    "Layout",
    "Unsupported",
    "activate",
    "channels_first",
    "forget",
    "helper",
    "keras_order",
    "keras_variables",
    "load_plugin",
    "lookup",
    "native_layout",
    "register",
    "use",
    "using",
]

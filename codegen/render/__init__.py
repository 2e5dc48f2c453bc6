"""Rendering: class models in (:mod:`codegen.conversion.model`), files out.

- ``source``: Jinja2 templates -> Python source -> black -> ``compile()`` check.
- ``templates``: the Jinja2 environment (templates ship inside the wheel).
- ``safety``: last checks that nothing unsafe from the file reaches the code.
- ``write``: atomic writes that never clobber a file the user edited.
- ``weights``: the state_dict as ``model.pt`` or ``model.safetensors``, and read back.
"""

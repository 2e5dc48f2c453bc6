"""The use cases, each running the stages in order: convert, verify, inspect.

Enters: what a user asks for (a model or a path, an output folder, options, plugins).
Leaves: files written atomically and a result object; :mod:`codegen.api` and
:mod:`codegen.cli` are thin layers over it.
"""

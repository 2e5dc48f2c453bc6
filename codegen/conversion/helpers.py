"""Small functions and modules emitted into ``model.py`` only when a converter needs them.

Each lives in ``templates/helpers/<name>.py.j2`` so the generated file stays standalone.
"""

from pathlib import Path

from codegen.resources import template_dirs

# Helpers that call other helpers.
DEPENDENCIES: dict[str, tuple[str, ...]] = {
    "pad_same": ("same_padding",),
}


def is_builtin_helper(name: str) -> bool:
    """Whether ``name`` is one of the helper templates shipped with keras2torch."""
    return any((Path(d) / "helpers" / f"{name}.py.j2").exists() for d in template_dirs())

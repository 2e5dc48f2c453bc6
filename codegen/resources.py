"""Where the Jinja2 templates are: inside the installed wheel, or the source tree's ``templates/``.

A leaf module: the renderer loads templates from here, and the converter side asks it which
helper names are built in.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path


@cache
def template_dirs() -> tuple[str, ...]:
    dirs = []
    try:  # installed wheel: templates ship as package data under codegen/templates
        packaged = resources.files("codegen") / "templates"
        if packaged.is_dir():
            dirs.append(str(packaged))
    except (ModuleNotFoundError, TypeError):
        pass
    source_tree = Path(__file__).resolve().parent.parent / "templates"
    if source_tree.is_dir():
        dirs.append(str(source_tree))
    return tuple(dirs)

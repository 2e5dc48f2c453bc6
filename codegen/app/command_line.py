"""The "regenerate with" command line a generated file records, written and read back.

``keras2torch verify`` reads the options a conversion used (class name, layout, reader,
weights format) from the header of the ``model.py`` it checks; both directions live here so
they cannot drift.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path


def regenerate_command(
    source: str,
    out_dir: Path,
    class_name: str | None,
    channels_first: bool,
    reader: str | None = None,
    structured: bool = True,
    weights_format: str = "pt",
) -> str:
    parts = ["keras2torch", "convert", shlex.quote(source), "-o", shlex.quote(str(out_dir))]
    if class_name:
        parts += ["--class-name", shlex.quote(class_name)]
    if channels_first:
        parts.append("--channels-first")
    if reader:
        parts += ["--reader", reader]
    if not structured:
        parts.append("--flat")
    if weights_format != "pt":
        parts += ["--weights-format", weights_format]
    return " ".join(parts)


def detect_options(source: str) -> dict:
    """The options (``class_name``, ``channels_first``, ``reader``, ``structured``,
    ``weights_format``) the "regenerate with" line of a generated file records."""
    options: dict = {}
    match = re.search(r"regenerate with:\s*\n\s*(keras2torch convert[^\n]*)", source)
    if not match:
        return options
    try:
        words = shlex.split(match.group(1))
    except ValueError:
        return options
    if "--channels-first" in words:
        options["channels_first"] = True
    if "--flat" in words:
        options["structured"] = False
    if "--reader" in words:
        i = words.index("--reader")
        if i + 1 < len(words) and words[i + 1] in ("file", "keras"):
            options["reader"] = words[i + 1]
    if "--weights-format" in words:
        i = words.index("--weights-format")
        if i + 1 < len(words) and words[i + 1] in ("pt", "safetensors"):
            options["weights_format"] = words[i + 1]
    if "--class-name" in words:
        i = words.index("--class-name")
        if i + 1 < len(words) and words[i + 1].isidentifier():
            options["class_name"] = words[i + 1]
    return options

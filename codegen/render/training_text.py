"""Text the training methods share: attribute paths, comments, method bodies."""

from __future__ import annotations

import re

from codegen.conversion.model import WeightEntry
from codegen.conversion.training import option_config, option_name
from codegen.ir.naming import comment_text


def attribute(key: str) -> str:
    """``self.stages[0].conv1.weight`` for the state_dict key ``stages.0.conv1.weight``."""
    text = "self"
    for part in key.split("."):
        text += f"[{part}]" if part.isdigit() else f".{part}"
    return text


def label(entry: WeightEntry) -> str:
    return comment_text(f"{entry.keras_layer} {entry.keras_variable}")


def safely(write, *args) -> list[str] | None:
    """The lines ``write`` makes, or None where the config holds what no code should carry
    (a value that is not a number, nan, inf): the option is then reported as not ported."""
    try:
        lines = write(*args)
    except (TypeError, ValueError, OverflowError):
        return None
    if lines is not None and any(re.search(r"\b(nan|inf)\b", line) for line in lines):
        return None
    return lines


# Keras 3 names for what earlier versions serialized under other class names.
_CANONICAL_NAMES = {"OrthogonalInitializer": "Orthogonal"}


_ORDER = {
    k: i
    for i, k in enumerate(
        ("scale", "mode", "distribution", "mean", "stddev", "minval", "maxval", "value", "gain")
        + ("l1", "l2", "factor", "max_value", "min_value", "rate", "axis")
    )
}


def describe(option) -> str:
    name = option_name(option)
    # "GlorotUniformV2" (TF 2.x) is GlorotUniform.
    name = _CANONICAL_NAMES.get(name, re.sub(r"(?<=[a-z])V2$", "", name))
    cfg = {k: v for k, v in option_config(option).items() if v is not None and k != "seed"}
    # Keras 3's argument order, whatever order the file's config has
    cfg = dict(sorted(cfg.items(), key=lambda kv: (_ORDER.get(kv[0], len(_ORDER)), kv[0])))
    return f"{name}({', '.join(f'{k}={v!r}' for k, v in cfg.items())})" if cfg else name


def method(signature: str, doc: str, body: list[str], no_grad: bool = False) -> str:
    lines = ["    @torch.no_grad()"] if no_grad else []
    lines += [f"    {signature}", f"        {doc}"]
    lines += [f"        {line}" for line in body]
    return "\n".join(lines)

"""One namespace turns names from the model file into safe, unique Python identifiers."""

from __future__ import annotations

import builtins
import keyword
import re
import unicodedata

import torch.nn as nn

MAX_LENGTH = 48

# Attributes an nn.Module already has: a submodule named like one would break the module.
MODULE_MEMBERS = frozenset(dir(nn.Module)) | {"training", "forward"}
# Names the generated file itself uses.
FILE_NAMES = frozenset({"torch", "nn", "F", "math", "self", "x", "super"})


def to_identifier(raw: str, fallback: str = "layer") -> str:
    """A lower_snake identifier made only of ASCII letters, digits and underscores."""
    text = unicodedata.normalize("NFKD", str(raw)).encode("ascii", "ignore").decode()
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", text).lower()
    text = re.sub(r"[^a-z0-9_]+", "_", text).strip("_")
    text = re.sub(r"_+", "_", text)[:MAX_LENGTH].rstrip("_")
    if not text:
        text = fallback
    if text and text[0].isdigit():
        text = f"{fallback}_{text}"
    return text


def to_class_name(raw: str, fallback: str = "KerasModel") -> str:
    parts = to_identifier(raw, fallback="").split("_")
    name = "".join(p[:1].upper() + p[1:] for p in parts if p)
    if not name or not name[0].isalpha():
        name = fallback + name
    return name


def keras_snake_case(name: str) -> str:
    """Keras's ``to_snake_case``: the name Keras gives a layer of class ``name`` nobody named
    (``MaxPooling2D`` -> ``max_pooling2d``, then ``_1``, ``_2``...)."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def own_class_name(name: str | None) -> str | None:
    """A Keras class name kept as it is (``GPT2Backbone``) where it is a plain identifier."""
    if name and name.isidentifier() and name.isascii() and name[0].isupper():
        return name
    return to_class_name(name) if name else None


class Namespace:
    """Hands out identifiers that are unique here and clash with nothing reserved."""

    def __init__(self, reserved=()) -> None:
        self.taken: set[str] = set(reserved)
        self.by_key: dict[object, str] = {}

    def name(self, raw: str, key: object = None, fallback: str = "layer") -> str:
        if key is not None and key in self.by_key:
            return self.by_key[key]
        base = to_identifier(raw, fallback)
        candidate = base
        if keyword.iskeyword(candidate) or keyword.issoftkeyword(candidate):
            candidate = base = base + "_"
        counter = 1
        while candidate in self.taken or hasattr(builtins, candidate):
            candidate = f"{base}_{counter}"
            counter += 1
        self.taken.add(candidate)
        if key is not None:
            self.by_key[key] = candidate
        return candidate

    def reserve(self, name: str) -> None:
        self.taken.add(name)


def attribute_namespace() -> Namespace:
    return Namespace(MODULE_MEMBERS | FILE_NAMES)


def local_namespace() -> Namespace:
    return Namespace(FILE_NAMES)


def comment_text(value: object, max_length: int | None = 120) -> str:
    """Text safe inside a ``#`` comment or a docstring: one line, no quotes breaking out."""
    out = []
    for ch in str(value):
        if ch.isprintable() and ch not in '\\"':
            out.append(ch)
        else:
            out.append(ch.encode("unicode_escape").decode("ascii") if ch != '"' else "'")
    text = "".join(out)
    if max_length is None or len(text) <= max_length:
        return text
    return text[: max_length - 3] + "..."

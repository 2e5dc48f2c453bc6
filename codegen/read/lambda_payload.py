"""A ``Lambda`` layer's marshalled Python function, read as data and never loaded.

Keras stores a Python lambda as ``marshal.dumps(fn.__code__)`` (base64 text; Keras 2.0 wrote
the raw bytes as ``raw_unicode_escape`` text) with its ``defaults`` and ``closure``:

- Keras 2 / tf.keras ``.h5``: ``"function": [code, defaults, closure]`` (or the Keras 3
  form below), ``"function_type": "lambda"``;
- Keras 3: ``"function": {"class_name": "__lambda__", "config": {"code", "defaults",
  "closure"}}``.

CPython's ``marshal`` module must never read it (a code object is executable). ``xdis``
(pure Python) reads the marshal format of every CPython version; this module bounds what it
may read (payload size, nesting depth, object count). A bare code object carries no magic
number, so the writer's Python version is not recorded: every version (2.7, 3.5 to 3.12) whose
code-object layout reads the *whole* payload is a candidate (:func:`candidates`); the
translation (:mod:`codegen.read.lambda_eval`) decides between them.
"""

from __future__ import annotations

import base64
import binascii
import io
from dataclasses import dataclass
from typing import Any

MAX_TEXT = 64 * 1024  # characters of encoded code in the config
MAX_DEPTH = 24  # nesting of marshalled objects (a lambda's code object needs 3 or 4)
MAX_OBJECTS = 4096
VERSIONS = ((2, 7), (3, 5), (3, 6), (3, 7), (3, 8), (3, 9), (3, 10), (3, 11), (3, 12))


class LambdaPayloadError(Exception):
    """The config's function is not a marshalled Python lambda this reader can read."""


class LambdaPayloadLimit(LambdaPayloadError):
    """The payload goes past a limit of this reader (nesting, object count)."""


@dataclass
class Payload:
    code: bytes  # the marshalled code object
    defaults: tuple
    closure: tuple


@dataclass
class Candidate:
    version: tuple[int, int]
    code: Any  # an xdis code object (plain data: nothing in it can run)


def xdis_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("xdis") is not None


def payload(function: Any) -> Payload:
    """The code bytes, defaults and closure of a Lambda config's ``function`` entry."""
    if isinstance(function, dict):
        if function.get("class_name") != "__lambda__" or not isinstance(
            function.get("config"), dict
        ):
            raise LambdaPayloadError(
                f"its function is {_kind(function)}, not a Python lambda stored in the file"
            )
        inner = function["config"]
        text, defaults, closure = inner.get("code"), inner.get("defaults"), inner.get("closure")
    elif isinstance(function, (list, tuple)) and len(function) == 3:
        text, defaults, closure = function
    elif isinstance(function, str):
        raise LambdaPayloadError(
            f"its function is the named Python function {function[:60]!r}, whose code the "
            "file does not hold"
        )
    else:
        raise LambdaPayloadError(f"its function entry is {_kind(function)}")
    if not isinstance(text, str):
        raise LambdaPayloadError(f"its code is {_kind(text)}, not text")
    if len(text) > MAX_TEXT:
        raise LambdaPayloadError(f"its code is {len(text)} characters (more than {MAX_TEXT})")
    return Payload(
        _decode(text), _plain_tuple(defaults, "defaults"), _plain_tuple(closure, "closure")
    )


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return f"a {str(value.get('class_name'))[:40]!r} object"
    return f"a {type(value).__name__}"


def _decode(text: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=False)
    except (UnicodeEncodeError, binascii.Error, ValueError):
        pass
    try:  # Keras 2.0: the marshal bytes themselves, as raw_unicode_escape text
        return text.encode("raw_unicode_escape")
    except UnicodeEncodeError:
        raise LambdaPayloadError("its code is neither base64 nor raw bytes") from None


def _plain_tuple(value: Any, what: str) -> tuple:
    """Defaults/closure values: JSON numbers, strings, None, lists of them."""
    if value is None:
        return ()
    if not isinstance(value, (list, tuple)):
        raise LambdaPayloadError(f"its {what} is {_kind(value)}, not a list")
    if len(value) > 64:
        raise LambdaPayloadError(f"its {what} has {len(value)} entries")
    return tuple(value)


def candidates(code: bytes) -> list[Candidate]:
    """Every Python version (2.7, 3.5-3.12) whose code-object layout reads all of ``code``."""
    if not xdis_available():
        raise LambdaPayloadError(
            "reading its Python code needs xdis (pip install 'keras2torch[lambda]')"
        )
    found, limit = [], None
    for version in VERSIONS:
        try:
            obj, used = _load(code, version)
        except LambdaPayloadLimit as exc:
            limit = exc
            continue
        except Exception:  # noqa: BLE001, S112 (xdis on bytes this version's layout does not fit)
            continue
        if used == len(code) and _looks_like_lambda(obj):
            found.append(Candidate(version, obj))
    if not found and limit is not None:
        raise limit
    if not found:
        raise LambdaPayloadError(
            f"its code ({len(code)} bytes) is not a marshalled Python 2.7 or 3.5-3.12 function"
        )
    return found


def _looks_like_lambda(obj: Any) -> bool:
    names = ("co_code", "co_consts", "co_names", "co_varnames", "co_argcount")
    if not all(hasattr(obj, n) for n in names):
        return False
    return (
        isinstance(obj.co_code, bytes)
        and isinstance(obj.co_consts, (tuple, list))
        and isinstance(obj.co_names, (tuple, list))
        and isinstance(obj.co_varnames, (tuple, list))
        and all(isinstance(n, str) for n in (*obj.co_names, *obj.co_varnames))
        and isinstance(obj.co_argcount, int)
        and 0 <= obj.co_argcount <= len(obj.co_varnames)
    )


class _Strict(io.BytesIO):
    """Bytes whose reads never come back short (xdis does not check)."""

    def read(self, n: int | None = -1) -> bytes:
        data = super().read(n)
        if n is not None and n >= 0 and len(data) != n:
            raise LambdaPayloadError("its code ends early")
        return data


def _load(code: bytes, version: tuple[int, int]) -> tuple[Any, int]:
    from xdis.magics import by_version, magic2int
    from xdis.unmarshal import VersionIndependentUnmarshaller

    class Bounded(VersionIndependentUnmarshaller):
        """xdis's reader with limits, refusing unknown types instead of printing them."""

        depth = 0
        count = 0

        def r_object(self, bytes_for_s: bool = False):
            self.depth += 1
            self.count += 1
            try:
                if self.depth > MAX_DEPTH or self.count > MAX_OBJECTS:
                    raise LambdaPayloadLimit("its code nests too deep or holds too many objects")
                head = self.fp.read(1)
                if not head:
                    raise LambdaPayloadError("its code ends early")
                self.fp.seek(-1, io.SEEK_CUR)
                if chr(head[0] & 0x7F) not in self.UNMARSHAL_DISPATCH_TABLE:
                    raise LambdaPayloadError("its code holds an unknown marshal type")
                return super().r_object(bytes_for_s)
            finally:
                self.depth -= 1

    fp = _Strict(code)
    magic = magic2int(by_version[f"{version[0]}.{version[1]}"])
    reader = Bounded(fp, magic, True, code_objects={})
    return reader.load(), fp.tell()

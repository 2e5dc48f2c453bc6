"""The instructions of a code object read by :mod:`codegen.read.lambda_payload`.

Decoded here from the raw ``co_code`` bytes with the opcode table of the candidate Python
version (from ``xdis``): Python 3.5 has 1- and 3-byte instructions, 3.6+ 2-byte words with
``EXTENDED_ARG`` prefixes, 3.11+ inline ``CACHE`` words after some instructions. A byte that
is no instruction of that version rules the version out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MAX_CODE_BYTES = 4096


class BytecodeError(Exception):
    """The bytes are not valid bytecode of the version tried."""


@dataclass(frozen=True)
class Instruction:
    offset: int
    opname: str
    arg: int | None


def instructions(code: Any, version: tuple[int, int]) -> list[Instruction]:
    from xdis.op_imports import get_opcode_module

    raw = code.co_code
    if len(raw) > MAX_CODE_BYTES:
        raise BytecodeError(f"{len(raw)} bytes of bytecode (more than {MAX_CODE_BYTES})")
    opc = get_opcode_module(version, "CPython")
    names = opc.opname
    have_argument = opc.HAVE_ARGUMENT
    result: list[Instruction] = []
    i, extended, start = 0, 0, None
    while i < len(raw):
        op = raw[i]
        name = names[op] if op < len(names) else "<?>"
        if name.startswith("<"):
            raise BytecodeError(f"byte {op} at offset {i} is no Python {_v(version)} opcode")
        if version < (3, 6):
            if op >= have_argument:
                if i + 3 > len(raw):
                    raise BytecodeError("the bytecode ends inside an instruction")
                arg, size = raw[i + 1] | raw[i + 2] << 8, 3
            else:
                arg, size = None, 1
        else:
            if i + 2 > len(raw):
                raise BytecodeError("the bytecode ends inside an instruction")
            arg, size = raw[i + 1], 2
        if start is None:
            start = i
        i += size
        if name == "CACHE":
            start = None
            continue
        if name == "EXTENDED_ARG":
            extended = (extended | (arg or 0)) << (16 if version < (3, 6) else 8)
            continue
        if arg is not None:
            arg |= extended
        elif extended:
            raise BytecodeError(f"EXTENDED_ARG before {name}")
        extended = 0
        result.append(Instruction(start, name, arg if op >= have_argument else None))
        start = None
    if extended:
        raise BytecodeError("the bytecode ends with EXTENDED_ARG")
    return result


def _v(version: tuple[int, int]) -> str:
    return f"{version[0]}.{version[1]}"


def disassembly(code: Any, version: tuple[int, int], stop: int | None = None) -> str:
    """One line per instruction (``-->`` marks offset ``stop``), for error messages."""
    try:
        found = instructions(code, version)
    except BytecodeError as exc:
        return f"    (cannot be disassembled as Python {_v(version)}: {exc})"
    lines = []
    for ins in found[:80]:
        mark = "-->" if ins.offset == stop else "   "
        detail = _argument_text(code, version, ins)
        lines.append(f" {mark} {ins.offset:4d} {ins.opname}{' ' + detail if detail else ''}")
    if len(found) > 80:
        lines.append(f"     ... {len(found) - 80} more instructions")
    return "\n".join(lines)


def _argument_text(code: Any, version: tuple[int, int], ins: Instruction) -> str:
    if ins.arg is None:
        return ""
    arg = ins.arg
    name = ins.opname
    try:
        if name in ("LOAD_CONST", "KW_NAMES", "RETURN_CONST"):
            return f"{arg} ({_short(code.co_consts[arg])})"
        if name in ("LOAD_FAST", "LOAD_FAST_CHECK"):
            return f"{arg} ({code.co_varnames[arg]})"
        if name == "LOAD_GLOBAL":
            index = arg >> 1 if version >= (3, 11) else arg
            return f"{arg} ({code.co_names[index]})"
        if name == "LOAD_ATTR" and version >= (3, 12):
            return f"{arg} ({code.co_names[arg >> 1]})"
        if name in ("LOAD_ATTR", "LOAD_METHOD", "LOAD_NAME"):
            return f"{arg} ({code.co_names[arg]})"
    except (IndexError, TypeError):
        return f"{arg} (out of range)"
    return str(arg)


def _short(value: Any) -> str:
    plain = (int, float, str, tuple, type(None), type(Ellipsis))
    text = repr(value) if isinstance(value, plain) else "<object>"
    text = text.replace("\n", " ")
    return text if len(text) <= 50 else text[:47] + "..."

"""Marshalled lambdas as older Pythons wrote them, made without those Pythons.

Keras stores ``base64(marshal.dumps(fn.__code__))``. This machine has one Python, so the
payloads of Python 3.5, 3.6, 3.8 and 3.10 are written here byte by byte: the code-object
layout of CPython's ``Python/marshal.c`` (``w_object``, marshal version 4) of each version,
and instructions encoded with the opcode numbers of that version's ``Lib/opcode.py`` (the
numbers used here are the same from 3.5 to 3.10). 3.5 encodes an instruction with an
argument in 3 bytes, 3.6+ in 2-byte words; 3.8 added ``co_posonlyargcount``.

Nothing here uses ``marshal`` or ``xdis``: the reader is tested against an independent writer.
"""

from __future__ import annotations

import base64
import struct

OPCODES = {  # CPython 3.5-3.10 Lib/opcode.py (LOAD_METHOD/CALL_METHOD: 3.7+)
    "LOAD_DEREF": 136,
    "BINARY_MULTIPLY": 20,
    "BINARY_ADD": 23,
    "BINARY_SUBTRACT": 24,
    "BINARY_SUBSCR": 25,
    "BINARY_TRUE_DIVIDE": 27,
    "RETURN_VALUE": 83,
    "BUILD_TUPLE": 102,
    "LOAD_CONST": 100,
    "LOAD_ATTR": 106,
    "LOAD_GLOBAL": 116,
    "LOAD_FAST": 124,
    "CALL_FUNCTION": 131,
    "BUILD_SLICE": 133,
    "CALL_FUNCTION_KW": 141,
    "LOAD_METHOD": 160,
    "CALL_METHOD": 161,
}
HAVE_ARGUMENT = 90
FLAG_REF = 0x80
CO_OPTIMIZED_NEWLOCALS_NOFREE = 0x43


def assemble(version: tuple[int, int], program: list[tuple], opcodes: dict = OPCODES) -> bytes:
    out = bytearray()
    for ins in program:
        op = opcodes[ins[0]]
        arg = ins[1] if len(ins) > 1 else 0
        if version < (3, 6):
            out += bytes([op]) + (struct.pack("<H", arg) if op >= HAVE_ARGUMENT else b"")
        else:
            out += bytes([op, arg])
    return bytes(out)


def _obj(value, py2: bool = False) -> bytes:
    """``w_object`` of marshal version 4 (Python 3.4+), or of version 2 (``py2``: Python 2.7
    writes a str, constant or name, as interned bytes ``t`` and tuples with a 4-byte size;
    it has no refs)."""
    if value is None:
        return b"N"
    if value is Ellipsis:
        return b"."
    if isinstance(value, bool):
        return b"T" if value else b"F"
    if isinstance(value, int):
        return b"i" + struct.pack("<i", value)
    if isinstance(value, float):
        return b"g" + struct.pack("<d", value)
    if isinstance(value, str):
        data = value.encode("ascii")
        if py2:
            return b"t" + struct.pack("<i", len(data)) + data
        return b"z" + bytes([len(data)]) + data  # TYPE_SHORT_ASCII
    if isinstance(value, bytes):
        return b"s" + struct.pack("<i", len(value)) + value
    if isinstance(value, tuple):
        items = b"".join(_obj(v, py2) for v in value)
        if py2:
            return b"(" + struct.pack("<i", len(value)) + items
        return b")" + bytes([len(value)]) + items  # SMALL_TUPLE
    raise TypeError(value)


def code_object(
    version: tuple[int, int],
    program: list[tuple],
    consts: tuple,
    names: tuple,
    varnames: tuple,
    argcount: int = 1,
    freevars: tuple = (),
) -> bytes:
    """The marshal bytes of a lambda's code object as ``version`` writes them."""
    flags = CO_OPTIMIZED_NEWLOCALS_NOFREE & ~(0x40 if freevars else 0)
    ints = [argcount]
    if version >= (3, 8):
        ints.append(0)  # co_posonlyargcount
    ints += [0, len(varnames), 8, flags]  # kwonly, nlocals, stacksize, flags
    body = bytes([ord("c") | FLAG_REF]) + b"".join(struct.pack("<i", i) for i in ints)
    body += _obj(assemble(version, program))
    body += _obj(consts) + _obj(names) + _obj(varnames)
    body += _obj(freevars) + _obj(())  # co_freevars, then co_cellvars
    body += _obj("<test>") + _obj("<lambda>") + struct.pack("<i", 1) + _obj(b"")
    return body


def keras2_function(code: bytes) -> list:
    """The ``function`` entry of a Keras 2 Lambda config (Keras 2.2+: base64 text)."""
    return [base64.b64encode(code).decode("ascii"), None, None]


# lambda x: K.mean(x, axis=1) -- Python 3.5: CALL_FUNCTION counts keyword pairs in the
# high byte (0x0101: one positional argument, one keyword pair).
PY35_MEAN = code_object(
    (3, 5),
    [
        ("LOAD_GLOBAL", 0),
        ("LOAD_ATTR", 1),
        ("LOAD_FAST", 0),
        ("LOAD_CONST", 1),
        ("LOAD_CONST", 2),
        ("CALL_FUNCTION", 0x0101),
        ("RETURN_VALUE",),
    ],
    (None, "axis", 1),
    ("K", "mean"),
    ("x",),
)

# lambda x: K.mean(x[:, :, ::-1], axis=1) / 2.0 -- Python 3.6: CALL_FUNCTION_KW with a tuple
# of keyword names on top of the arguments.
PY36_FLIP_MEAN = code_object(
    (3, 6),
    [
        ("LOAD_GLOBAL", 0),
        ("LOAD_ATTR", 1),
        ("LOAD_FAST", 0),
        ("LOAD_CONST", 0),
        ("LOAD_CONST", 0),
        ("BUILD_SLICE", 2),
        ("LOAD_CONST", 0),
        ("LOAD_CONST", 0),
        ("BUILD_SLICE", 2),
        ("LOAD_CONST", 0),
        ("LOAD_CONST", 0),
        ("LOAD_CONST", 1),
        ("BUILD_SLICE", 3),
        ("BUILD_TUPLE", 3),
        ("BINARY_SUBSCR",),
        ("LOAD_CONST", 2),
        ("LOAD_CONST", 3),
        ("CALL_FUNCTION_KW", 2),
        ("LOAD_CONST", 4),
        ("BINARY_TRUE_DIVIDE",),
        ("RETURN_VALUE",),
    ],
    (None, -1, 1, ("axis",), 2.0),
    ("K", "mean"),
    ("x",),
)

# lambda x: K.abs(x[..., 0:2] - 0.5) * 3.0 -- Python 3.8: LOAD_METHOD/CALL_METHOD.
PY38_ABS = code_object(
    (3, 8),
    [
        ("LOAD_GLOBAL", 0),
        ("LOAD_METHOD", 1),
        ("LOAD_FAST", 0),
        ("LOAD_CONST", 1),
        ("LOAD_CONST", 2),
        ("LOAD_CONST", 3),
        ("BUILD_SLICE", 2),
        ("BUILD_TUPLE", 2),
        ("BINARY_SUBSCR",),
        ("LOAD_CONST", 4),
        ("BINARY_SUBTRACT",),
        ("CALL_METHOD", 1),
        ("LOAD_CONST", 5),
        ("BINARY_MULTIPLY",),
        ("RETURN_VALUE",),
    ],
    (None, Ellipsis, 0, 2, 0.5, 3.0),
    ("K", "abs"),
    ("x",),
)

# lambda x, s: K.expand_dims(x[:, 0], axis=-1) * s + 1.0 -- Python 3.10, with s from the
# Lambda's ``arguments``.
PY310_EXPAND = code_object(
    (3, 10),
    [
        ("LOAD_GLOBAL", 0),
        ("LOAD_ATTR", 1),
        ("LOAD_FAST", 0),
        ("LOAD_CONST", 0),
        ("LOAD_CONST", 0),
        ("BUILD_SLICE", 2),
        ("LOAD_CONST", 1),
        ("BUILD_TUPLE", 2),
        ("BINARY_SUBSCR",),
        ("LOAD_CONST", 2),
        ("LOAD_CONST", 3),
        ("CALL_FUNCTION_KW", 2),
        ("LOAD_FAST", 1),
        ("BINARY_MULTIPLY",),
        ("LOAD_CONST", 4),
        ("BINARY_ADD",),
        ("RETURN_VALUE",),
    ],
    (None, 0, -1, ("axis",), 1.0),
    ("K", "expand_dims"),
    ("x", "s"),
    argcount=2,
)


# lambda x: x * scale, with scale a closure value -- Python 3.8: LOAD_DEREF 0 is the first
# free variable (there are no cell variables).
PY38_CLOSURE = code_object(
    (3, 8),
    [("LOAD_FAST", 0), ("LOAD_DEREF", 0), ("BINARY_MULTIPLY",), ("RETURN_VALUE",)],
    (None,),
    (),
    ("x",),
    freevars=("scale",),
)


# -- Python 3.12 -------------------------------------------------------------------------
# Lib/opcode.py of 3.12 (the numbers differ from 3.10's for these three), and the inline
# cache words (opcode 0) each instruction is followed by.
OPCODES_312 = {**OPCODES, "RESUME": 151, "BINARY_OP": 122, "CALL": 171, "KW_NAMES": 172}
CACHES_312 = {"LOAD_GLOBAL": 4, "LOAD_ATTR": 9, "BINARY_SUBSCR": 1, "CALL": 3, "BINARY_OP": 1}
CO_FAST_LOCAL = 0x20


def code_object_312(program: list[tuple], consts: tuple, names: tuple, varnames: tuple) -> bytes:
    """A 3.11+ code object: no co_nlocals, locals as (names, kinds), a qualified name, the
    line and exception tables."""
    code = bytearray()
    for ins in program:
        code += bytes([OPCODES_312[ins[0]], ins[1] if len(ins) > 1 else 0])
        code += b"\x00\x00" * CACHES_312.get(ins[0], 0)
    ints = [len(varnames), 0, 0, 8, 3]  # argcount, posonly, kwonly, stacksize, flags
    body = bytes([ord("c") | FLAG_REF]) + b"".join(struct.pack("<i", i) for i in ints)
    body += _obj(bytes(code)) + _obj(consts) + _obj(names) + _obj(varnames)
    body += _obj(bytes([CO_FAST_LOCAL] * len(varnames)))
    body += _obj("<test>") + _obj("<lambda>") + _obj("<lambda>") + struct.pack("<i", 1)
    body += _obj(b"") + _obj(b"")
    return body


# lambda x: ops.mean(x[:, 1:], axis=-1) * 2.0 -- Python 3.12: LOAD_GLOBAL/LOAD_ATTR with
# the low bit set push NULL; KW_NAMES then CALL; BINARY_OP 5 is *.
PY312_OPS_MEAN = code_object_312(
    [
        ("RESUME", 0),
        ("LOAD_GLOBAL", 1),
        ("LOAD_ATTR", 3),
        ("LOAD_FAST", 0),
        ("LOAD_CONST", 0),
        ("LOAD_CONST", 0),
        ("BUILD_SLICE", 2),
        ("LOAD_CONST", 1),
        ("LOAD_CONST", 0),
        ("BUILD_SLICE", 2),
        ("BUILD_TUPLE", 2),
        ("BINARY_SUBSCR",),
        ("LOAD_CONST", 2),
        ("KW_NAMES", 3),
        ("CALL", 2),
        ("LOAD_CONST", 4),
        ("BINARY_OP", 5),
        ("RETURN_VALUE",),
    ],
    (None, 1, -1, ("axis",), 2.0),
    ("ops", "mean"),
    ("x",),
)


# -- Python 2.7 (marshal version 2, as Keras 2 under Python 2 wrote it) --------------------
# Lib/opcode.py of CPython 2.7: 1-byte instructions, 3 bytes with an argument (as 3.5).
OPCODES_27 = {
    "BINARY_MULTIPLY": 20,
    "BINARY_DIVIDE": 21,  # "/" without ``from __future__ import division``
    "BINARY_ADD": 23,
    "BINARY_SUBTRACT": 24,
    "BINARY_SUBSCR": 25,
    "SLICE+1": 31,  # TOS1[TOS:]
    "SLICE+2": 32,  # TOS1[:TOS]
    "RETURN_VALUE": 83,
    "BUILD_TUPLE": 102,
    "LOAD_ATTR": 106,
    "LOAD_CONST": 100,
    "LOAD_GLOBAL": 116,
    "LOAD_FAST": 124,
    "CALL_FUNCTION": 131,
    "BUILD_SLICE": 133,
    "LOAD_DEREF": 136,
}


def code_object_27(
    program: list[tuple], consts: tuple, names: tuple, varnames: tuple, freevars: tuple = ()
) -> bytes:
    """A lambda's code object as Python 2.7 marshals it: argcount, nlocals, stacksize, flags
    (no keyword-only count), then code, consts, names, varnames, freevars, cellvars,
    filename, name, firstlineno, lnotab."""
    flags = CO_OPTIMIZED_NEWLOCALS_NOFREE & ~(0x40 if freevars else 0)
    body = b"c" + b"".join(struct.pack("<i", i) for i in (1, len(varnames), 4, flags))
    parts = [assemble((2, 7), program, OPCODES_27), consts, names, varnames, freevars, ()]
    body += b"".join(_obj(part, py2=True) for part in parts)  # freevars, then cellvars
    body += _obj(b"<test>") + _obj("<lambda>", py2=True) + struct.pack("<i", 1) + _obj(b"")
    return body


# lambda x: x / 127.5 - 1.0 -- Python 2.7, the steering models' normalisation
PY27_NORMALISE = code_object_27(
    [
        ("LOAD_FAST", 0),
        ("LOAD_CONST", 1),
        ("BINARY_DIVIDE",),
        ("LOAD_CONST", 2),
        ("BINARY_SUBTRACT",),
        ("RETURN_VALUE",),
    ],
    (None, 127.5, 1.0),
    (),
    ("x",),
)

# lambda x: K.mean(x[:, 1:], axis=1) / 2 -- Python 2.7: a keyword pair counted in
# CALL_FUNCTION's high byte (as 3.5), a constant str, an extended slice, and "/" by an int
PY27_MEAN_SLICE = code_object_27(
    [
        ("LOAD_GLOBAL", 0),
        ("LOAD_ATTR", 1),
        ("LOAD_FAST", 0),
        ("LOAD_CONST", 0),
        ("LOAD_CONST", 0),
        ("BUILD_SLICE", 2),
        ("LOAD_CONST", 1),
        ("LOAD_CONST", 0),
        ("BUILD_SLICE", 2),
        ("BUILD_TUPLE", 2),
        ("BINARY_SUBSCR",),
        ("LOAD_CONST", 2),
        ("LOAD_CONST", 1),
        ("CALL_FUNCTION", 0x0101),
        ("LOAD_CONST", 3),
        ("BINARY_DIVIDE",),
        ("RETURN_VALUE",),
    ],
    (None, 1, "axis", 2),
    ("K", "mean"),
    ("x",),
)

# lambda x: x[2:] * (3 / 2) -- Python 2.7: a simple slice (SLICE+1, on the first axis as
# Python slices it) and 3 / 2 == 1 (two ints divide to an int in Python 2)
PY27_SIMPLE_SLICE = code_object_27(
    [
        ("LOAD_FAST", 0),
        ("LOAD_CONST", 1),
        ("SLICE+1",),
        ("LOAD_CONST", 2),
        ("LOAD_CONST", 3),
        ("BINARY_DIVIDE",),
        ("BINARY_MULTIPLY",),
        ("RETURN_VALUE",),
    ],
    (None, 2, 3, 2),
    (),
    ("x",),
)

# lambda x: x * scale, with scale a closure value -- Python 2.7
PY27_CLOSURE = code_object_27(
    [("LOAD_FAST", 0), ("LOAD_DEREF", 0), ("BINARY_MULTIPLY",), ("RETURN_VALUE",)],
    (None,),
    (),
    ("x",),
    freevars=("scale",),
)

"""Translate a Lambda's bytecode by symbolic evaluation, never by running it.

The instructions (:mod:`codegen.read.lambda_bytecode`) are played on a stack of symbolic
values: the call's tensors, Python constants, names (``K.mean``: a dotted path), slices and
tuples. Operators on tensors and calls of known functions
(:mod:`codegen.read.lambda_functions`) emit the same keras.ops operations a tf.keras
TFOpLambda node becomes, so layouts (channels-first inside) and converters are shared.
Straight-line code only: a jump, a store other than to a local, a nested function or an unknown instruction stops
the translation with :class:`LambdaUntranslatable` naming the instruction.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any

from codegen.ir.graph import Tensor

from .lambda_bytecode import Instruction, instructions
from .lambda_functions import LambdaCallUnsupported, call, resolve_global
from .tf_functions import Emit, TFFunctionUnsupported, translate

MAX_INSTRUCTIONS = 400
MAX_STACK = 64
CO_VARARGS, CO_VARKEYWORDS = 0x04, 0x08

_BINARY_NAMES = {
    "BINARY_ADD": "+",
    "BINARY_SUBTRACT": "-",
    "BINARY_MULTIPLY": "*",
    "BINARY_TRUE_DIVIDE": "/",
    "BINARY_FLOOR_DIVIDE": "//",
    "BINARY_MODULO": "%",
    "BINARY_POWER": "**",
    "BINARY_MATRIX_MULTIPLY": "@",
}
# BINARY_OP (3.11+): the operator by argument (13 and up: the in-place forms).
_NB_OPS = ("+", "&", "//", "<<", "@", "*", "%", "|", "**", ">>", "-", "/", "^")
_TF_OPERATORS = {
    "+": "math.add",
    "-": "math.subtract",
    "*": "math.multiply",
    "/": "math.truediv",
    "//": "math.floordiv",
    "%": "math.floormod",
    "**": "math.pow",
    "@": "linalg.matmul",
    "<": "math.less",
    "<=": "math.less_equal",
    ">": "math.greater",
    ">=": "math.greater_equal",
}
_COMPARE = ("<", "<=", "==", "!=", ">", ">=")
_SKIPPED = {"NOP", "RESUME", "PRECALL", "COPY_FREE_VARS"}


class LambdaUntranslatable(Exception):
    """The code does something this translation cannot express; ``offset``: where."""

    def __init__(self, message: str, offset: int | None = None, progress: int = 0) -> None:
        super().__init__(message)
        self.offset = offset
        self.progress = progress  # instructions done: how far this version's reading got


@dataclass(frozen=True)
class _Name:
    path: str  # "backend.mean", "tf.nn.relu"


class _Null:
    def __repr__(self) -> str:
        return "NULL"


NULL = _Null()


def evaluate(
    code: Any,
    version: tuple[int, int],
    inputs: Any,
    arguments: dict,
    defaults: tuple,
    closure: tuple,
    emit: Emit,
    tf2: bool,
) -> Tensor:
    """The tensor the function returns for ``inputs`` (a Tensor or a list of Tensors)."""
    try:
        program = instructions(code, version)
    except Exception as exc:  # noqa: BLE001 (BytecodeError, or xdis without that version)
        raise LambdaUntranslatable(str(exc)) from None
    if len(program) > MAX_INSTRUCTIONS:
        raise LambdaUntranslatable(f"{len(program)} instructions (more than {MAX_INSTRUCTIONS})")
    local = _bind(code, inputs, arguments, defaults)
    free = _free_variables(code, version, closure)
    machine = _Machine(code, version, local, free, emit, tf2)
    for done, ins in enumerate(program):
        try:
            result = machine.step(ins)
        except LambdaUntranslatable as exc:
            exc.offset, exc.progress = ins.offset, done
            raise
        except (LambdaCallUnsupported, TFFunctionUnsupported) as exc:
            raise LambdaUntranslatable(str(exc), ins.offset, done) from None
        except (IndexError, TypeError, ValueError, KeyError, ArithmeticError) as exc:
            raise LambdaUntranslatable(
                f"{ins.opname} cannot be evaluated ({type(exc).__name__})", ins.offset, done
            ) from None
        if result is not None:
            if not isinstance(result[0], Tensor):
                raise LambdaUntranslatable(
                    f"it returns {_what(result[0])}, not a tensor", ins.offset, done
                )
            return result[0]
    raise LambdaUntranslatable("the code has no return", None, len(program))


def _bind(code: Any, inputs: Any, arguments: dict, defaults: tuple) -> dict[str, Any]:
    if code.co_flags & (CO_VARARGS | CO_VARKEYWORDS) or getattr(code, "co_kwonlyargcount", 0):
        raise LambdaUntranslatable("a function with *args, **kwargs or keyword-only arguments")
    params = list(code.co_varnames[: code.co_argcount])
    if not params:
        raise LambdaUntranslatable("a function without arguments")
    if "mask" in params or "training" in params:
        raise LambdaUntranslatable("a function taking mask= or training=")
    local = {params[0]: inputs}
    rest = params[1:]
    filled = dict(zip(rest[len(rest) - len(defaults) :], defaults)) if defaults else {}
    for name in rest:
        if name in arguments:
            local[name] = _plain(arguments[name], name)
        elif name in filled:
            local[name] = _plain(filled[name], name)
        else:
            raise LambdaUntranslatable(f"no value for its argument {name!r}")
    extra = set(arguments) - set(rest)
    if extra:
        raise LambdaUntranslatable(f"arguments {sorted(extra)} that the function does not take")
    return local


def cells_and_frees(code: Any, version: tuple[int, int]) -> tuple[tuple, tuple]:
    """``(cell variables, free variables)``. CPython up to 3.10 marshals co_freevars before
    co_cellvars; xdis reads them the other way round, so they are swapped back here."""
    cells = tuple(getattr(code, "co_cellvars", ()) or ())
    frees = tuple(getattr(code, "co_freevars", ()) or ())
    return (frees, cells) if version < (3, 11) else (cells, frees)


def _free_variables(code: Any, version: tuple[int, int], closure: tuple) -> dict[str, Any]:
    names = cells_and_frees(code, version)[1]
    if len(names) != len(closure):
        raise LambdaUntranslatable(f"{len(names)} free variables but {len(closure)} closure values")
    return {n: _plain(v, n) for n, v in zip(names, closure)}


def _plain(value: Any, what: str) -> Any:
    """A value from the config: numbers, strings, None, lists and tuples of them."""
    if value is None or isinstance(value, (bool, numbers.Real, str)):
        return value
    if isinstance(value, (list, tuple)) and len(value) <= 64:
        return [_plain(v, what) for v in value]
    if isinstance(value, dict) and value.get("class_name") == "__tuple__":
        items = (value.get("config") or {}).get("value")
        if isinstance(items, list):
            return tuple(_plain(v, what) for v in items)
    raise LambdaUntranslatable(f"the value of {what!r} is not a plain number, string or list")


def _what(value: Any) -> str:
    if isinstance(value, Tensor):
        return "a tensor"
    if isinstance(value, _Name):
        return value.path
    if isinstance(value, (list, tuple)):
        return f"a {type(value).__name__}"
    return f"the constant {value!r}"[:60]


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


class _Machine:
    def __init__(self, code, version, local, free, emit: Emit, tf2: bool) -> None:
        self.code, self.version = code, version
        self.local, self.free = local, free
        self.emit, self.tf2 = emit, tf2
        self.stack: list[Any] = []
        self.kw_names: tuple = ()

    # -- stack ----------------------------------------------------------------------------
    def push(self, value: Any) -> None:
        if len(self.stack) >= MAX_STACK:
            raise LambdaUntranslatable("the stack grows too deep")
        self.stack.append(value)

    def pop(self, n: int | None = None):
        if n is None:
            if not self.stack:
                raise LambdaUntranslatable("the stack is empty")
            return self.stack.pop()
        if n < 0 or n > len(self.stack):
            raise LambdaUntranslatable("the stack is shorter than the instruction needs")
        values = self.stack[len(self.stack) - n :]
        del self.stack[len(self.stack) - n :]
        return values

    # -- instructions ---------------------------------------------------------------------
    def step(self, ins: Instruction):
        """Play one instruction; ``(value,)`` when it returns."""
        name, arg, v = ins.opname, ins.arg, self.version
        if name in _SKIPPED:
            return None
        if name == "RETURN_VALUE":
            return (self.pop(),)
        if name in ("LOAD_FAST", "LOAD_FAST_CHECK"):
            var = self.code.co_varnames[arg]
            if var not in self.local:
                raise LambdaUntranslatable(f"it reads the local variable {var!r} before setting it")
            self.push(self.local[var])
        elif name == "STORE_FAST":  # a def-function's local (Keras 2 stored those too)
            self.local[self.code.co_varnames[arg]] = self.pop()
        elif name == "LOAD_CONST":
            self.push(self._constant(self.code.co_consts[arg]))
        elif name == "LOAD_DEREF":
            self.push(self._free(arg))
        elif name == "LOAD_GLOBAL":
            index = arg >> 1 if v >= (3, 11) else arg
            if v >= (3, 11) and arg & 1:
                self.push(NULL)
            self.push(self._global(self.code.co_names[index]))
        elif name == "PUSH_NULL":
            self.push(NULL)
        elif name == "LOAD_ATTR":
            index, method = (arg >> 1, arg & 1) if v >= (3, 12) else (arg, 0)
            value = self._attribute(self.pop(), self.code.co_names[index])
            if method:
                self.push(NULL)
            self.push(value)
        elif name == "LOAD_METHOD":
            value = self._attribute(self.pop(), self.code.co_names[arg])
            self.push(NULL)
            self.push(value)
        elif name == "KW_NAMES":
            self.kw_names = tuple(self.code.co_consts[arg])
        elif name in ("CALL_FUNCTION", "CALL_METHOD", "CALL"):
            self._call(name, arg)
        elif name == "CALL_FUNCTION_KW" and v >= (3, 6):
            names = self.pop()
            if not isinstance(names, tuple) or not all(isinstance(n, str) for n in names):
                raise LambdaUntranslatable("CALL_FUNCTION_KW without a tuple of names")
            values = self.pop(arg)
            cut = len(values) - len(names)
            if cut < 0:
                raise LambdaUntranslatable("CALL_FUNCTION_KW with more names than values")
            func = self.pop()
            self.push(self._invoke(func, values[:cut], dict(zip(names, values[cut:]))))
        elif name == "BINARY_DIVIDE":  # Python 2's "/": two ints divide to an int
            right, left = self.pop(), self.pop()
            ints = all(isinstance(v, int) and not isinstance(v, bool) for v in (left, right))
            if ints and right != 0:
                self.push(left // right)
            elif ints:
                raise LambdaUntranslatable(f"the constant expression {left!r} / {right!r}")
            else:  # a float, or a float tensor (TensorFlow's __div__ divides floats as "/")
                if any(
                    isinstance(v, Tensor) and not v.dtype.startswith(("float", "bfloat"))
                    for v in (left, right)
                ):
                    raise LambdaUntranslatable("Python 2's / of an integer tensor")
                self.push(self._binary("/", left, right))
        elif name.startswith("SLICE+") and name[-1] in "0123":  # Python 2: x[a:b]
            bits = int(name[-1])
            stop = self.pop() if bits & 2 else None
            start = self.pop() if bits & 1 else None
            self.push(self._subscript(self.pop(), _slice(start, stop)))
        elif name in _BINARY_NAMES:
            right = self.pop()
            self.push(self._binary(_BINARY_NAMES[name], self.pop(), right))
        elif name == "BINARY_OP":
            right = self.pop()
            self.push(self._binary(_NB_OPS[arg % 13], self.pop(), right))
        elif name == "COMPARE_OP":
            index = arg >> 4 if v >= (3, 12) else arg
            op = _COMPARE[index] if index < len(_COMPARE) else "?"
            right = self.pop()
            self.push(self._binary(op, self.pop(), right))
        elif name == "BINARY_SUBSCR":
            key = self.pop()
            self.push(self._subscript(self.pop(), key))
        elif name == "BINARY_SLICE":
            stop, start = self.pop(), self.pop()
            self.push(self._subscript(self.pop(), _slice(start, stop)))
        elif name == "BUILD_SLICE":
            self.push(_slice(*self.pop(arg)))
        elif name == "BUILD_TUPLE":
            self.push(tuple(self.pop(arg)))
        elif name == "BUILD_LIST":
            self.push(list(self.pop(arg)))
        elif name == "LIST_EXTEND":
            items = self.pop()
            target = self.stack[-arg] if 0 < arg <= len(self.stack) else None
            if not isinstance(target, list) or not isinstance(items, (list, tuple)):
                raise LambdaUntranslatable("LIST_EXTEND of something that is not a list")
            target.extend(items)
        elif name == "LIST_TO_TUPLE":
            self.push(tuple(self.pop()))
        elif name == "UNARY_NEGATIVE":
            value = self.pop()
            if _is_number(value):
                self.push(-value)
            else:
                self.push(self._tensor_call("math.negative", value, {}))
        elif name == "UNARY_POSITIVE":
            value = self.pop()
            if not (_is_number(value) or isinstance(value, Tensor)):
                raise LambdaUntranslatable(f"+ of {_what(value)}")
            self.push(value)
        else:
            raise LambdaUntranslatable(f"the instruction {name} is not translated")
        return None

    # -- values ---------------------------------------------------------------------------
    def _constant(self, value: Any) -> Any:
        if isinstance(value, bytes) and self.version < (3, 0):  # a Python 2 str
            try:
                return value.decode("ascii")
            except UnicodeDecodeError:
                raise LambdaUntranslatable("a constant byte string that is not ASCII") from None
        if value is None or value is Ellipsis or isinstance(value, (bool, numbers.Real, str)):
            return value
        if isinstance(value, tuple):
            return tuple(self._constant(v) for v in value)
        raise LambdaUntranslatable("a constant that is a nested function or an object")

    def _free(self, arg: int) -> Any:
        code = self.code
        cells, names = cells_and_frees(code, self.version)
        index = arg - len(cells)
        if self.version >= (3, 11):
            index -= len(code.co_varnames)
        if not 0 <= index < len(names):
            raise LambdaUntranslatable("a cell variable (a nested function)")
        return self.free[names[index]]

    def _global(self, name: str) -> _Name:
        path = resolve_global(name)
        if path is None:
            raise LambdaUntranslatable(
                f"the global name {name!r} (only K, backend, tf, ops and keras are known)"
            )
        return _Name(path)

    def _attribute(self, owner: Any, attr: str) -> _Name:
        if not isinstance(owner, _Name):
            raise LambdaUntranslatable(f"the attribute .{attr} of {_what(owner)}")
        return _Name(f"{owner.path}.{attr}")

    def _call(self, name: str, argc: int) -> None:
        kw_names, self.kw_names = self.kw_names, ()
        if name == "CALL_FUNCTION" and self.version < (3, 6):
            # Python 3.5: the low byte counts positional arguments, the next (name, value) pairs
            positional, pairs = argc & 0xFF, (argc >> 8) & 0xFF
            flat = self.pop(2 * pairs)
            args = self.pop(positional)
            kwargs = {}
            for key, value in zip(flat[::2], flat[1::2]):
                if not isinstance(key, str):
                    raise LambdaUntranslatable("a keyword argument without a name")
                kwargs[key] = value
            self.push(self._invoke(self.pop(), args, kwargs))
            return
        values = self.pop(argc)
        if name == "CALL_FUNCTION":
            func = self.pop()
        else:
            second, first = self.pop(), self.pop()
            if first is NULL:
                func = second
            else:  # (method, self): a call of a method bound to a value
                func, values = first, [second, *values]
        cut = len(values) - len(kw_names)
        if cut < 0:
            raise LambdaUntranslatable("more keyword names than arguments")
        self.push(self._invoke(func, values[:cut], dict(zip(kw_names, values[cut:]))))

    def _invoke(self, func: Any, args: list, kwargs: dict) -> Any:
        if not isinstance(func, _Name):
            raise LambdaUntranslatable(f"a call of {_what(func)}")
        for value in (*args, *kwargs.values()):
            if value is NULL or isinstance(value, _Name):
                raise LambdaUntranslatable(f"{func.path} given a function as an argument")
        return call(func.path, list(args), kwargs, self.emit, self.tf2)

    def _tensor_call(self, function: str, first: Any, kwargs: dict) -> Tensor:
        outputs = translate(function, first, kwargs, self.emit)
        if len(outputs) != 1:
            raise LambdaUntranslatable(f"tf.{function} with several results")
        return outputs[0]

    def _binary(self, op: str, left: Any, right: Any) -> Any:
        if _is_number(left) and _is_number(right):
            if op in ("+", "-", "*") or (op == "/" and right != 0):
                return {"+": left + right, "-": left - right, "*": left * right}.get(
                    op, left / right if op == "/" else None
                )
            raise LambdaUntranslatable(f"the constant expression {left!r} {op} {right!r}")
        if not (isinstance(left, Tensor) or isinstance(right, Tensor)):
            raise LambdaUntranslatable(f"{_what(left)} {op} {_what(right)}")
        function = _TF_OPERATORS.get(op)
        if function is None:
            raise LambdaUntranslatable(
                f"the operator {op} on tensors (its meaning changed between TensorFlow versions)"
                if op in ("==", "!=")
                else f"the operator {op} on tensors"
            )
        for value in (left, right):
            if not (isinstance(value, Tensor) or _is_number(value)):
                raise LambdaUntranslatable(f"{_what(left)} {op} {_what(right)}")
        other = "b" if function == "linalg.matmul" else "y"
        return self._tensor_call(function, left, {other: right})

    def _subscript(self, container: Any, key: Any) -> Any:
        if isinstance(container, (list, tuple)):
            if isinstance(key, int) and not isinstance(key, bool):
                return container[key]
            if isinstance(key, slice):
                return container[key]
            raise LambdaUntranslatable(f"indexing a list with {_what(key)}")
        if not isinstance(container, Tensor):
            raise LambdaUntranslatable(f"indexing {_what(container)}")
        items = key if isinstance(key, tuple) else (key,)
        first = next((i for i in items if i is not None), None)
        if isinstance(first, int) and not isinstance(first, bool):
            raise LambdaUntranslatable("indexing the batch axis with a number (it drops it)")
        for item in items:
            ok = item is None or item is Ellipsis or isinstance(item, slice)
            ok = ok or (isinstance(item, int) and not isinstance(item, bool))
            if not ok:
                raise LambdaUntranslatable(f"indexing a tensor with {_what(item)}")
        (out,) = self.emit("GetItem", {}, (container, tuple(items)))
        return out


def _slice(*parts) -> slice:
    """A slice of constant integer bounds (or None), as the translation can write it."""
    if not all(p is None or (isinstance(p, int) and not isinstance(p, bool)) for p in parts):
        raise LambdaUntranslatable("a slice with bounds that are not constant integers")
    return slice(*parts)

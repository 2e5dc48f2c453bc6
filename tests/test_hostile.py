"""Untrusted model files: names and config strings never become code, Lambda code never runs,
outputs are never half-written or silently replaced."""

from __future__ import annotations

import ast
import base64
import builtins
import copy
import keyword
import marshal
import tempfile
from pathlib import Path

import keras
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from keras import layers

import codegen
from codegen.api import generate
from codegen.errors import ConversionError, InputError
from codegen.read.from_keras import read_model
from codegen.check.compare import load_module_from_source

IMPORTS = {"import torch", "from torch import nn", "import torch.nn.functional as F", "import math"}
MODULE_MEMBERS = set(dir(torch.nn.Module))


def _docstrings(tree: ast.Module) -> set[int]:
    """ids of the Constant nodes that are docstrings (module, classes, functions)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def check_safe(source: str, strict_strings: bool = True) -> ast.Module:
    """The generated file does nothing but define modules: no imports beyond torch/math, no
    names outside torch/nn/F/math/self and its own locals and classes, no dunder access, no
    global/nonlocal/lambda; with ``strict_strings``, no string constant but docstrings."""
    tree = ast.parse(source)
    docstrings = _docstrings(tree)
    defined = {n.name for n in tree.body if isinstance(n, (ast.ClassDef, ast.FunctionDef))}
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            assert ast.unparse(node) in IMPORTS, ast.unparse(node)
        else:
            assert isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.Expr)), ast.dump(node)
            if isinstance(node, ast.Expr):
                assert id(node.value) in docstrings
    local_names = {
        n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
    } | {
        a.arg for n in ast.walk(tree) if isinstance(n, ast.arguments) for a in n.args + n.kwonlyargs
    }
    allowed = {"torch", "nn", "F", "math", "self", "super"} | defined | local_names
    safe_builtins = {
        "range",
        "len",
        "int",
        "float",
        "tuple",
        "list",
        "min",
        "max",
        "zip",
        "isinstance",
        "NotImplementedError",
        "ValueError",
        "enumerate",
        "sum",
        "abs",
        "bool",
        "reversed",
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            assert node.id in allowed or node.id in safe_builtins, node.id
        if isinstance(node, ast.Attribute):
            assert not (node.attr.startswith("__") and node.attr != "__init__"), node.attr
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and strict_strings:
            assert id(node) in docstrings, repr(node.value)
        assert not isinstance(node, (ast.Global, ast.Nonlocal, ast.Lambda)), ast.dump(node)
    nested_imports = [
        n
        for n in ast.walk(tree)
        if isinstance(n, (ast.Import, ast.ImportFrom)) and n not in tree.body
    ]
    assert not nested_imports
    return tree


def check_structure(source: str, n_modules: int, n_statements: int, n_outputs: int) -> None:
    """Exactly one class: docstring, ``__init__`` (super + one assignment per module) and
    ``forward`` (one assignment per Keras call, then return)."""
    tree = check_safe(source)
    classes = [n for n in tree.body if isinstance(n, ast.ClassDef)]
    assert len(classes) == 1
    cls = classes[0]
    assert (
        cls.name.isidentifier()
        and not keyword.iskeyword(cls.name)
        and not hasattr(builtins, cls.name)
    )
    # __init__, forward, then only the training methods (reset_parameters() and the like)
    training = {"reset_parameters", "regularization_loss", "apply_constraints"}
    assert [type(n) for n in cls.body[:3]] == [ast.Expr, ast.FunctionDef, ast.FunctionDef]
    assert all(isinstance(n, ast.FunctionDef) and n.name in training for n in cls.body[3:])
    init, forward = cls.body[1], cls.body[2]
    assert (init.name, forward.name) == ("__init__", "forward")
    assert ast.unparse(init.body[0]) == "super().__init__()"
    attrs = []
    for stmt in init.body[1:]:
        assert isinstance(stmt, ast.Assign) and len(stmt.targets) == 1
        target = stmt.targets[0]
        assert isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name)
        assert target.value.id == "self"
        assert ast.unparse(stmt.value).startswith("nn.Linear(")
        attrs.append(target.attr)
    assert len(attrs) == len(set(attrs)) == n_modules
    for attr in attrs:
        assert attr.isidentifier() and not keyword.iskeyword(attr) and attr not in MODULE_MEMBERS
    assert len(forward.body) == n_statements + 1
    assert all(isinstance(s, ast.Assign) for s in forward.body[:-1])
    ret = forward.body[-1]
    assert isinstance(ret, ast.Return)
    if n_outputs > 1:
        assert isinstance(ret.value, ast.Tuple) and len(ret.value.elts) == n_outputs
    params = [a.arg for a in forward.args.args]
    assert params[0] == "self" and len(params) == 2
    for node in ast.walk(forward):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "self"
        ):
            assert node.attr in attrs
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            assert node.id.isidentifier() and not keyword.iskeyword(node.id)
            assert node.id not in {"torch", "nn", "F", "math", "self"}


HOSTILE = [
    "",
    "forward",
    "training",
    "state_dict",
    "parameters",
    "class",
    "self",
    "x",
    "super",
    "torch",
    "nn",
    "F",
    "math",
    "__init__",
    "__class__",
    "None",
    "True",
    "print",
    "eval",
    "a b",
    "a_b",
    "A-B",
    "a__b",
    '"""',
    "'''",
    "\\",
    "\\n",
    "#",
    "\n",
    "x\ny = 1",
    '"); __import__("os").system("echo pwned") #',
    "é",
    "日本語",
    "\u202e",
    "\x01",
    "1",
    "0x1f",
    "𝔘𝔫𝔦",
    "a" * 300,
    "a" * 301,
    "match",
    "case",
    "_",
]
# Keras refuses "/" in names and cannot save NUL (HDF5 strings): a file cannot hold them.
NAMES = st.one_of(
    st.sampled_from(HOSTILE),
    st.text(st.characters(blacklist_characters="/\x00", blacklist_categories=("Cs",)), max_size=30),
    st.text("aB_-. #'\"\\\n", min_size=40, max_size=200),
)


def hostile_model(names: list[str], model_name: str, seed: int = 0):
    """Input -> Dense a -> Dense b -> Add(a, b) -> ReLU; outputs (relu, b): a and b branch,
    so they get local names, and the two Dense layers get attributes."""
    n_in, n_a, n_b, n_add, n_relu = names
    inputs = keras.Input((4,), name=n_in)
    a = layers.Dense(4, name=n_a)(inputs)
    b = layers.Dense(4, name=n_b)(a)
    c = layers.Add(name=n_add)([a, b])
    d = layers.ReLU(name=n_relu)(c)
    model = keras.Model(inputs, [d, b], name=model_name)
    rng = np.random.default_rng(seed)
    for var in model.weights:
        var.assign(rng.normal(size=tuple(var.shape)).astype("float32"))
    return model


def run_source(source: str, state_dict, x: np.ndarray) -> list[np.ndarray]:
    module = load_module_from_source(source)
    classes = [
        v
        for v in vars(module).values()
        if isinstance(v, type)
        and issubclass(v, torch.nn.Module)
        and v.__module__ == module.__name__
    ]
    net = classes[-1]()
    net.load_state_dict(state_dict, strict=True)
    with torch.no_grad():
        out = net(torch.from_numpy(x))
    return [t.numpy() for t in (out if isinstance(out, tuple) else (out,))]


@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    names=st.lists(NAMES, min_size=5, max_size=5, unique=True),
    model_name=NAMES,
    reader=st.sampled_from([None, "keras"]),
)
@example(
    names=["forward", "training", "state_dict", '"""; import os #', ""],
    model_name='"""\nimport os',
    reader=None,
)
@example(names=["a b", "a_b", "a-b", "A B", "a" * 300], model_name="class", reader="keras")
def test_hostile_names_from_a_file(names, model_name, reader):
    model = hostile_model(names, model_name)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.keras"
        model.save(path)
        result = codegen.convert(path, Path(folder) / "out", reader=reader)
        source = result.module_path.read_text(encoding="utf-8")
        compile(source, "model.py", "exec")
        check_structure(source, n_modules=2, n_statements=4, n_outputs=2)
        state = torch.load(result.weights_path, weights_only=True)
    x = np.random.default_rng(1).normal(size=(3, 4)).astype("float32")
    expected = [np.asarray(t) for t in model(x)]
    for got, ref in zip(run_source(source, state, x), expected):
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="module")
def base_graph():
    model = hostile_model(["inp", "a", "b", "add", "relu"], "base")
    x = np.random.default_rng(2).normal(size=(2, 4)).astype("float32")
    return read_model(model), x, [np.asarray(t) for t in model(x)]


ANY_TEXT = st.one_of(
    st.sampled_from(HOSTILE + ["a/b", "/", "\x00", "\ud800", "\x1b[31m"]), st.text(max_size=60)
)


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(names=st.lists(ANY_TEXT, min_size=6, max_size=6))
def test_any_names_in_the_graph(base_graph, names):
    """Names no Keras would accept ('/', lone surrogates, escapes, duplicates): a reader
    could still hand them over. The output compiles, has the expected statements, matches."""
    graph, x, expected = base_graph
    graph = copy.deepcopy(graph)
    graph.name = names[0]
    graph.input_names = [names[1]]
    for layer, name in zip(graph.layers, names[1:]):
        layer.name = name
    generated = generate(graph, source=names[0], command=names[1])
    source = generated.source
    source.encode("utf-8")  # writable as a file
    check_structure(source, n_modules=2, n_statements=4, n_outputs=2)
    for got, ref in zip(run_source(source, generated.state_dict, x), expected):
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)


INJECT = "1); __import__('os').system('echo pwned') #"


def config_model():
    inputs = keras.Input((8, 8, 3))
    x = layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")(inputs)
    x = layers.BatchNormalization(name="bn")(x)
    x = layers.Activation("tanh", name="act")(x)
    x = layers.MaxPooling2D(name="pool")(x)
    x = layers.Flatten(name="flat")(x)
    x = layers.Dropout(0.5, name="drop")(x)
    x = layers.Dense(3, activation="softmax", name="dense")(x)
    return keras.Model(inputs, x, name="configs")


def test_hostile_config_values_never_become_code():
    """Every option of every layer replaced by a string of code, a huge number or a nested
    structure: the conversion refuses (one clear error) or the output still only does what
    a model does."""
    graph = read_model(config_model())
    values = [INJECT, 10**30, -1, [INJECT], {"class_name": INJECT, "config": {}}, float("nan")]
    tried = refused = 0
    for index, layer in enumerate(graph.layers):
        for key in list(layer.config):
            if key == "name":
                continue
            for value in values:
                mutated = copy.deepcopy(graph)
                mutated.layers[index].config[key] = value
                tried += 1
                try:
                    source = generate(mutated).source
                except ConversionError:
                    refused += 1
                    continue
                check_safe(source, strict_strings=False)
    assert tried > 100 and refused > 0


def _lambda_model(marker: Path):
    # The path is a constant inside the lambda's code: running it creates the marker.
    function = eval(f"lambda t: (open({str(marker)!r}, 'w').close(), t * 2.0)[1]")
    inputs = keras.Input((4,))
    x = layers.Dense(3, name="ok")(inputs)
    x = layers.Lambda(function, name="evil")(x)
    return keras.Model(inputs, layers.Dense(2, name="after")(x), name="lam")


def test_lambda_code_is_never_unmarshalled_or_run(tmp_path, monkeypatch):
    marker = tmp_path / "ran.txt"
    model = _lambda_model(marker)
    files = [tmp_path / "lam.keras", tmp_path / "lam.h5"]
    for path in files:
        model.save(path)
    marker.unlink(missing_ok=True)  # building the model ran it once, in Keras, here

    from keras.src.utils import python_utils

    calls = []
    real_loads = marshal.loads

    def spy_loads(data, *args, **kwargs):
        if b"ran.txt" in bytes(data):
            calls.append("marshal.loads")
        return real_loads(data, *args, **kwargs)

    def spy_func_load(*args, **kwargs):
        calls.append("func_load")
        raise AssertionError("Lambda bytecode loaded")

    monkeypatch.setattr(marshal, "loads", spy_loads)
    monkeypatch.setattr(python_utils, "func_load", spy_func_load)
    from codegen.app.inspect import inspect_path

    for path in files:
        for reader in ("keras", "file", None):
            with pytest.raises(ConversionError) as info:
                codegen.convert(path, tmp_path / "out", reader=reader, verify=True)
            assert "evil" in str(info.value) or "Lambda" in str(info.value)
            result = codegen.convert(
                path,
                tmp_path / f"skel-{path.suffix}-{reader}",
                reader=reader,
                allow_unsupported=True,
                force=True,
            )
            assert "class LambdaSkeleton(nn.Module)" in result.module_path.read_text()
            with pytest.raises(InputError, match="cannot verify"):
                codegen.convert(
                    path, tmp_path / "v", reader=reader, allow_unsupported=True, verify=True
                )
            inspection = inspect_path(path, reader=reader)
            assert any(
                r.class_name == "Lambda" and r.status == "unsupported" for r in inspection.rows
            )
    assert calls == [] and not marker.exists()
    # The bytecode is really in the file (so the test means something).
    code = base64.b64decode(model.get_layer("evil").get_config()["function"]["config"]["code"])
    assert b"ran.txt" in code


# -- outputs --------------------------------------------------------------------------------
def small(seed: int):
    model = keras.Sequential([keras.Input((3,)), layers.Dense(2, name="d")], name="small")
    model.layers[0].kernel.assign(np.full((3, 2), seed, "float32"))
    return model


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("fail_at", ["fsync", "replace"])
def test_interrupted_write_leaves_old_files(tmp_path, monkeypatch, fail_at):
    out = tmp_path / "out"
    codegen.convert(small(1), out)
    before = snapshot(out)
    from codegen.render import write

    real = getattr(write.os, fail_at)
    count = {"n": 0}

    def interrupt(*args, **kwargs):
        count["n"] += 1
        if count["n"] == 2:  # the second file's fsync, or the first rename... of two
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(write.os, fail_at, interrupt)
    with pytest.raises(KeyboardInterrupt):
        codegen.convert(small(2), out, force=True)
    monkeypatch.undo()
    after = snapshot(out)
    if fail_at == "fsync":
        assert after == before  # nothing renamed: every old file intact, no temp file left
    else:  # one rename done: each file is whole, old or new (never half of either)
        assert set(after) == set(before)
        for name, data in after.items():
            assert data == before[name] or name == "model.py" or name == "model.pt"
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_interrupted_first_write_leaves_no_folder(tmp_path, monkeypatch):
    from codegen.render import write

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(write.os, "fsync", interrupt)
    out = tmp_path / "new" / "out"
    with pytest.raises(KeyboardInterrupt):
        codegen.convert(small(1), out)
    assert not (tmp_path / "new").exists()


def test_never_overwrites_different_weights_without_force(tmp_path):
    out = tmp_path / "out"
    codegen.convert(small(1), out)
    before = snapshot(out)
    assert codegen.convert(small(1), out).written is False  # identical: nothing to do
    with pytest.raises(InputError, match=r"model\.pt.*--force"):
        codegen.convert(small(2), out)  # same model.py, other weights
    assert snapshot(out) == before
    (out / "model.py").write_text("# edited by hand\n")
    with pytest.raises(InputError, match=r"model\.py.*--force"):
        codegen.convert(small(1), out)
    assert (out / "model.py").read_text() == "# edited by hand\n"
    codegen.convert(small(2), out, force=True)
    assert snapshot(out) != before and "edited" not in (out / "model.py").read_text()


def test_skeleton_of_a_hostile_layer_is_safe(base_graph):
    """A layer nobody knows, with a hostile class name, layer name, config and variable
    names, becomes a skeleton whose only code is its parameters and a raise."""
    graph, x, _ = base_graph
    graph = copy.deepcopy(graph)
    layer = graph.layers[1]  # the first Dense
    layer.class_name = 'Evil"""\nimport os #'
    layer.name = "forward\n'''"
    layer.config = {
        "name": layer.name,
        '"""key': INJECT,
        "nested": {"class_name": "__lambda__", "config": {"code": "AAAA"}},
        "list": [INJECT] * 100,
        "\\": "\u202e\x00\x1b[31m",
    }
    kernel, bias = layer.weights["kernel"], layer.weights["bias"]
    layer.weights = {"forward": kernel, "a/b\n": bias, "": np.zeros(3, "int64")}
    generated = generate(graph, allow_unsupported=True)
    source = generated.source
    tree = check_safe(source, strict_strings=False)
    strings = [
        n.value
        for n in ast.walk(tree)
        if isinstance(n, ast.Constant)
        and isinstance(n.value, str)
        and id(n) not in _docstrings(tree)
    ]
    assert len(strings) == 2  # the NotImplementedError message and a register_buffer name
    skeleton = next(
        n for n in tree.body if isinstance(n, ast.ClassDef) and n.name.endswith("Skeleton")
    )
    assert skeleton.name == "EvilImportOsSkeleton"
    skeleton_keys = {k for k in generated.state_dict if k.startswith("forward_1.")}
    assert skeleton_keys == {"forward_1.forward_1", "forward_1.a_b", "forward_1.weight"}
    module = load_module_from_source(source)
    net = getattr(module, generated.top.name)()
    net.load_state_dict(generated.state_dict, strict=True)
    with pytest.raises(NotImplementedError, match="forward"):
        net(torch.from_numpy(x))

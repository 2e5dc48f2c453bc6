"""What keeps generated code as fast as hand-written code, checked in the committed samples:
no layout shuffles inside a CNN, fused recurrent layers instead of Python loops over time."""

import ast
from pathlib import Path

import pytest

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
CNNS = ("mnist_cnn", "bn_conv", "small_resnet")
RECURRENT = ("text_classifier", "seq2seq_autoencoder", "crnn_ocr")


def _forwards(name: str) -> list[ast.FunctionDef]:
    tree = ast.parse((SAMPLES / name / "model.py").read_text())
    return [
        node
        for cls in tree.body
        if isinstance(cls, ast.ClassDef)
        for node in cls.body
        if isinstance(node, ast.FunctionDef) and node.name == "forward"
    ]


def _calls(node: ast.AST, attribute: str) -> list[ast.Call]:
    return [
        n
        for n in ast.walk(node)
        if isinstance(n, ast.Call)
        and isinstance(n.func, ast.Attribute)
        and n.func.attr == attribute
    ]


@pytest.mark.parametrize("name", CNNS)
def test_cnn_permutes_only_at_its_boundary(name):
    # An NHWC input permuted to NCHW is channels_last in memory already: the convolutions
    # then run channels_last with no copy, as long as nothing permutes in between.
    top, *_ = reversed(_forwards(name))
    statements = top.body
    for index, stmt in enumerate(statements):
        permutes = _calls(stmt, "permute")
        at_boundary = index == 0 or isinstance(stmt, ast.Return)
        assert not permutes or at_boundary, f"{name}: permute at line {stmt.lineno}"
    for forward in _forwards(name):
        assert not _calls(forward, "contiguous"), f"{name}: .contiguous() in forward"
    assert _calls(statements[0], "permute"), "the NHWC input is permuted once, first"


@pytest.mark.parametrize("name", RECURRENT)
def test_recurrent_layers_are_fused(name):
    # nn.LSTM/nn.GRU run every time step in one call; no forward loops over the sequence.
    source = (SAMPLES / name / "model.py").read_text()
    assert "nn.LSTM(" in source or "nn.GRU(" in source
    for forward in _forwards(name):
        loops = [n for n in ast.walk(forward) if isinstance(n, (ast.For, ast.While))]
        assert not loops, f"{name}: a loop in forward at line {loops[0].lineno}"

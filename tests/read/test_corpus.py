"""Real Keras files from public repositories (../shared/corpus, see its MANIFEST.md).

Each full model converts through the TensorFlow-free file reader and matches the framework
that loads it (Keras 3 for files Keras 3 wrote, tf-keras for Keras 2 files); the model with a
Lambda layer converts from the Lambda's bytecode, read as data (its reference never runs it). The files are read where they are, never copied
into the project; the tests skip when the folder is absent.
"""

import os
from pathlib import Path

import pytest

import codegen

CORPUS = Path(
    os.environ.get("KERAS2TORCH_CORPUS", Path(__file__).resolve().parents[3] / "shared" / "corpus")
)
FILES = (
    sorted(p.name for p in CORPUS.glob("*") if p.is_file() and p.suffix != ".md")
    if CORPUS.is_dir()
    else []
)
LAMBDA = {"30_Adnanemiri__Behavioral-Cloning__my_model.h5": "lambda_1"}

pytestmark = pytest.mark.skipif(not FILES, reason=f"no corpus at {CORPUS}")


@pytest.mark.parametrize("name", [n for n in FILES if n not in LAMBDA] or ["none"])
def test_full_model_converts_and_matches(name, tmp_path):
    path = CORPUS / name
    result = codegen.convert(path, tmp_path / "port", verify=True)
    assert result.reader == "file"
    assert result.passed, [(e.name, e.max_abs, e.max_rel) for e in result.errors]
    keras_version = _keras_version(path)
    expected = "Keras 3" if keras_version.startswith("3") else "tf-keras"
    assert result.reference.startswith(expected), (result.reference, keras_version)


@pytest.mark.parametrize("name", sorted(LAMBDA))
def test_lambda_model_converts_with_parity(name, tmp_path):
    """The steering model's ``Lambda(lambda x: x / 127.5 - 1.0)`` (Keras 2.2.4, Python 3.5
    bytecode) is translated from its bytecode.

    The reference never runs the file's code: the file's stored bytecode is checked to be
    exactly ``x / 127.5 - 1.0`` (its constants and instructions, read as data), that is
    computed with numpy, and tf-keras runs a copy of the file whose config has the Lambda
    removed (same layers, same weights) on the result."""
    pytest.importorskip("xdis")
    import numpy as np
    import torch
    from legacy import rewrite_config, tf_keras

    from codegen.check.compare import load_module_from_file
    from codegen.read.formats import open_model_file
    from codegen.read.lambda_bytecode import instructions
    from codegen.read.lambda_payload import candidates, payload

    path = CORPUS / name
    if not path.exists():
        pytest.skip(f"{name} is not in the corpus")
    with open_model_file(path) as model_file:
        layers = model_file.config["config"]
        layers = layers["layers"] if isinstance(layers, dict) else layers
    (entry,) = [e for e in layers if e["config"]["name"] == LAMBDA[name]]
    readings = candidates(payload(entry["config"]["function"]).code)
    python35 = next(r for r in readings if r.version == (3, 5))
    ops = [(i.opname, i.arg) for i in instructions(python35.code, (3, 5))]
    assert ops == [
        ("LOAD_FAST", 0),
        ("LOAD_CONST", 1),
        ("BINARY_TRUE_DIVIDE", None),
        ("LOAD_CONST", 2),
        ("BINARY_SUBTRACT", None),
        ("RETURN_VALUE", None),
    ]
    assert tuple(python35.code.co_consts) == (None, 127.5, 1.0)

    def without_lambda(config):
        body = config["config"]
        items = body["layers"] if isinstance(body, dict) else body
        index = next(i for i, e in enumerate(items) if e["config"]["name"] == LAMBDA[name])
        removed = items.pop(index)
        items[index]["config"]["batch_input_shape"] = removed["config"]["batch_input_shape"]
        return config

    reference_file = rewrite_config(path, tmp_path / "no_lambda.h5", without_lambda)
    reference = tf_keras().models.load_model(str(reference_file), compile=False)

    result = codegen.convert(path, tmp_path / "port")
    assert result.reader == "file" and not result.skeletons
    assert "x / 127.5 - 1.0" in result.module_path.read_text()
    net = getattr(load_module_from_file(result.module_path), result.class_name)()
    net.load_state_dict(torch.load(result.weights_path, weights_only=True), strict=True)
    net.eval()
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (2, 66, 200, 3)).astype("float32")
    expected = np.asarray(reference(images / np.float32(127.5) - np.float32(1.0)))
    with torch.no_grad():
        got = net(torch.from_numpy(images)).numpy()
    bound = 1e-5 * max(1.0, float(np.max(np.abs(expected))))
    assert float(np.max(np.abs(got - expected))) <= bound


def _keras_version(path: Path) -> str:
    from codegen.read.formats import open_model_file

    with open_model_file(path) as model_file:
        return "3" if model_file.kind == "keras" else str(model_file.keras_version)


@pytest.mark.parametrize("name", [n for n in FILES if n not in LAMBDA] or ["none"])
def test_same_graph_as_keras_where_keras_loads_it(name):
    from graph_compare import compare_graphs, same_port

    from codegen.errors import InputError
    from codegen.read.from_file import read_file
    from codegen.read.from_keras import load_keras_file, read_model

    path = CORPUS / name
    try:
        theirs = read_model(load_keras_file(path))
    except InputError as exc:
        pytest.skip(f"Keras 3 cannot load it: {str(exc)[-120:]}")
    ours = read_file(path, check_shapes=True)
    diffs = compare_graphs(ours, theirs, configs=False)  # legacy configs are normalized
    assert not diffs, "\n".join(diffs[:20])
    assert same_port(ours, theirs) == (True, True)

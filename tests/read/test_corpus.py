"""Real Keras files from public repositories (../shared/corpus, see its MANIFEST.md).

Each full model converts through the TensorFlow-free file reader and matches the framework
that loads it (Keras 3 for files Keras 3 wrote, tf-keras for Keras 2 files); the model with a
Lambda layer fails with a message naming it. The files are read where they are, never copied
into the project; the tests skip when the folder is absent.
"""

import os
from pathlib import Path

import pytest

import codegen
from codegen.errors import UnsupportedError

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
def test_lambda_model_is_refused_by_name(name, tmp_path):
    path = CORPUS / name
    if not path.exists():
        pytest.skip(f"{name} is not in the corpus")
    with pytest.raises(UnsupportedError) as info:
        codegen.convert(path, tmp_path / "port")
    assert f"'{LAMBDA[name]}' (Lambda)" in str(info.value)
    assert "never unmarshals or runs" in str(info.value)
    assert not (tmp_path / "port").exists()


def _keras_version(path: Path) -> str:
    from codegen.read.formats import open_model_file

    with open_model_file(path) as model_file:
        return "3" if model_file.kind == "keras" else str(model_file.keras_version)


@pytest.mark.parametrize("name", [n for n in FILES if n not in LAMBDA] or ["none"])
def test_same_graph_as_keras_where_keras_loads_it(name):
    from codegen.errors import InputError
    from codegen.read.from_file import read_file
    from codegen.read.from_keras import load_keras_file, read_model
    from graph_compare import compare_graphs, same_port

    path = CORPUS / name
    try:
        theirs = read_model(load_keras_file(path))
    except InputError as exc:
        pytest.skip(f"Keras 3 cannot load it: {str(exc)[-120:]}")
    ours = read_file(path, check_shapes=True)
    diffs = compare_graphs(ours, theirs, configs=False)  # legacy configs are normalized
    assert not diffs, "\n".join(diffs[:20])
    assert same_port(ours, theirs) == (True, True)

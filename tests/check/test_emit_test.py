"""``--emit-test``: test_model.py + model_reference.npz, a regression check needing only
torch, numpy and pytest, that keeps working after model.py is edited by hand."""

import subprocess
import sys

import keras
import numpy as np
import pytest
from keras import layers
from parity import check_source, randomize

import codegen
from codegen import cli
from codegen.check.emit_test import REFERENCE_FILE, TEST_FILE
from codegen.errors import InputError

# Runs pytest with Keras, TensorFlow and keras2torch itself made unimportable.
WITHOUT_KERAS = """
import sys, importlib.abc
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ("keras", "tensorflow", "tf_keras", "codegen"):
            raise ImportError("blocked: " + name)
sys.meta_path.insert(0, Block())
import pytest
sys.exit(pytest.main(sys.argv[1:]))
"""


def run_emitted(folder):
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_KERAS, "-q", "-p", "no:cacheprovider", TEST_FILE],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def bn_model(dropout=0.0):
    inputs = keras.Input((7, 7, 2), name="image")
    x = layers.Conv2D(3, 3, name="conv")(inputs)
    x = layers.BatchNormalization(name="bn")(x)
    x = layers.ReLU(name="act")(x)
    x = layers.Flatten(name="flat")(x)
    if dropout:
        x = layers.Dropout(dropout, name="drop")(x)
    model = keras.Model(inputs, layers.Dense(2, name="dense")(x), name="net")
    randomize(model)
    return model


def test_emitted_test_runs_without_keras_and_survives_edits(tmp_path, capsys):
    path = tmp_path / "net.keras"
    bn_model().save(path)
    out = tmp_path / "out"
    args = ["convert", str(path), "-o", str(out), "--channels-first", "--emit-test"]
    assert cli.main(args) == 0
    assert "regression test" in capsys.readouterr().out
    test_file = out / TEST_FILE
    check_source(test_file.read_text(), test_file)  # black, ruff, no keras import
    assert "INPUT_PERMS = [(0, 3, 1, 2)]" in test_file.read_text()
    with np.load(out / REFERENCE_FILE) as data:
        assert sorted(data.files) == ["input_0", "output_0", "train_output_0"]
        assert data["input_0"].shape == (2, 7, 7, 2)  # Keras layout
    assert (out / REFERENCE_FILE).stat().st_size < 10_000

    proc = run_emitted(out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "3 passed" in proc.stdout  # state_dict, inference, training mode

    # A hand edit that keeps the meaning still passes...
    source = (out / "model.py").read_text()
    assert "x = F.relu(x, inplace=True)" in source
    (out / "model.py").write_text(
        source.replace("x = F.relu(x, inplace=True)", "x = x.clamp(min=0)  # mine")
    )
    proc = run_emitted(out)
    assert proc.returncode == 0, proc.stdout + proc.stderr

    # ...one that changes it fails, naming the output.
    (out / "model.py").write_text(
        source.replace("x = F.relu(x, inplace=True)", "x = F.relu(x, inplace=True) * 1.01")
    )
    proc = run_emitted(out)
    assert proc.returncode == 1
    assert "test_inference_matches_keras" in proc.stdout and "output 0" in proc.stdout


def test_emit_is_deterministic_and_never_clobbers(tmp_path):
    model = bn_model(dropout=0.5)
    result = codegen.convert(model, tmp_path, emit_test=True)
    assert result.test_path == tmp_path / TEST_FILE
    text = result.test_path.read_text()
    npz = (tmp_path / REFERENCE_FILE).read_bytes()
    assert "def test_training_mode" not in text  # Dropout: training mode is random
    with np.load(tmp_path / REFERENCE_FILE) as data:
        assert sorted(data.files) == ["input_0", "output_0"]
        np.testing.assert_allclose(data["output_0"], np.asarray(model(data["input_0"])), atol=1e-6)

    again = codegen.convert(model, tmp_path, emit_test=True)
    assert not again.written  # same bytes: nothing rewritten
    assert (tmp_path / REFERENCE_FILE).read_bytes() == npz

    (tmp_path / TEST_FILE).write_text(text + "\n# my extra check\n")
    with pytest.raises(InputError, match=TEST_FILE):
        codegen.convert(model, tmp_path, emit_test=True)
    assert (tmp_path / TEST_FILE).read_text().endswith("# my extra check\n")
    codegen.convert(model, tmp_path, emit_test=True, force=True)
    assert (tmp_path / TEST_FILE).read_text() == text

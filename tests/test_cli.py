"""The command line: exit statuses, one-line errors, no tracebacks, no clobbering."""

import os
import subprocess
import sys

import keras
import pytest
from keras import layers

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


def run_cli(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "codegen.cli", *map(str, args)],
        capture_output=True,
        text=True,
        env=ENV,
        cwd=cwd,
        timeout=300,
    )


@pytest.fixture(scope="module")
def small_model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "tiny.keras"
    model = keras.Sequential(
        [
            keras.Input((9, 9, 2)),
            layers.Conv2D(4, 3, strides=2, padding="same"),
            layers.Flatten(),
            layers.Dense(3),
        ],
        name="tiny",
    )
    model.save(path)
    return path


def test_convert_verify_success(small_model_file, tmp_path):
    out = tmp_path / "out"
    proc = run_cli("convert", small_model_file, "-o", out, "--verify", "--class-name", "Tiny")
    assert proc.returncode == 0, proc.stderr
    assert "PASSED" in proc.stdout
    assert proc.stderr == ""  # TensorFlow's start-up noise stays out of the terminal
    source = (out / "model.py").read_text()
    assert "class Tiny(nn.Module)" in source
    assert f"keras2torch convert {small_model_file} -o {out} --class-name Tiny" in source
    assert (out / "model.pt").is_file()


def test_refuses_to_overwrite_edited_file(small_model_file, tmp_path):
    out = tmp_path / "out"
    assert run_cli("convert", small_model_file, "-o", out).returncode == 0
    # Same input again: identical content, nothing to refuse.
    assert run_cli("convert", small_model_file, "-o", out).returncode == 0
    edited = (out / "model.py").read_text() + "# my edit\n"
    (out / "model.py").write_text(edited)
    proc = run_cli("convert", small_model_file, "-o", out)
    assert proc.returncode == 2
    assert "--force" in proc.stderr and "Traceback" not in proc.stderr
    assert (out / "model.py").read_text() == edited
    assert run_cli("convert", small_model_file, "-o", out, "--force").returncode == 0
    assert (out / "model.py").read_text() != edited


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "no such file"),
        (b"", "not a Keras model file"),
        (b"garbage, not a model", "not a Keras model file"),
        (b"PK\x03\x04truncated zip", "damaged zip"),
        (b"\x89HDF\r\n\x1a\ntruncated", "cannot be read"),
    ],
)
def test_bad_input_one_line_exit_2(tmp_path, content, message):
    path = tmp_path / "model.keras"
    if content is not None:
        path.write_bytes(content)
    out = tmp_path / "out"
    proc = run_cli("convert", path, "-o", out)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert message in proc.stderr
    assert not out.exists()


def test_directory_instead_of_file(tmp_path):
    proc = run_cli("convert", tmp_path, "-o", tmp_path / "out")
    assert proc.returncode == 2 and "directory" in proc.stderr and "Traceback" not in proc.stderr


def test_weights_only_file(tmp_path):
    model = keras.Sequential([keras.Input((3,)), layers.Dense(2)])
    path = tmp_path / "weights.weights.h5"
    model.save_weights(path)
    proc = run_cli("convert", path, "-o", tmp_path / "out")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "weights" in proc.stderr


def test_unsupported_layers_listed_together(tmp_path):
    inputs = keras.Input((4,))
    x = layers.Dense(3, name="ok")(inputs)
    # Lambdas whose code keras2torch does not translate (keras.ops.cumsum has no mapping).
    x = layers.Lambda(lambda t: keras.ops.cumsum(t, axis=1), name="my_lambda")(x)
    x = layers.Lambda(lambda t: keras.ops.cumsum(t, axis=0), name="other_lambda")(x)
    model = keras.Model(inputs, x)
    path = tmp_path / "lambda.keras"
    model.save(path)
    out = tmp_path / "out"
    proc = run_cli("convert", path, "-o", out)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    # safe_mode refuses the Lambda's bytecode before anything runs.
    assert "my_lambda" in proc.stderr or "Lambda" in proc.stderr or "safe" in proc.stderr
    assert not out.exists()


def test_help_has_examples():
    proc = run_cli("convert", "--help")
    assert proc.returncode == 0 and "examples:" in proc.stdout

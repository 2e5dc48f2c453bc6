"""What the check runs on and writes: ``--inputs FILE``, default inputs drawn from what the
model records, and ``--weights-format safetensors``."""

import pickle
import subprocess
import sys

import keras
import numpy as np
import pytest
from keras import layers
from parity import randomize

import codegen
from codegen import cli
from codegen.api import generate, verify_folder
from codegen.app.command_line import detect_options
from codegen.check.inputs import choose_inputs
from codegen.errors import InputError


def run_main(capsys, *args):
    status = cli.main([str(a) for a in args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def two_input_model():
    """Token ids (int32) into an Embedding, and a float vector."""
    tokens = keras.Input((5,), dtype="int32", name="tokens")
    extra = keras.Input((4,), name="extra")
    x = layers.GlobalAveragePooling1D(name="pool")(layers.Embedding(50, 6, name="emb")(tokens))
    x = layers.Concatenate(name="cat")([x, layers.Dense(6, name="proj")(extra)])
    model = keras.Model([tokens, extra], layers.Dense(2, name="head")(x), name="two")
    randomize(model)
    return model


@pytest.fixture(scope="module")
def two_inputs(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "two.keras"
    two_input_model().save(path)
    return path


def test_inputs_by_name_any_batch_integers_and_emit_test(two_inputs, tmp_path, capsys):
    rng = np.random.default_rng(3)
    tokens = rng.integers(0, 50, (7, 5)).astype("int64")  # cast to the input's int32
    extra = rng.standard_normal((7, 4))  # float64, cast to float32
    data = tmp_path / "data.npz"
    np.savez(data, extra=extra, tokens=tokens)  # names, not order, decide
    out = tmp_path / "out"
    args = ["convert", two_inputs, "-o", out, "--verify", "--emit-test", "--inputs", data]
    status, text, err = run_main(capsys, *args)
    assert status == 0, err
    report = (out / "REPORT.md").read_text()
    assert "your own, batch 7" in report and "array 'tokens'" in report
    with np.load(out / "model_reference.npz") as reference:
        assert np.array_equal(reference["input_0"], tokens.astype("int32"))
        assert reference["input_1"].dtype == np.float32 and reference["output_0"].shape == (7, 2)
    # In order (np.savez's arr_0, arr_1) and as arrays in memory, through verify.
    ordered = tmp_path / "ordered.npz"
    np.savez(ordered, tokens, extra)
    assert run_main(capsys, "verify", two_inputs, out, "--inputs", ordered)[0] == 0
    report, _ = verify_folder(two_inputs, out, inputs=[tokens[:1], extra[:1]], write=False)
    assert report.passed and report.batch == 1


def test_npy_for_one_input(tmp_path):
    inputs = keras.Input((3,), name="x")
    model = keras.Model(inputs, layers.Dense(2, name="d")(inputs))
    randomize(model)
    np.save(tmp_path / "x.npy", np.arange(12, dtype="float32").reshape(4, 3))
    result = codegen.convert(model, tmp_path / "out", verify=True, inputs=tmp_path / "x.npy")
    assert result.outcome == "passed" and result.report.input_shapes == [(4, 3)]


@pytest.mark.parametrize(
    "arrays, message",
    [
        (
            {"tokens": np.zeros((2, 6), "int32"), "extra": np.zeros((2, 4))},
            "expected shape (N, 5) int32, got (2, 6) int32",
        ),
        ({"tokens": np.zeros((2, 5)), "extra": np.zeros((2, 4))}, "input 0 'tokens'"),
        ({"tokens": np.zeros((2, 5), "int32"), "extra": np.zeros((3, 4))}, "batch sizes differ"),
        (
            {"tokens": np.zeros((2, 5), "int32")},
            "1 array(s) ('tokens') for a model with 2 input(s)",
        ),
        ({"tokens": np.zeros((2, 5), "int32"), "extra": np.array(["a", "b"])}, "not numbers"),
    ],
)
def test_inputs_that_do_not_fit_write_nothing(two_inputs, tmp_path, capsys, arrays, message):
    data = tmp_path / "bad.npz"
    np.savez(data, **arrays)
    out = tmp_path / "out"
    status, _, err = run_main(
        capsys, "convert", two_inputs, "-o", out, "--verify", "--inputs", data
    )
    assert status == 2 and message in err, err
    assert not out.exists()


def test_hostile_input_files_are_refused(two_inputs, tmp_path, capsys):
    pickled = tmp_path / "objects.npz"
    np.savez(pickled, tokens=np.array([{"a": 1}, None], dtype=object), extra=np.zeros((2, 4)))
    raw_pickle = tmp_path / "raw.npy"
    raw_pickle.write_bytes(pickle.dumps([1, 2, 3]))
    for path, message in (
        (pickled, "holds Python objects (pickled)"),
        (raw_pickle, "not an .npz or .npy file"),
        (tmp_path / "missing.npz", "no such file"),
    ):
        status, _, err = run_main(
            capsys, "convert", two_inputs, "-o", tmp_path / "out", "--verify", "--inputs", path
        )
        assert status == 2 and message in err, err
    status, _, err = run_main(
        capsys, "convert", two_inputs, "-o", tmp_path / "out", "--inputs", pickled
    )
    assert status == 2 and "--verify" in err and not (tmp_path / "out").exists()


def test_default_inputs_follow_the_model(tmp_path):
    image = keras.Input((6, 6, 3), name="image")
    tokens = keras.Input((9,), name="tokens")  # float ids, as old models declare them
    values = keras.Input((4,), name="values")
    plain = keras.Input((2,), name="plain")
    norm = layers.Normalization(name="norm")
    norm.adapt(np.random.default_rng(0).normal([100, -50, 0, 7], [5, 1, 2, 0.5], (500, 4)))
    x = layers.Flatten()(layers.Rescaling(1 / 255, name="rescale")(image))
    y = layers.Flatten()(layers.Embedding(1000, 2, name="emb")(tokens))
    z = norm(values)
    model = keras.Model([image, tokens, values, plain], layers.Concatenate()([x, y, z, plain]))
    chosen = choose_inputs(generate(model).graph, None, batch=64)
    pixels, ids, stats, normal = chosen.arrays
    assert pixels.min() >= 0 and pixels.max() <= 255 and pixels.max() > 200
    assert np.array_equal(pixels, np.round(pixels))
    assert ids.max() < 1000 and ids.max() > 100 and np.array_equal(ids, np.round(ids))
    assert np.allclose(stats.mean(0), [100, -50, 0, 7], atol=2.5)
    assert np.allclose(stats.std(0), [5, 1, 2, 0.5], rtol=0.4)
    assert abs(normal.mean()) < 0.5 and 0.6 < normal.std() < 1.4
    notes = chosen.notes
    assert "[0, 255]" in notes[0] and "'rescale'" in notes[0]
    assert "[0, 1000)" in notes[1] and "'emb'" in notes[1]
    assert "Normalization 'norm'" in notes[2] and notes[3].startswith("standard normal")

    result = codegen.convert(model, tmp_path / "out", verify=True)
    assert result.passed
    report = (tmp_path / "out" / "REPORT.md").read_text()
    assert "drawn from what the model records" in report and "Embedding 'emb'" in report


def test_safetensors_weights(tmp_path, capsys, monkeypatch):
    from safetensors.torch import load_file

    inputs = keras.Input((7, 7, 2), name="image")
    x = layers.BatchNormalization(name="bn")(layers.Conv2D(3, 3, name="conv")(inputs))
    model = keras.Model(inputs, layers.Dense(2, name="dense")(layers.Flatten()(x)), name="net")
    randomize(model)
    path = tmp_path / "net.keras"
    model.save(path)
    out = tmp_path / "out"
    args = ["convert", path, "-o", out, "--weights-format", "safetensors", "--emit-test"]
    assert run_main(capsys, *args, "--verify")[0] == 0
    assert (out / "model.safetensors").is_file() and not (out / "model.pt").exists()
    expected = generate(model).state_dict
    stored = load_file(out / "model.safetensors")
    assert list(stored) == list(expected) or sorted(stored) == sorted(expected)
    assert all(np.array_equal(stored[k].numpy(), v.numpy()) for k, v in expected.items())

    source = (out / "model.py").read_text()
    assert "--weights-format safetensors" in source
    assert detect_options(source)["weights_format"] == "safetensors"
    # The docstring's loading recipe works as written.
    recipe = []
    for line in source.split("Load the weights", 1)[1].splitlines()[1:]:
        if line.strip() and not line.startswith("    "):
            break
        recipe.append(line[4:])
    namespace = {}
    exec(compile(source, "model.py", "exec"), namespace)
    monkeypatch.chdir(out)
    exec("\n".join(recipe), namespace)
    assert namespace["model"].conv.weight.shape == (3, 2, 3, 3)
    # verify reads it; the same command again writes nothing new; the emitted test runs.
    status, text, _ = run_main(capsys, "verify", path, out)
    assert status == 0 and "weights `model.safetensors`" in (out / "REPORT.md").read_text()
    assert run_main(capsys, *args)[0] == 0
    test = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_model.py"],
        cwd=out,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert test.returncode == 0, test.stdout + test.stderr


def test_api_refuses_unknown_weights_format(tmp_path):
    inputs = keras.Input((3,))
    model = keras.Model(inputs, layers.Dense(2)(inputs))
    with pytest.raises(InputError, match="expected one of pt, safetensors"):
        codegen.convert(model, tmp_path / "out", weights_format="h5")
    assert not (tmp_path / "out").exists()

"""The float64 noise floor: a chaotic model is INCONCLUSIVE on random inputs (exit 3) and
PASSED on data it handles well; a damaged port stays FAILED (exit 1)."""

import json

import keras
import numpy as np
from keras import layers
from parity import randomize

from codegen import cli
from codegen.check.noise_floor import NOISE_FACTOR, within_noise


def run_main(capsys, *args):
    status = cli.main([str(a) for a in args])
    return status, capsys.readouterr().out


def chaotic_lstm():
    """An LSTM whose large recurrent weights make it chaotic on small inputs: float32
    rounding grows over 80 steps until two correct float32 runs differ by ~0.5. Inputs 8x
    larger saturate its gates and it is well conditioned again."""
    rng = np.random.default_rng(0)
    inputs = keras.Input((80, 8), name="chars")
    x = layers.LSTM(32, name="lstm")(inputs)
    model = keras.Model(inputs, layers.Dense(8, activation="softmax", name="head")(x))
    kernel, recurrent, bias = model.get_layer("lstm").weights
    kernel.assign(rng.normal(0, 0.3, kernel.shape).astype("float32"))
    recurrent.assign(rng.normal(0, 1.2, recurrent.shape).astype("float32"))
    bias.assign(rng.normal(0, 0.1, bias.shape).astype("float32"))
    head = model.get_layer("head").weights[0]
    head.assign(rng.normal(0, 1.0, head.shape).astype("float32"))
    return model


def test_criterion():
    assert within_noise(0.5, 0.1, 0.0) and within_noise(NOISE_FACTOR * 0.1, 0.1, 0.0)
    assert not within_noise(NOISE_FACTOR * 0.1 + 1e-3, 0.1, 1e-4)
    assert within_noise(NOISE_FACTOR * 0.1 + 1e-3, 0.1, 1e-2)
    assert not within_noise(float("inf"), 0.1, 1e-4) and not within_noise(0.1, float("nan"), 0)


def test_chaotic_model_is_inconclusive_then_passes_on_its_data(tmp_path, capsys):
    path = tmp_path / "chaos.keras"
    chaotic_lstm().save(path)
    out = tmp_path / "out"
    status, text = run_main(capsys, "convert", path, "-o", out, "--verify", "--json")
    data = json.loads(text)
    assert status == 3 and data["outcome"] == "inconclusive" and not data["ok"]
    [floor] = [n for n in data["noise_floor"] if n["name"] == "output"]
    assert data["outputs"][0]["max_rel"] > 1e-2  # far outside the tolerance ...
    assert floor["within"] and floor["port_rel"] > 1e-2  # ... and so is float32 itself

    report = (out / "REPORT.md").read_text()
    assert "**⚠️ INCONCLUSIVE**: the model amplifies float32 rounding" in report
    section = report.split("## Float64 noise floor", 1)[1].split("## Layers", 1)[0]
    assert f"{floor['port_rel']:.2e}" in section and f"{floor['keras_rel']:.2e}" in section
    layers_table = report.split("## Layers", 1)[1]
    assert "Float32 noise | Keras vs f64 |" in layers_table
    lstm_row = next(line for line in layers_table.splitlines() if "`lstm (LSTM)`" in line)
    assert "⚠️" in lstm_row

    # On data the model is well conditioned for, the same port passes.
    data_file = tmp_path / "data.npz"
    rng = np.random.default_rng(5)
    np.savez(data_file, chars=8 * rng.standard_normal((3, 80, 8)).astype("float32"))
    status, text = run_main(capsys, "verify", path, out, "--inputs", data_file)
    assert status == 0 and text.rstrip().endswith("PASSED"), text
    report = (out / "REPORT.md").read_text()
    assert "**✅ PASSED**" in report and "## Float64 noise floor" not in report
    assert "your own, batch 3" in report and "data.npz" in report


def test_damaged_port_stays_failed(tmp_path, capsys):
    inputs = keras.Input((6,), name="x")
    x = layers.Rescaling(0.5, name="half")(inputs)
    x = layers.Dense(8, activation="tanh", name="hidden")(x)
    model = keras.Model(inputs, layers.Dense(3, name="head")(x))
    randomize(model)
    path = tmp_path / "net.keras"
    model.save(path)
    out = tmp_path / "out"
    assert run_main(capsys, "convert", path, "-o", out, "--verify")[0] == 0

    module = out / "model.py"
    source = module.read_text()
    assert source.count("x * 0.5") == 1
    module.write_text(source.replace("x * 0.5", "x * 0.51"))
    status, text = run_main(capsys, "verify", path, out)
    assert status == 1 and "FAILED: the port does not match Keras" in text
    assert "(outside the noise)" in text
    report = (out / "REPORT.md").read_text()
    assert "**❌ FAILED**" in report
    row = next(
        line
        for line in report.split("## Float64 noise floor", 1)[1].splitlines()
        if line.startswith("| output |")
    )
    cells = [c.strip() for c in row.strip("|").split("|")]
    port_rel, keras_rel = float(cells[2]), float(cells[3])
    assert port_rel < 1e-5 < 1e-3 < keras_rel and cells[4] == "❌"


def test_inconclusive_outputs_read_within_noise_not_failed(tmp_path, capsys):
    """The per-output lines of an INCONCLUSIVE run say ``within noise``, never FAILED."""
    path = tmp_path / "chaos.keras"
    chaotic_lstm().save(path)
    out = tmp_path / "out"
    status, text = run_main(capsys, "convert", path, "-o", out, "--verify")
    assert status == 3 and "within noise" in text and "FAILED" not in text, text
    status, text = run_main(capsys, "verify", path, out)
    assert status == 3 and "within noise" in text and "FAILED" not in text, text

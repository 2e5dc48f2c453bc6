"""The benchmark suite's entry point runs end to end (``--smoke``: a tiny model, seconds)."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_benchmark_smoke_run(tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--smoke", "--out", str(tmp_path), "--name", "smoke"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((tmp_path / "results" / "smoke.json").read_text())
    assert results["mode"] == "smoke"
    (keras_row,) = results["keras"]
    # The port and Keras were timed on the same input and agree: the benchmark checks parity.
    assert keras_row["max_abs_diff"] <= 1e-5
    assert keras_row["times"]["generated"]["median_ms"] > 0
    assert keras_row["times"]["keras"]["median_ms"] > 0
    (fmt,) = results["format"]
    assert fmt["max_abs_diff"] <= 1e-5
    (half,) = results["half"]
    assert set(half["times"]) == {"fp32", "bfloat16", "float16"}
    table = (tmp_path / "RESULTS.md").read_text()
    assert "| tiny_cnn | 1 |" in table


def test_ladder_fit_recovers_a_known_cost():
    """The ladder's least-squares fit, on runs whose tool time is 20 ms per layer plus 30 ms
    per weight MB plus 1 s (what the ladder of real conversions feeds it)."""
    sys.path.insert(0, str(ROOT))
    from benchmarks.conversion_cost import _fit

    runs = []
    for layers, mb in ((155, 14), (176, 98), (428, 31), (516, 230), (300, 1336)):
        total = 0.020 * layers + 0.030 * mb + 1.0
        seconds = {"convert": total / 2, "render": total / 4, "check": 0.0, "write": total / 4}
        runs.append({"layers": layers, "weight_mb": mb, "seconds": {**seconds, "load": 9.0}})
    fit = _fit(runs)
    assert abs(fit["ms_per_layer"] - 20) < 1e-6 and abs(fit["ms_per_mb"] - 30) < 1e-6
    assert abs(fit["constant_s"] - 1.0) < 1e-6 and fit["r2_layers_and_mb"] > 0.999999

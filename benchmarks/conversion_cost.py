"""What ``keras2torch convert`` costs, on a ladder of keras.applications models.

Each model is built with ``weights=None``, randomized and saved as ``.keras`` (in a
TensorFlow process), then converted by the command line in a fresh process per conversion,
with each reader: the stages' seconds come from ``--json``, the peak memory from the
process's own accounting (``wait4``), compared with a process that only imports what the
conversion imports.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.worker import ENV, ROOT

FULL = (
    "MobileNetV2",
    "ResNet50",
    "DenseNet121",
    "EfficientNetB0",
    "ResNet152",
    "ConvNeXtTiny",
    "ConvNeXtBase",
    "ConvNeXtXLarge",
)
QUICK = ("MobileNetV2", "ResNet50", "DenseNet121")

_BUILD = """
import os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
from codegen.read.keras_import import import_keras
from benchmarks.keras_side import randomize
keras = import_keras()
name, path = sys.argv[1], sys.argv[2]
model = getattr(keras.applications, name)(weights=None, classifier_activation=None)
randomize(model)
model.save(path)
print(sum(int(w.numpy().nbytes) for w in model.weights))
"""

# What a conversion imports before it reads anything: the baseline of its peak memory.
_IMPORTS = {
    "file": "import codegen.cli.main, codegen.app.convert, torch, h5py, black, jinja2",
    "keras": "import codegen.cli.main, codegen.app.convert, torch, h5py, black, jinja2; "
    "from codegen.read.keras_import import import_keras; import_keras()",
}


def _measured(command: list[str]) -> tuple[float, float, str]:
    """Wall seconds, peak resident MB and stdout of one process."""
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.DEVNULL, env=ENV, cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - start
        out.seek(0)
        text = out.read()
    if proc.returncode not in (0,):
        raise RuntimeError(f"{' '.join(command)} exited {proc.returncode}: {text[-500:]}")
    return wall, usage.ru_maxrss / 1024, text


def _fit(runs: list[dict], tool=("convert", "render", "check", "write")) -> dict:
    """Least squares: the tool's seconds against layers alone, and against layers and
    weight megabytes together (converting and writing weights scale with their bytes)."""
    import numpy as np

    seconds = np.array([sum(r["seconds"].get(k, 0.0) for k in tool) for r in runs])
    layers = np.array([float(r["layers"]) for r in runs])
    megabytes = np.array([r["weight_mb"] for r in runs])

    def solve(*columns):
        a = np.column_stack([*columns, np.ones_like(seconds)])
        coef, *_ = np.linalg.lstsq(a, seconds, rcond=None)
        residual = float(np.sum((a @ coef - seconds) ** 2))
        total = float(np.sum((seconds - seconds.mean()) ** 2)) or 1.0
        return coef, 1.0 - residual / total

    (slope, intercept), r2 = solve(layers)
    (per_layer, per_mb, constant), r2_both = solve(layers, megabytes)
    return {
        "slope_ms": float(slope) * 1e3,
        "intercept_s": float(intercept),
        "r2": r2,
        "ms_per_layer": float(per_layer) * 1e3,
        "ms_per_mb": float(per_mb) * 1e3,
        "constant_s": float(constant),
        "r2_layers_and_mb": r2_both,
    }


def fits(runs: list[dict]) -> dict:
    """The fit of each reader with three runs or more."""
    readers = dict.fromkeys(r["reader"] for r in runs)
    found = {}
    for reader in readers:
        mine = [r for r in runs if r["reader"] == reader]
        if len(mine) >= 3:
            found[reader] = _fit(mine)
    return found


def ladder(quick: bool = False, models=None, readers=("file", "keras")) -> dict:
    models = models or (QUICK if quick else FULL)
    runs = []
    baselines = {r: _measured([sys.executable, "-c", _IMPORTS[r]])[1] for r in readers}
    with tempfile.TemporaryDirectory(prefix="k2t-ladder-") as tmp:
        for name in models:
            path = Path(tmp) / f"{name}.keras"
            _, _, text = _measured([sys.executable, "-c", _BUILD, name, str(path)])
            weight_bytes = int(text.split()[-1])
            for reader in readers:
                command = [
                    sys.executable,
                    "-m",
                    "codegen.cli",
                    "convert",
                    str(path),
                    "-o",
                    str(Path(tmp) / f"{name}_{reader}"),
                    "--reader",
                    reader,
                    "--force",
                    "--json",
                ]
                wall, peak, text = _measured(command)
                data = json.loads(text)
                over = peak - baselines[reader]
                runs.append(
                    {
                        "model": name,
                        "reader": reader,
                        "layers": data["layers"],
                        "parameters": data["parameters"],
                        "weight_mb": weight_bytes / 2**20,
                        "wall_s": wall,
                        "seconds": data["seconds"],
                        "peak_mb": peak,
                        "peak_over_baseline_mb": over,
                        "peak_over_weights": over / (weight_bytes / 2**20),
                    }
                )
                print(f"ladder: {name} {reader} {wall:.1f}s peak {peak:.0f} MB", file=sys.stderr)
            path.unlink()
    fits = {}
    for reader in readers:
        points = [r for r in runs if r["reader"] == reader]
        if len(points) >= 2:
            fits[reader] = _fit(points)
    return {
        "runs": runs,
        "fits": fits,
        "baseline_mb": baselines[readers[0]],
        "baselines_mb": baselines,
    }


if __name__ == "__main__":
    result = ladder(quick="--quick" in sys.argv, models=[a for a in sys.argv[1:] if a[0] != "-"])
    print(json.dumps(result, indent=1))

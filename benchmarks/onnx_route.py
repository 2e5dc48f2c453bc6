"""The route users take without keras2torch: Keras -> ONNX (tf2onnx) -> onnx2torch, timed
end to end for ResNet50, beside ``keras2torch convert`` on the same model.

tf2onnx does not support Keras 3 / TensorFlow 2.21, so it runs in an environment of its own
(TensorFlow 2.15 with its Keras 2), one process per step as a user would run them::

    python3.11 -m venv /tmp/onnxenv
    /tmp/onnxenv/bin/pip install torch==2.13.0
    /tmp/onnxenv/bin/pip install tensorflow-cpu==2.15.1 tf2onnx onnx2torch "numpy<2" onnx==1.16.2
    python -m benchmarks.onnx_route /tmp/onnxenv/bin/python [--rounds 3]

Prints the seconds of each step (median of the rounds) and the max |Δ| between the
onnx2torch module and Keras, and between keras2torch's port and Keras, on one batch.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}

MAKE = """
import numpy as np, tensorflow as tf
tf.keras.utils.set_random_seed(0)
model = tf.keras.applications.ResNet50(weights=None)
rng = np.random.default_rng(1)
for layer in model.layers:  # BatchNorm's statistics and affine weights randomized too
    if isinstance(layer, tf.keras.layers.BatchNormalization):
        gamma, beta, mean, var = layer.get_weights()
        layer.set_weights([rng.uniform(0.5, 1.5, gamma.shape), rng.uniform(-0.1, 0.1, beta.shape),
                           rng.uniform(-0.1, 0.1, mean.shape), rng.uniform(0.5, 1.5, var.shape)])
model.save({h5!r})
x = np.random.default_rng(2).normal(size=(2, 224, 224, 3)).astype(np.float32)
np.save({x!r}, x)
np.save({ref!r}, model.predict(x, verbose=0))
"""

TO_TORCH = """
import onnx, torch
from onnx2torch import convert
module = convert(onnx.load({onnx!r}))
torch.save(module, {pt!r})
"""

COMPARE = """
import numpy as np, torch
module = torch.load({pt!r}, weights_only=False).eval()
x, ref = np.load({x!r}), np.load({ref!r})
with torch.no_grad():
    got = module(torch.from_numpy(x)).numpy()
print(float(np.max(np.abs(got - ref))), float(np.max(np.abs(ref))))
"""


def _timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, env=ENV, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("python", help="the interpreter of the tf2onnx environment")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="k2t-onnx-") as tmp:
        d = Path(tmp)
        names = {"h5": "resnet50.h5", "x": "x.npy", "ref": "ref.npy", "onnx": "resnet50.onnx"}
        files = {k: str(d / n) for k, n in {**names, "pt": "resnet50.pt"}.items()}
        subprocess.run([args.python, "-c", MAKE.format(**files)], check=True, env=ENV)
        steps: dict[str, list[float]] = {"tf2onnx": [], "onnx2torch": [], "keras2torch": []}
        for _ in range(args.rounds):
            steps["tf2onnx"].append(
                _timed(
                    [
                        args.python,
                        "-m",
                        "tf2onnx.convert",
                        "--keras",
                        files["h5"],
                        "--output",
                        files["onnx"],
                        "--opset",
                        "13",
                    ]
                )
            )
            steps["onnx2torch"].append(_timed([args.python, "-c", TO_TORCH.format(**files)]))
            steps["keras2torch"].append(
                _timed(
                    [
                        str(Path(sys.executable).parent / "keras2torch"),
                        "convert",
                        files["h5"],
                        "-o",
                        str(d / "port"),
                        "--force",
                    ]
                )
            )
        for step, seconds in steps.items():
            print(
                f"{step}: {statistics.median(seconds):.1f} s (rounds: "
                f"{', '.join(f'{s:.1f}' for s in seconds)})"
            )
        route = statistics.median(steps["tf2onnx"]) + statistics.median(steps["onnx2torch"])
        print(
            f"Keras -> ONNX -> torch: {route:.1f} s; keras2torch: "
            f"{statistics.median(steps['keras2torch']):.1f} s"
        )
        out = subprocess.run(
            [args.python, "-c", COMPARE.format(**files)],
            check=True,
            env=ENV,
            capture_output=True,
            text=True,
        )
        print("onnx2torch max|Δ|, max|ref|:", out.stdout.strip())
        print("keras2torch max|Δ|, max|ref|:", _port_difference(d / "port", files))


def _port_difference(port: Path, files: dict) -> str:
    import numpy as np
    import torch

    from codegen.check.compare import load_module_from_file

    module = load_module_from_file(port / "model.py")
    name = next(n for n in dir(module) if n.lower().startswith("resnet50"))
    net = getattr(module, name)()
    net.load_state_dict(torch.load(port / "model.pt", weights_only=True), strict=True)
    x, ref = np.load(files["x"]), np.load(files["ref"])
    with torch.no_grad():
        got = net.eval()(torch.from_numpy(x)).numpy()
    return f"{float(np.max(np.abs(got - ref)))} {float(np.max(np.abs(ref)))}"


if __name__ == "__main__":
    main()

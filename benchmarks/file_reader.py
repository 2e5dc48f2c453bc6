"""Converting a legacy .h5 through the TensorFlow-free reader vs. importing TensorFlow alone.

Each measurement is a fresh process, run alternately so both see the same machine load:

- ``python -c "import tensorflow"``;
- ``keras2torch convert FILE -o OUT --reader file --force`` (the whole command: Python start,
  torch import, reading, converting, black, writing).

Usage: python -m benchmarks.file_reader [FILE.h5 ...] [--runs N]
Without files it uses the legacy files of ../shared/corpus when present, else it writes one
with tf-keras.
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

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus"
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(command, check=False, capture_output=True, text=True, env=ENV)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"failed: {' '.join(command)}\n{proc.stderr[-2000:]}")
    return elapsed


def legacy_files() -> list[Path]:
    if CORPUS.is_dir():
        import h5py

        found = []
        for path in sorted(CORPUS.iterdir()):
            try:
                with h5py.File(path, "r") as f:
                    config = f.attrs.get("model_config", b"")
                    version = f.attrs.get("keras_version", b"")
            except OSError:
                continue
            config = config.decode() if isinstance(config, bytes) else str(config)
            version = version.decode() if isinstance(version, bytes) else str(version)
            if config and version.startswith("2") and '"class_name": "Lambda"' not in config:
                found.append(path)
        if found:
            return found
    path = Path(tempfile.mkdtemp()) / "legacy.h5"
    script = (
        "import tensorflow as tf, tf_keras as K\n"
        "L = K.layers\n"
        "x = L.Input((64, 64, 3))\n"
        "y = L.Conv2D(16, 3)(x)\n"
        "y = tf.nn.relu(L.BatchNormalization()(y)) * 0.5\n"
        "y = L.GlobalAveragePooling2D()(L.SeparableConv2D(32, 3)(y))\n"
        f"K.Model(x, L.Dense(10)(y)).save({str(path)!r})\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, env=ENV, capture_output=True)
    return [path]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    files = args.files or legacy_files()
    out = Path(tempfile.mkdtemp())
    import_tf = [sys.executable, "-c", "import tensorflow"]
    timed(import_tf)  # warm the file cache once for both
    print(f"{'file':<60} {'convert (median)':>17} {'import tensorflow (median)':>27}")
    for path in files:
        convert = [
            sys.executable,
            "-m",
            "codegen.cli",
            "convert",
            str(path),
            "-o",
            str(out / path.stem),
            "--reader",
            "file",
            "--force",
        ]
        timed(convert)
        tf_times, convert_times = [], []
        for _ in range(args.runs):
            tf_times.append(timed(import_tf))
            convert_times.append(timed(convert))
        c, t = statistics.median(convert_times), statistics.median(tf_times)
        print(f"{path.name[:60]:<60} {c:>16.2f}s {t:>26.2f}s")
        print(
            f"{'':<60} runs: convert {[round(v, 2) for v in convert_times]}, tf {[round(v, 2) for v in tf_times]}"
        )


if __name__ == "__main__":
    main()

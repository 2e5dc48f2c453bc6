#!/usr/bin/env bash
# Create .venv and install everything keras2torch needs, in the order that keeps pip from
# pulling a multi-GB CUDA build of torch: the CPU torch first, then TensorFlow, then us.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
stamp=.venv/.keras2torch-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q torch==2.13.0
    .venv/bin/python -m pip install -q tensorflow-cpu==2.21.0
    .venv/bin/python -m pip install -q -e ".[test]"
    # tf-keras requires the `tensorflow` wheel, whose files replace tensorflow-cpu's (and print
    # CUDA start-up noise): put the CPU build's files back.
    if .venv/bin/python -m pip show -q tensorflow >/dev/null 2>&1; then
        .venv/bin/python -m pip install -q --no-deps --force-reinstall tensorflow-cpu==2.21.0
    fi
    # KerasHub for the hub tests, without its declared requirements: tensorflow-text would pull
    # another TensorFlow; `import keras_hub` needs only these two light packages besides.
    .venv/bin/python -m pip install -q --no-deps keras-hub==0.32.0 regex tokenizers
    touch "$stamp"
fi

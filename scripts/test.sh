#!/usr/bin/env bash
# Set up and run the test suite (the long keras.applications sweep runs with: -m slow).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export TF_CPP_MIN_LOG_LEVEL=3
.venv/bin/python -m pytest -q "$@"

#!/usr/bin/env bash
# The main job on a bundled sample: set up, convert with verification, print the report.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export TF_CPP_MIN_LOG_LEVEL=3
.venv/bin/keras2torch convert samples/small_resnet.keras -o out/small_resnet --verify --force
echo
echo "Generated module: out/small_resnet/model.py"

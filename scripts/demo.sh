#!/usr/bin/env bash
# Install splinecam (with the CPU build of PyTorch when no torch is installed) and run the demo:
# train a small ReLU MLP on two moons, compute its exact partition and decision boundary, write a PNG.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
"$PY" -c "import torch" 2>/dev/null || "$PY" -m pip install "torch==2.13.0"
"$PY" -m pip install -e .
"$PY" -m splinecam demo "$@"

#!/usr/bin/env bash
# Install splinecam and run the demo: train a small ReLU MLP on two moons, compute its exact partition
# and decision boundary, write a PNG. Needs Python 3.10+.
#
# When no torch is installed, torch==2.13.0 is installed first (scripts/install_torch.sh): by default
# with plain pip (from PyPI on Linux: the CUDA build, several GB); for the CPU-only build run
#   SPLINECAM_TORCH_INDEX=https://download.pytorch.org/whl/cpu bash scripts/demo.sh
# An installed torch (any build) is used as it is.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
bash scripts/install_torch.sh "$PY"
"$PY" -m pip install -e .
"$PY" -m splinecam demo "$@"

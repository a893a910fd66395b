#!/usr/bin/env bash
# Install what the tests need and run ruff and the test suite. Needs Python 3.10+.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -m "not slow"`.
#
# When no torch is installed, torch==2.13.0 is installed first (scripts/install_torch.sh; set
# SPLINECAM_TORCH_INDEX to PyTorch's CPU wheel index for the CPU-only build, see there).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
bash scripts/install_torch.sh "$PY"
"$PY" -m pip install -e ".[test]"
"$PY" -m ruff check splinecam tests benchmarks examples
"$PY" -m pytest -q "$@"

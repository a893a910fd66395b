#!/usr/bin/env bash
# Install what the tests need (CPU PyTorch first when no torch is installed) and run them.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -m "not slow"`.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
"$PY" -c "import torch" 2>/dev/null || "$PY" -m pip install "torch==2.13.0"
"$PY" -m pip install -e ".[test]"
"$PY" -m ruff check splinecam tests benchmarks examples
"$PY" -m pytest -q "$@"

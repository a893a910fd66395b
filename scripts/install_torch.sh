#!/usr/bin/env bash
# Make sure the Python given as $1 (default: $PYTHON or python3) is 3.10 or newer and can import torch;
# install torch==2.13.0 when it cannot, then say which torch build is in use.
#
#   SPLINECAM_TORCH_INDEX   a pip index URL to take torch from (pip install --index-url ...). Set it to
#                           PyTorch's own CPU-only wheel index, https://download.pytorch.org/whl/cpu,
#                           for the CPU build (about 200 MB).
#                           Unset: plain `pip install torch==2.13.0`, with pip's own configuration.
#                           From PyPI on Linux x86-64 that is the CUDA build: torch plus about 20
#                           nvidia-* packages (several GB), which also runs on machines without a GPU.
#                           (Where pip is configured with a local wheel directory holding the CPU wheel,
#                           as on our CI machines, it is the CPU build.)
#
# An installed torch is used as it is (any build, CPU or CUDA); nothing is reinstalled.
set -euo pipefail
PY=${1:-${PYTHON:-python3}}
TORCH_REQ="torch==2.13.0"

if ! command -v "$PY" >/dev/null 2>&1; then
    echo "install_torch.sh: no Python at '$PY'; set PYTHON=/path/to/python3.10+" >&2
    exit 1
fi
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
    echo "splinecam needs Python 3.10 or newer (the pinned $TORCH_REQ has no wheels for older ones);" \
         "$PY is $("$PY" -c 'import platform; print(platform.python_version())')." \
         "Run with PYTHON=/path/to/python3.10+ (or a virtual environment made from one)." >&2
    exit 1
fi

if ! "$PY" -c "import torch" 2>/dev/null; then
    if [[ -n "${SPLINECAM_TORCH_INDEX:-}" ]]; then
        echo "install_torch.sh: installing $TORCH_REQ from SPLINECAM_TORCH_INDEX=$SPLINECAM_TORCH_INDEX"
        "$PY" -m pip install "$TORCH_REQ" --index-url "$SPLINECAM_TORCH_INDEX"
    else
        echo "install_torch.sh: installing $TORCH_REQ with pip's default configuration" \
             "(from PyPI on Linux: the CUDA build; set SPLINECAM_TORCH_INDEX for the CPU-only build)"
        "$PY" -m pip install "$TORCH_REQ"
    fi
fi
"$PY" -c 'import torch
build = f"CUDA {torch.version.cuda} build" if torch.version.cuda else "CPU-only build"
gpu = "a GPU is visible" if torch.cuda.is_available() else "no GPU visible"
print(f"install_torch.sh: using torch {torch.__version__} ({build}; {gpu})")'

#!/usr/bin/env bash
# Run the graph-tool export tests against Debian's python3-graph-tool.
#
# graph-tool is not on PyPI. On Debian/Ubuntu it comes from apt for the system Python, so this
# script makes a virtual environment on top of /usr/bin/python3 that can see the system's
# site-packages, installs splinecam in it, and runs tests/test_graph_tool.py.
#
#   GT_VENV    where to make the venv (default /tmp/splinecam-gt-venv); reused when present
#   GT_TORCH   torch requirement to install (default torch==2.13.0)
#
# Usage (from anywhere):  bash .ci/graph_tool.sh [extra pytest args]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${GT_VENV:-/tmp/splinecam-gt-venv}"
TORCH_REQ="${GT_TORCH:-torch==2.13.0}"
SYS_PY=/usr/bin/python3

skip() {
    # not a Debian-like system: nothing to run here (the test file skips without graph-tool anyway)
    echo "graph_tool.sh: SKIPPED: $1. Elsewhere, install graph-tool with conda and run the tests:" >&2
    echo "  conda install -c conda-forge graph-tool && python -m pytest -q tests/test_graph_tool.py" >&2
    exit 0
}

if [[ ! -x "$SYS_PY" ]]; then
    skip "$SYS_PY not found"
fi

if ! "$SYS_PY" -c "import graph_tool" 2>/dev/null; then
    if ! command -v apt-get >/dev/null 2>&1; then
        skip "graph-tool is missing for $SYS_PY and apt-get is not available"
    fi
    SUDO=""
    if [[ "$(id -u)" != 0 ]]; then
        SUDO="sudo"
    fi
    echo "graph_tool.sh: installing Debian's python3-graph-tool"
    if ! $SUDO apt-get install -y python3-graph-tool; then
        $SUDO apt-get update
        $SUDO apt-get install -y python3-graph-tool
    fi
    "$SYS_PY" -c "import graph_tool"
fi
echo "graph_tool.sh: system graph-tool $("$SYS_PY" -c 'import graph_tool; print(graph_tool.__version__)')"

if [[ ! -x "$VENV/bin/python" ]]; then
    echo "graph_tool.sh: creating $VENV"
    "$SYS_PY" -m venv --system-site-packages "$VENV"
fi
PY="$VENV/bin/python"
"$PY" -c "import graph_tool" # the venv must see the system's graph-tool

cd "$ROOT"
# numpy < 2: Debian's graph-tool is built against the system's numpy 1.x
"$PY" -m pip install "$TORCH_REQ" 'numpy<2'
"$PY" -m pip install -e '.[test]'
# the test file skips without graph-tool; here a graph-tool that does not import must fail instead
SPLINECAM_REQUIRE_GRAPH_TOOL=1 "$PY" -m pytest -q -p no:cacheprovider tests/test_graph_tool.py "$@"

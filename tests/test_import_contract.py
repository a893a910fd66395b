"""The package's import contract (``[tool.importlinter]`` in pyproject.toml): stages import downwards only
(trace -> engine -> result -> analysis -> viz -> integrations -> compat), and nothing imports compat."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _lint(cwd: Path) -> subprocess.CompletedProcess:
    exe = shutil.which("lint-imports")
    if exe is None:
        pytest.skip("import-linter is not installed (pip install -e '.[test]')")
    return subprocess.run([exe, "--no-cache"], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_import_contract_is_kept() -> None:
    res = _lint(ROOT)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "2 kept, 0 broken" in res.stdout


def test_import_contract_catches_an_upward_import(tmp_path: Path) -> None:
    # the same contract on a copy of the package in which the engine imports the analysis stage
    shutil.copytree(ROOT / "splinecam", tmp_path / "splinecam", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    with open(tmp_path / "splinecam" / "engine" / "codes.py", "a") as f:
        f.write("\nfrom ..analysis import boundary  # noqa: E402,F401\n")
    exe = shutil.which("lint-imports")
    if exe is None:
        pytest.skip("import-linter is not installed")
    res = subprocess.run(
        [exe, "--no-cache"], cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env={"PYTHONPATH": str(tmp_path), "PATH": str(Path(sys.executable).parent)},
    )
    assert res.returncode != 0
    assert "splinecam.engine.codes -> splinecam.analysis.boundary" in res.stdout

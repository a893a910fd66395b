#!/usr/bin/env python3
"""Run the ```python code blocks of the documentation pages, so that every example in them works.

Each page's blocks run in order, in one namespace (a later block sees what an earlier one defined),
in a fresh temporary directory (files the examples write do not land in the repository), with
matplotlib's non-interactive Agg backend and one torch thread (the examples' models are tiny). Blocks of other languages (```bash, ```text) are not run.

A block may be preceded by a marker comment naming Python modules it needs, e.g.::

    <!-- requires: lightning -->
    ```python
    ...
    ```

It then runs only when those modules can be imported, and is reported as skipped otherwise (pass
``--strict`` to make a missing requirement an error). There is no way to skip a block otherwise.

A block fails on an exception, and on any warning it raises (warnings are errors here: an example
that warns is a bad example).

Usage::

    python scripts/check_docs_snippets.py                 # docs/*.md
    python scripts/check_docs_snippets.py docs/getting-started.md -v

Exit status: 0 when every block ran, 1 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import os
import re
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# the examples document this checkout's splinecam, installed or not
sys.path.insert(0, str(ROOT))
FENCE = re.compile(r"^(?P<indent>[ ]{0,3})(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`\s]*)[^`]*$")
REQUIRES = re.compile(r"<!--\s*requires:\s*(?P<mods>[\w.,\s]+?)\s*-->")


def extract_blocks(text: str) -> list[tuple[int, str, list[str]]]:
    """The ```python blocks of a Markdown text: ``(first code line, code, required modules)``."""
    lines = text.splitlines()
    blocks = []
    i = 0
    pending: list[str] = []
    while i < len(lines):
        line = lines[i]
        req = REQUIRES.search(line)
        if req:
            pending = [m.strip() for m in req.group("mods").split(",") if m.strip()]
            i += 1
            continue
        m = FENCE.match(line)
        if not m:
            if line.strip():
                pending = []
            i += 1
            continue
        fence, info = m.group("fence"), m.group("info").lower()
        start = i + 1
        j = start
        while j < len(lines) and not lines[j].strip().startswith(fence):
            j += 1
        if j == len(lines):
            raise SystemExit(f"unclosed code fence opened on line {i + 1}")
        if info in ("python", "py"):
            blocks.append((start + 1, "\n".join(lines[start:j]) + "\n", pending))
        pending = []
        i = j + 1
    return blocks


def missing_modules(mods: list[str]) -> list[str]:
    out = []
    for m in mods:
        try:
            if importlib.util.find_spec(m) is None:
                out.append(m)
        except (ImportError, ValueError):
            out.append(m)
    return out


NOISE = (DeprecationWarning, PendingDeprecationWarning, FutureWarning)


def _third_party_noise(w: warnings.WarningMessage, page: str) -> bool:
    """A deprecation notice raised inside a third-party library (not by splinecam or the example)."""
    import splinecam

    pkg = str(Path(splinecam.__file__).resolve().parent) + os.sep
    fname = str(w.filename)
    return issubclass(w.category, NOISE) and not fname.startswith(pkg) and fname != page


def run_page(path: Path, verbose: bool, strict: bool) -> tuple[int, int, int]:
    """Run one page's blocks; returns (ran, skipped, failed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rel = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    blocks = extract_blocks(path.read_text(encoding="utf-8"))
    ns: dict = {"__name__": "__docs__"}
    ran = skipped = failed = 0
    for lineno, code, requires in blocks:
        where = f"{rel}:{lineno}"
        miss = missing_modules(requires)
        if miss:
            if strict:
                print(f"FAIL {where}: needs {', '.join(miss)}, which cannot be imported")
                failed += 1
            else:
                print(f"skip {where}: needs {', '.join(miss)}")
                skipped += 1
            continue
        # pad with blank lines so that tracebacks give the line numbers of the Markdown file
        compiled = compile("\n" * (lineno - 1) + code, str(rel), "exec")
        out = io.StringIO()
        t0 = time.perf_counter()
        error = None
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
                    exec(compiled, ns)
            except BaseException:  # noqa: BLE001 - report whatever the example raised
                error = traceback.format_exc()
        plt.close("all")
        dt = time.perf_counter() - t0
        bad_warnings = [w for w in caught if not _third_party_noise(w, str(rel))]
        if error or bad_warnings:
            failed += 1
            print(f"FAIL {where} ({dt:.1f} s)")
            if out.getvalue():
                print("  output:\n" + "\n".join("    " + s for s in out.getvalue().splitlines()))
            if error:
                print("\n".join("  " + s for s in error.rstrip().splitlines()))
            for w in bad_warnings:
                print(f"  warning: {w.category.__name__}: {w.message} ({w.filename}:{w.lineno})")
        else:
            ran += 1
            if verbose:
                print(f"ok   {where} ({dt:.1f} s)")
                if out.getvalue():
                    print("\n".join("    " + s for s in out.getvalue().splitlines()))
    return ran, skipped, failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pages", nargs="*", type=Path, help="Markdown files (default: docs/*.md)")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every block's output")
    parser.add_argument("--strict", action="store_true", help="a block whose requirements are missing fails")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="run in this directory and keep the files the examples write (default: a temporary one)")
    args = parser.parse_args(argv)
    pages = [p.resolve() for p in args.pages] or sorted((ROOT / "docs").glob("*.md"))
    os.environ.setdefault("MPLBACKEND", "Agg")
    # the examples use tiny models: one thread is fastest for them, and fair on a shared machine
    import torch

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    totals = [0, 0, 0]
    cwd = os.getcwd()
    for page in pages:
        if not page.is_file():
            print(f"FAIL {page}: no such file")
            totals[2] += 1
            continue
        with contextlib.ExitStack() as stack:
            if args.workdir is None:
                tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="splinecam-docs-"))
            else:
                tmp = args.workdir.resolve() / page.stem
                tmp.mkdir(parents=True, exist_ok=True)
            os.chdir(tmp)
            try:
                r, s, f = run_page(page, args.verbose, args.strict)
            finally:
                os.chdir(cwd)
        totals = [a + b for a, b in zip(totals, (r, s, f))]
    ran, skipped, failed = totals
    print(
        f"docs snippets: {ran} ran, {skipped} skipped, {failed} failed "
        f"({len(pages)} pages, {time.perf_counter() - t0:.1f} s)"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env bash
# Build the documentation into docs/_build/ (git-ignored) and check it:
#
#   1. the API reference, generated from the docstrings (NumPy format) with pdoc -> docs/_build/api/
#   2. the pages docs/*.md rendered to HTML (plus docs/images/) -> docs/_build/*.html
#   3. every relative link and image of the pages, and every module page, must exist
#   4. every ```python block of the pages must run (scripts/check_docs_snippets.py)
#
# Every stage runs; any warning from pdoc, a broken link, a missing picture or a failing example makes
# the script exit non-zero at the end.
# Installs the "docs" extra (pdoc) first if pdoc is missing. Run from anywhere:
#
#   bash scripts/build_docs.sh            # then open docs/_build/index.html
#   PYTHON=.venv/bin/python bash scripts/build_docs.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
start=$(date +%s)

"$PY" -c "import pdoc" 2>/dev/null || "$PY" -m pip install -e ".[docs]"

rm -rf docs/_build
mkdir -p docs/_build

failed=()

# ---------------------------------------------------------------- 1. API reference (pdoc)
"$PY" - <<'EOF' || failed+=("API reference")
import importlib.util
import re
import sys
import warnings
from pathlib import Path

# The public modules: the package and its stage folders (pdoc walks their submodules).
MODULES = [
    "splinecam", "splinecam.analysis", "splinecam.viz", "splinecam.compat", "splinecam.integrations",
    "splinecam.training", "splinecam.verify",
]
EXPECTED = [
    "splinecam", "splinecam.analysis.boundary", "splinecam.compat.compute", "splinecam.datasets",
    "splinecam.analysis.graph", "splinecam.viz.plot", "splinecam.viz.record", "splinecam.analysis.stats",
    "splinecam.compat.utils", "splinecam.compat.wrappers",
    "splinecam.integrations", "splinecam.integrations.lightning", "splinecam.integrations.tensorboard",
    "splinecam.training", "splinecam.verify", "splinecam.viz.notebook",
]
out = Path("docs/_build/api")
problems = []

with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import pdoc
    import pdoc.render

    import splinecam
    import splinecam.integrations.lightning  # noqa: F401
    import splinecam.integrations.tensorboard  # noqa: F401

    # the integrations must not import their frameworks at import time
    for name in ("lightning", "pytorch_lightning", "tensorboard"):
        if name in sys.modules:
            problems.append(f"importing splinecam.integrations imported {name!r}; it must be imported lazily")


    pdoc.render.configure(
        docformat="numpy",
        footer_text=f"splinecam {splinecam.__version__}",
        search=True,
        show_source=True,
    )
    pdoc.pdoc(*MODULES, output_directory=out)

for w in caught:
    problems.append(f"{w.category.__name__}: {w.message} ({w.filename}:{w.lineno})")

for mod in EXPECTED:
    page = out / (mod.replace(".", "/") + ".html")
    if not page.is_file():
        problems.append(f"pdoc wrote no page for {mod} ({page})")

# pdoc has no Sphinx-style "~" (show the last name only): drop the tilde from rendered references
for page in out.rglob("*.html"):
    text = page.read_text(encoding="utf-8")
    new = re.sub(r"<code>~(?=<a |[A-Za-z_])", "<code>", text)
    if new != text:
        page.write_text(new, encoding="utf-8")

if problems:
    print("API reference: problems:", *problems, sep="\n  ")
    sys.exit(1)
print(f"API reference: {sum(1 for _ in out.rglob('*.html'))} pages in {out}")
EOF

# ---------------------------------------------------------------- 2. pages, 3. links
cp -r docs/images docs/_build/images 2>/dev/null || true
"$PY" - <<'EOF' || failed+=("pages")
import html
import re
import sys
from pathlib import Path

import markdown2
from pygments.formatters import HtmlFormatter

DOCS = Path("docs")
BUILD = DOCS / "_build"
PAGES = sorted(DOCS.glob("*.md"))
NAV = [("index.md", "splinecam"), ("getting-started.md", "Getting started"), ("gallery.md", "Gallery"),
       ("layers.md", "Supported layers"),
       ("api.md", "API reference")]
EXTRAS = {
    "fenced-code-blocks": {"cssclass": "codehilite"},
    "header-ids": {"mixed": True, "reset-count": True},
    "tables": None, "code-friendly": None, "cuddled-lists": None, "markdown-in-html": None, "strike": None,
}
CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; line-height: 1.55;
       max-width: 58rem; margin: 0 auto; padding: 0 1.2rem 4rem; color: #1d1d1f; }
nav { padding: .9rem 0; border-bottom: 1px solid #ddd; margin-bottom: 1.2rem; }
nav a { margin-right: 1.3rem; text-decoration: none; font-weight: 600; color: #1f5fa8; }
nav a.here { color: #1d1d1f; }
a { color: #1f5fa8; }
code { font-size: .92em; background: #f3f3f4; padding: .05em .25em; border-radius: 3px; }
pre { background: #f6f8fa; padding: .8rem 1rem; overflow-x: auto; border-radius: 6px; line-height: 1.4; }
pre code { background: none; padding: 0; }
img { max-width: 100%; }
table { border-collapse: collapse; margin: 1rem 0; }
th, td { border: 1px solid #ddd; padding: .3rem .6rem; text-align: left; vertical-align: top; }
h1, h2, h3 { line-height: 1.25; }
h2 { margin-top: 2.2rem; border-bottom: 1px solid #eee; padding-bottom: .2rem; }
"""


def rewrite(href: str) -> str:
    """A link of a docs/*.md page (as GitHub shows it) -> the same link from docs/_build/*.html."""
    if re.match(r"^[a-z][a-z0-9+.-]*:|^#|^/", href):
        return href
    path, _, frag = href.partition("#")
    if path.startswith("_build/"):
        path = path[len("_build/"):]
    elif path.startswith("../"):
        path = "../" + path  # outside docs/: one level further up
    elif path.endswith(".md"):
        path = path[:-3] + ".html"
    return path + ("#" + frag if frag else "")


style = HtmlFormatter().get_style_defs(".codehilite")
for md in PAGES:
    text = md.read_text(encoding="utf-8")
    body = str(markdown2.markdown(text, extras=EXTRAS))
    body = re.sub(r'(href|src)="([^"]*)"',
                  lambda m: f'{m.group(1)}="{html.escape(rewrite(html.unescape(m.group(2))), quote=True)}"', body)
    title = re.search(r"^#\s+(.+)$", text, re.M)
    title = re.sub(r"[`*]", "", title.group(1)) if title else md.stem
    nav = " ".join(
        f'<a href="{p[:-3]}.html"{" class=here" if p == md.name else ""}>{html.escape(t)}</a>' for p, t in NAV
    )
    page = (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{CSS}\n{style}</style></head>\n"
        f"<body><nav>{nav}</nav>\n<main>\n{body}\n</main></body></html>\n"
    )
    (BUILD / (md.stem + ".html")).write_text(page, encoding="utf-8")

# every relative link and image of the pages must exist (and so must an anchor into a page)
problems = []
ids: dict[Path, set[str]] = {}


def anchors(p: Path) -> set[str]:
    if p not in ids:
        ids[p] = set(re.findall(r'\sid="([^"]+)"', p.read_text(encoding="utf-8", errors="replace")))
    return ids[p]


for md in PAGES:
    # docs/_build is git-ignored: a link into it is broken where the pages are read as Markdown
    for href in re.findall(r"\]\(([^)\s]+)\)|(?:href|src)=\"([^\"]+)\"", md.read_text(encoding="utf-8")):
        href = next(h for h in href if h)
        if href.startswith(("_build/", "./_build/", "docs/_build/")):
            problems.append(f"{md}: link {href!r} points into the git-ignored docs/_build/; name the file in text")
    page = BUILD / (md.stem + ".html")
    for attr, href in re.findall(r'(href|src)="([^"]*)"', page.read_text(encoding="utf-8")):
        href = html.unescape(href)
        if re.match(r"^[a-z][a-z0-9+.-]*:", href):
            continue  # external
        path, _, frag = href.partition("#")
        target = (page.parent / path).resolve() if path else page.resolve()
        if not target.exists():
            try:  # name the source file (docs/images/x.png), not its copy in docs/_build
                shown = DOCS / target.relative_to(BUILD.resolve())
            except ValueError:
                shown = target
            problems.append(f"{md}: broken {'image' if attr == 'src' else 'link'} {href!r}: no {shown}")
        elif frag and target.suffix == ".html" and frag not in anchors(target):
            problems.append(f"{md}: link {href!r}: {target.name} has no anchor #{frag}")
for p, _ in NAV:
    if not (DOCS / p).is_file():
        problems.append(f"docs/{p} is missing")
if problems:
    print("pages: problems:", *problems, sep="\n  ")
    sys.exit(1)
print(f"pages: {len(PAGES)} pages in {BUILD}, links and images checked")
EOF

# ---------------------------------------------------------------- 4. the examples on the pages run
"$PY" scripts/check_docs_snippets.py docs/*.md README.md || failed+=("examples on the pages and in README.md")

took=$(( $(date +%s) - start ))
if (( ${#failed[@]} )); then
    printf 'docs: FAILED (%s) after %d s\n' "$(IFS=,; echo "${failed[*]}" | sed 's/,/, /g')" "$took" >&2
    exit 1
fi
echo "docs built in $took s: open docs/_build/index.html"

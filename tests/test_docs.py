"""The documentation: the MkDocs site builds with --strict, and the README stays short and linked.

``mkdocs build --strict`` fails on any warning: a page missing from the nav, a broken link or
anchor between pages, a docstring mkdocstrings cannot render. The README is read on GitHub and
PyPI, where nothing checks its links, so this test does.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
MAX_README_LINES = 260
# [text](target) or [text](target "title"); images too.
LINK = re.compile(r"\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    build = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-5000:]
    return out


def test_mkdocs_build_strict(site):
    assert (site / "index.html").is_file()
    for page in ("training", "contracts", "architecture", "api/models"):
        assert (site / page / "index.html").is_file(), page


def test_readme_is_short():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= MAX_README_LINES, f"README.md has {len(lines)} lines"


def readme_links() -> list[str]:
    return [
        target
        for target in LINK.findall(README.read_text(encoding="utf-8"))
        if not re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE)  # http:, mailto:, ...
    ]


def test_readme_relative_links_exist():
    links = readme_links()
    assert links, "no relative links found in README.md"
    missing = [t for t in links if not (REPO / t.split("#")[0]).exists()]
    assert not missing, f"README.md links to missing files: {missing}"


def test_readme_anchors_into_docs_exist(site):
    """A link such as docs/training.md#precision must name a heading of the built page."""
    broken = []
    for target in readme_links():
        path, _, anchor = target.partition("#")
        if not anchor or not path.startswith("docs/") or not path.endswith(".md"):
            continue
        page = path[len("docs/") : -len(".md")]
        html = site / ("index.html" if page == "index" else f"{page}/index.html")
        if f'id="{anchor}"' not in html.read_text(encoding="utf-8"):
            broken.append(target)
    assert not broken, f"README.md links to missing anchors: {broken}"

"""The docs: the site builds with --strict and offline, the README stays a first screen.

The docs site is mkdocs-material with API pages from the docstrings (mkdocs.yml, docs/);
CONTRIBUTING.md says what the docs must hold. These tests keep the parts a machine can
check: no build warning, no request to another host, no broken relative link, and the
README's commands exactly as CI and users run them.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .support.paths import REPO

pytestmark = pytest.mark.quality

README = REPO / "README.md"
DOCS = REPO / "docs"
README_MAX_LINES = 200
# Both exactly as they are: CI (.ci/run) runs the second, users paste the first.
COMMANDS = (
    "scripts/setup && .venv/bin/grounded-answer explain",
    "scripts/setup --dev && .venv/bin/python -m pytest -m quality && "
    '.venv/bin/python -m pytest -m "not quality"',
)

_FENCE = re.compile(r"^ {0,3}(```|~~~).*?^ {0,3}\1[ \t]*$", re.M | re.S)
_CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1", re.S)
_INLINE_LINK = re.compile(r"!?\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_REFERENCE_LINK = re.compile(r"^ {0,3}\[[^\]\n]+\]:\s*<?(\S+?)>?(?:\s+\"[^\"]*\")?\s*$", re.M)
_EXTERNAL = re.compile(r"^(?:[a-z][a-z0-9+.-]*:|//|#)", re.I)
# What makes a page fetch something from elsewhere: a script, a style sheet, a font, an
# image, a frame or a preconnect from another host. Links a reader may follow are fine.
_FETCHING_TAG = re.compile(
    r"<(?:script|img|iframe|source|video|audio|embed)\b[^>]*\bsrc\s*=\s*[\"']?(?:https?:)?//"
    r"|<link\b[^>]*\bhref\s*=\s*[\"']?(?:https?:)?//",
    re.I,
)
_CSS_REMOTE = re.compile(r"(?:url\(\s*[\"']?|@import\s+[\"'])(?:https?:)?//", re.I)


def relative_links(markdown: str) -> list[str]:
    """The relative link targets of a Markdown text, outside code, without #fragments."""
    text = _CODE_SPAN.sub("", _FENCE.sub("", markdown))
    targets = _INLINE_LINK.findall(text) + _REFERENCE_LINK.findall(text)
    return [
        target.split("#", 1)[0].split("?", 1)[0]
        for target in targets
        if not _EXTERNAL.match(target)
    ]


def broken_links(page: Path) -> list[str]:
    """The relative links of ``page`` whose target does not exist, as 'page: target'."""
    return [
        f"{page.relative_to(REPO)}: {target}"
        for target in relative_links(page.read_text(encoding="utf-8"))
        if not (page.parent / target).exists()
    ]


def remote_requests(site: Path) -> list[str]:
    """Places in a built site that would make a browser fetch from another host."""
    found = []
    for file in sorted(site.rglob("*")):
        if file.suffix == ".html":
            pattern = _FETCHING_TAG
        elif file.suffix == ".css":
            pattern = _CSS_REMOTE
        else:
            continue
        text = file.read_text(encoding="utf-8", errors="replace")
        found += [
            f"{file.relative_to(site)}: {text[m.start() : m.start() + 120]!r}"
            for m in pattern.finditer(text)
        ]
    return found


def test_the_docs_build_strictly_and_offline(tmp_path: Path) -> None:
    mkdocs = Path(sys.executable).parent / "mkdocs"
    assert mkdocs.exists(), "mkdocs is not installed: run scripts/setup --dev"
    site = tmp_path / "site"
    result = subprocess.run(
        [str(mkdocs), "build", "--strict", "--site-dir", str(site)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-8000:]
    assert (site / "reference" / "api" / "index.html").exists()
    assert not remote_requests(site), "\n".join(remote_requests(site))


def test_the_readme_is_a_first_screen_with_both_commands() -> None:
    readme = README.read_text(encoding="utf-8")
    lines = readme.count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines (at most {README_MAX_LINES})"
    blocks = re.findall(r"```bash\n(.*?)\n```", readme, re.S)
    for command in COMMANDS:
        assert command in blocks, f"README.md lacks, as a bash block of its own: {command}"


def test_every_relative_link_points_at_a_file() -> None:
    pages = [README, *sorted(DOCS.rglob("*.md"))]
    assert len(pages) > 10
    broken = [link for page in pages for link in broken_links(page)]
    assert not broken, "\n".join(broken)


def test_the_link_check_can_fail(tmp_path: Path) -> None:
    text = (
        "[ok](a.md#part) [gone](missing.md) ![img](pic.png) <https://x.io> "
        "[web](https://x.io) [here](#top) `[code](nowhere.md)`\n\n"
        "```\n[fenced](nowhere.md)\n```\n\n[ref]: other.md\n"
    )
    assert relative_links(text) == ["a.md", "missing.md", "pic.png", "other.md"]
    site = tmp_path / "site"
    site.mkdir()
    (site / "a.html").write_text('<a href="https://x.io">x</a><img src="pic.png">')
    assert remote_requests(site) == []
    (site / "b.html").write_text('<link rel="stylesheet" href="https://fonts.example/x.css">')
    (site / "c.css").write_text("@font-face { src: url(https://fonts.example/f.woff2) }")
    assert [line.split(":")[0] for line in remote_requests(site)] == ["b.html", "c.css"]

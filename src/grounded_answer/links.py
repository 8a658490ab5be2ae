"""Finding and normalising links, so "is this link one of our sources?" has one answer.

Two spellings of the same resource must compare equal (``http`` vs ``https``, a
trailing slash, ``.git``, arXiv ``abs`` vs ``pdf`` vs a version suffix), while a
look-alike (``github.com.evil.io``, ``github.com@evil.io``) must not. Everything that
checks links, the answer validators and the renderers alike, goes through
:func:`link_key`, so the two can never disagree.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

__all__ = [
    "LinkMatch",
    "cut_outside_links",
    "defang",
    "find_links",
    "is_http_url",
    "link_key",
    "scrub_links",
]

# A URL ends at whitespace, quotes, angle brackets or a closing bracket; trailing
# sentence punctuation is trimmed afterwards.
_URL = r"(?:https?://|www\.)[^\s<>\"'`\]\[(){}|\\^]+"
# Bare host names that Markdown renderers auto-link. File extensions that are also
# country TLDs (.py, .md, .sh, .pt, .rs) are left out on purpose: "train.py" is no link.
_TLDS = (
    "com|org|net|io|ai|dev|app|co|edu|gov|info|me|xyz|ly|gl|to|site|online|link|"
    "cc|biz|uk|de|fr|cn|ru|jp|kr|eu|us|ca|au|in|nl|ch|tv|page|cloud|tech|top"
)
_BARE = (
    rf"(?<![\w@./-])(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+(?:{_TLDS})(?![\w-])"
    r"(?:/[^\s<>\"'`\]\[(){}|\\^]*)?"
)
# New-style arXiv identifiers (YYMM.NNNNN, optional version), bare or as "arXiv:ID".
_ARXIV_ID = (
    r"(?<![\w./-])(?:arxiv:\s*)?(?:0[7-9]|[1-3]\d)(?:0[1-9]|1[0-2])\.\d{4,5}(?:v\d+)?"
    r"(?![\w.]\d|\w)"
)
_LINK_RE = re.compile(rf"{_URL}|{_BARE}|{_ARXIV_ID}", re.IGNORECASE)
_TRAILING = ".,;:!?*_~'\""
_ARXIV_PATH = re.compile(
    r"^(?:export\.)?arxiv\.org/(?:abs|pdf|html|format)/(?P<id>[a-z\-.]*/?\d{4}\.?\d{3,5})(?:v\d+)?(?:\.pdf)?/?$"
)
_ARXIV_BARE = re.compile(r"^(?:arxiv:\s*)?(?P<id>\d{4}\.\d{4,5})(?:v\d+)?$", re.IGNORECASE)


@dataclass(frozen=True)
class LinkMatch:
    """A link found in text: where it is, how it was written, and its comparison key."""

    start: int
    end: int
    text: str
    key: str


def is_http_url(value: str) -> bool:
    """True for an absolute http(s) URL with a host and no whitespace."""
    if not value or any(ch.isspace() for ch in value):
        return False
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(host) and "." in (host or "")


@lru_cache(maxsize=8192)
def link_key(link: str) -> str:
    """The canonical form used to compare links.

    ``https://arxiv.org/abs/2502.16025v2`` and ``http://arxiv.org/pdf/2502.16025v1.pdf``
    both become ``arxiv:2502.16025``; ``https://www.GitHub.com/Kky7/MSSNet.git/`` becomes
    ``github.com/kky7/mssnet``. The host comes from :func:`urllib.parse.urlsplit`, so
    user-info tricks (``github.com@evil.io``) resolve to the real host.
    """
    raw = link.strip().rstrip(_TRAILING)
    bare = _ARXIV_BARE.match(raw)
    if bare:
        return f"arxiv:{bare.group('id')}"
    candidate = raw if re.match(r"^[a-z][a-z0-9+.-]*://", raw, re.I) else f"http://{raw}"
    try:
        parts = urlsplit(candidate)
        host = (parts.hostname or "").lower()
    except ValueError:
        return raw.lower()
    if host.startswith("www."):
        host = host[4:]
    path = parts.path.rstrip("/")
    key = f"{host}{path}".lower()
    if parts.query:
        key += f"?{parts.query}"
    arxiv = _ARXIV_PATH.match(key)
    if arxiv:
        return f"arxiv:{arxiv.group('id')}"
    if host == "github.com":
        key = key.removesuffix(".git")
    return key


def find_links(text: str) -> tuple[LinkMatch, ...]:
    """Every URL, bare domain, arXiv id or github.com path in ``text``."""
    # Every link form has a dot or a scheme's colon; most prose fields have neither.
    if "." not in text and ":" not in text:
        return ()
    return _find_links(text)


# Answers are checked field by field and the same source titles, summaries and passages
# come back in every answer; scanning each once per process keeps validation cheap.
@lru_cache(maxsize=4096)
def _find_links(text: str) -> tuple[LinkMatch, ...]:
    found: list[LinkMatch] = []
    for match in _LINK_RE.finditer(text):
        trimmed = match.group(0).rstrip(_TRAILING)
        if trimmed:
            found.append(LinkMatch(
                match.start(), match.start() + len(trimmed), trimmed, link_key(trimmed)
            ))
    return tuple(found)


def scrub_links(
    text: str, allowed: Iterable[str], replacement: str = "[link removed]"
) -> tuple[str, list[str]]:
    """Replace every link whose key is not in ``allowed``; return the text and what went.

    ``allowed`` holds keys from :func:`link_key`.
    """
    allowed_keys = set(allowed)
    removed: list[str] = []
    pieces: list[str] = []
    last = 0
    for found in find_links(text):
        if found.key in allowed_keys:
            continue
        removed.append(found.text)
        pieces.append(text[last : found.start])
        pieces.append(replacement)
        last = found.end
    if not removed:
        return text, removed
    pieces.append(text[last:])
    return "".join(pieces), removed


def defang(text: str) -> str:
    """Make every link in ``text`` inert and unmatchable, for reports and echoed input.

    ``https://evil.io/x`` becomes ``https[:]//evil[.]io/x``: still readable in a report of
    what was removed, no longer a link for a renderer or for :func:`find_links`.
    """
    found_links = find_links(text)
    if not found_links:
        return text
    pieces: list[str] = []
    last = 0
    for found in found_links:
        pieces.append(text[last : found.start])
        pieces.append(found.text.replace("://", "[:]//").replace(".", "[.]"))
        last = found.end
    pieces.append(text[last:])
    return "".join(pieces)


def cut_outside_links(text: str, limit: int) -> str:
    """Shorten ``text`` to ``limit`` characters without cutting through a link.

    A cut link is a different link: ``https://github.com/kky7/MSSNet`` cut short is
    ``https://github.com/kky7/MSSNe``, which no source has. A link that would be cut is
    dropped whole instead.
    """
    if len(text) <= limit:
        return text
    cut = limit
    for found in find_links(text):
        if found.start < cut < found.end:
            cut = found.start
    return text[:cut].rstrip()

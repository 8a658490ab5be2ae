"""Finding and normalising links, so "is this link one of our sources?" has one answer.

Two spellings of the same resource must compare equal (``http`` vs ``https``, a
trailing slash, ``.git``, arXiv ``abs`` vs ``pdf`` vs a version suffix), while a
look-alike (``github.com.evil.io``, ``github.com@evil.io``) must not. Everything that
checks links, the answer validators and the renderers alike, goes through
:func:`find_links` and :func:`link_key`, so the two can never disagree.

Links are looked for in text as a reader's eye and a browser see it, not as it is
spelled: HTML character references are decoded (``http&#58;//``), invisible characters
(zero-width spaces, soft hyphens, joiners, combining marks) are dropped, NFKC folds
fullwidth and other compatibility forms (fullwidth ``evil.io``), the ideographic full stops
that browsers read as dots become dots, letters that Unicode lists as confusable with an
ASCII letter fold to it (Cyrillic ``\u0435`` to ``e``), and Markdown backslash escapes are
removed. What counts as a link is anything that names a host (any label of the Public
Suffix List, a host glued to CJK text, after ``/``, ``.``, ``-`` or ``@``), an address
(e-mail, ``git@host:repo``, IPv4 with or without a port, ``localhost:port``), a URL of
any scheme (``hxxp://``, ``ftp://``, ``//host``, ``mailto:``, ``javascript:``,
``data:``) or an arXiv id (new style, or old style such as ``cs/0112017``). A link that
only matches after normalisation is *obfuscated*: its key never equals an allowed one.

Every pattern is linear in the length of its input: an alternative starts only where a
token can (a look-behind rules out the rest) or is bounded in length, repeats are
possessive, and a label chain that is no host is searched once and skipped, so no input
makes the finder backtrack (``benchmarks/adversarial.py`` measures it). It is cheap on
ordinary prose too: the full pattern only runs over the words that hold ``.``, ``:``,
``/`` or ``@``, and text that reads as written skips normalisation.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache, lru_cache
from urllib.parse import unquote, urlsplit

__all__ = [
    "MAX_LINK_CHARS",
    "LinkMatch",
    "as_read",
    "check_link",
    "cut_outside_links",
    "defang",
    "find_links",
    "is_http_url",
    "link_key",
    "scrub_links",
]

MAX_LINK_CHARS = 2000
"""The longest link field accepted: browsers and servers cut or refuse longer URLs."""

# --- normalising text as a reader sees it ----------------------------------------------

_ENTITY = re.compile(r"&(?:#[0-9]{1,8};?|#[xX][0-9a-fA-F]{1,8};?|[A-Za-z][A-Za-z0-9]{1,31};)")
# IDNA (UTS #46) maps these to "." in host names, so a browser reads "evil。io" as evil.io.
_DOTS = {"\u3002": ".", "\uff0e": ".", "\uff61": "."}
# Hangul fillers are letters that render as nothing.
_FILLERS = frozenset("\u115f\u1160\u3164\uffa0")
_PUNCTUATION = frozenset(string.punctuation)
_BACKSLASH_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")


@cache
def _tables() -> tuple[frozenset[str], dict[str, str]]:
    """The TLDs and look-alikes, loaded on first use (a few ms `import` need not pay)."""
    from ._linkdata import CONFUSABLES, TLDS

    return TLDS, CONFUSABLES


@lru_cache(maxsize=65536)
def _fold(char: str) -> tuple[str, str]:
    """``char`` as NFKC shows it, and with look-alikes folded (same length)."""
    if char in _DOTS:
        return ".", "."
    category = unicodedata.category(char)
    if (
        category in ("Cf", "Mn", "Me")
        or char in _FILLERS
        or (category == "Cc" and not char.isspace())
    ):
        return "", ""
    shown = "".join(
        _DOTS.get(c, c)
        for c in unicodedata.normalize("NFKC", char)
        if unicodedata.category(c) not in ("Cf", "Mn", "Me")
    )
    confusables = _tables()[1]
    if not shown.isascii() and char in confusables:
        # Look-alike as written (GREEK LUNATE SIGMA looks like "c"; its NFKC form does not).
        return char, confusables[char]
    return shown, "".join(confusables.get(c, c) for c in shown)


def _reads_differently(char: str) -> bool:
    """Whether ``char`` may read differently from how it is written (or start an entity)."""
    if char in "&\\":
        return True
    if char.isascii() and (char.isprintable() or char in "\t\n\r"):
        return False
    return _fold(char) != (char, char)


def _unescape(entity: str) -> str:
    import html  # only text with an "&" needs it

    return html.unescape(entity)


@dataclass(frozen=True)
class _Normalised:
    """Text as read: ``shown`` (NFKC), ``folded`` (look-alikes folded), and origins.

    ``starts[i]``/``ends[i]`` give the span of the original text that produced character
    ``i`` of the normalised text; ``None`` when the text needed no change.
    """

    shown: str
    folded: str
    starts: tuple[int, ...] | None
    ends: tuple[int, ...] | None


def _normalise(text: str) -> _Normalised:
    # Decided once per distinct character; everything else is copied in bulk below.
    odd = {c for c in set(text) if _reads_differently(c)}
    if not odd:
        return _Normalised(text, text, None, None)  # the common case: nothing to change
    shown: list[str] = []
    folded: list[str] = []
    starts: list[int] = []
    ends: list[int] = []

    def emit(shown_char: str, folded_char: str, start: int, end: int) -> None:
        if folded_char in _PUNCTUATION and folded and folded[-1] == "\\":
            # A Markdown escape (a fullwidth backslash too, once NFKC has read it): the
            # reader sees the punctuation, not the backslash.
            shown.pop()
            folded.pop()
            start = starts.pop()
            ends.pop()
        shown.append(shown_char)
        folded.append(folded_char)
        starts.append(start)
        ends.append(end)

    def plain(start: int, end: int) -> None:
        # Everything else is its own reading: copied in bulk, but for a leading escape.
        if start < end:
            emit(text[start], text[start], start, start + 1)
            shown.extend(text[start + 1 : end])
            folded.extend(text[start + 1 : end])
            starts.extend(range(start + 1, end))
            ends.extend(range(start + 2, end + 1))

    pos = 0
    for i in [i for i, c in enumerate(text) if c in odd]:
        if i < pos:
            continue  # inside an entity already read
        plain(pos, i)
        unit_end = i + 1
        if (
            text[i] == "&"
            and (entity := _ENTITY.match(text, i))
            and (decoded := _unescape(entity.group(0))) != entity.group(0)
        ):
            pieces = [_fold(c) for c in decoded]
            unit_end = entity.end()
        else:
            pieces = [_fold(text[i])]
        for shown_part, folded_part in pieces:
            for shown_char, folded_char in zip(shown_part, folded_part, strict=True):
                emit(shown_char, folded_char, i, unit_end)
        pos = unit_end
    plain(pos, len(text))
    return _Normalised("".join(shown), "".join(folded), tuple(starts), tuple(ends))


# --- the patterns ---------------------------------------------------------------------

# A URL character outside brackets; brackets are taken only when balanced, so a link
# inside "(see https://a.org/x)" or a Markdown "[t](https://a.org/x)" ends before ")",
# while https://en.wikipedia.org/wiki/Deblurring_(imaging) keeps its parentheses.
_U = r"[^\s<>\"`()\[\]{}]"
_BODY = rf"(?:{_U}|\({_U}*+\)|\[{_U}*+\]|\{{{_U}*+\}})++"
_LABEL = r"[\w-]++"
_CHAIN = rf"{_LABEL}(?:\.{_LABEL})++"
_SCHEMES = (
    "mailto|javascript|vbscript|livescript|data|file|tel|callto|sms|blob|magnet|"
    "view-source|intent|jar|ms-[a-z-]+"
)
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_ARCHIVES = (
    "acc-phys|adap-org|alg-geom|ao-sci|astro-ph|atom-ph|bayes-an|chao-dyn|chem-ph|cmp-lg|"
    "comp-gas|cond-mat|cs|dg-ga|econ|eess|funct-an|gr-qc|hep-ex|hep-lat|hep-ph|hep-th|math|"
    "math-ph|mtrl-th|nlin|nucl-ex|nucl-th|patt-sol|physics|plasm-ph|q-alg|q-bio|q-fin|"
    "quant-ph|solv-int|stat|supr-con"
)
_ARXIV_ID = (
    rf"(?:(?:0[7-9]|[1-3]\d)(?:0[1-9]|1[0-2])\.\d{{4,5}}|(?:{_ARCHIVES})(?:\.[a-z]{{2}})?/"
    rf"(?:9[1-9]|0[0-7])(?:0[1-9]|1[0-2])\d{{3}})(?:v\d+)?"
)
_LINK_RE = re.compile(
    # Any scheme followed by "//": http, hxxp, ftp, file, ... also right after ".", "-" or
    # "_" (".https://", "_https://_" are links too); not mid-word, which would try every
    # letter of prose.
    rf"(?P<url>(?<![^\W_])[^\W\d_][\w+.-]{{0,30}}://{_BODY})"
    # Schemes that need no "//", after anything but a letter or digit ("Deblur-mailto:",
    # not "metadata:").
    rf"|(?P<uri>(?<![^\W_])(?:{_SCHEMES}):(?=[^\s<>\"`]){_BODY})"
    # E-mail addresses, and git's user@host:path.
    rf"|(?P<email>(?<![\w.+-])[\w.+-]++@{_CHAIN})"
    rf"|(?P<arxiv>(?<![\w.])(?:arxiv\s*+:\s*+)?{_ARXIV_ID}(?![\w.]\d|\w))"
    rf"|(?P<ip>(?<![\w.])(?://)?{_OCTET}(?:\.{_OCTET}){{3}}(?![\w.]?\d|\w))"
    r"|(?P<local>(?<![\w-])(?://)?localhost(?=:\d|/))"
    # Host names; whether the last label is a TLD is decided below, in Python.
    rf"|(?P<host>(?:(?<![\w:/\\-])//|(?<![\w-])){_CHAIN})",
    re.IGNORECASE,
)
_IN_CHAIN = re.compile(
    rf"(?<![\w.])(?:{_OCTET}(?:\.{_OCTET}){{3}}(?![\w.]?\d|\w)|{_ARXIV_ID}(?![\w.]\d|\w))",
    re.IGNORECASE,
)
_CANDIDATE = re.compile(r"(?<!\S)[^\s.:/@]*+[.:/@]\S*+")
_TAIL = re.compile(rf"(?::\d{{1,5}}(?!\d))?(?:[/?#\\](?:{_BODY})?)?")
_SCP_PATH = re.compile(r":[\w.~/-]++")
_ASCII_HEAD = re.compile(r"[a-z0-9-]+", re.IGNORECASE)
_NON_ASCII_HEAD = re.compile(r"[^\x00-\x7f]+(?=[a-z0-9])", re.IGNORECASE)
_TRAILING = ".,;:!?*_~'\""
_SCHEME = re.compile(r"^([a-z][a-z0-9+.-]*):", re.IGNORECASE)
_ARXIV_PATH = re.compile(
    r"^(?:export\.)?arxiv\.org/(?:abs|pdf|html|format)/(?P<id>[a-z\-.]*/?\d{4}\.?\d{3,5})"
    r"(?:v\d+)?(?:\.pdf)?/?$"
)
_ARXIV_BARE = re.compile(rf"^(?:arxiv\s*:\s*)?(?P<id>{_ARXIV_ID})$", re.IGNORECASE)
_VERSION = re.compile(r"v\d+$")
_HOST_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?")
_UNSAFE_IN_LINK = set('<>"`\\{}|^')


@dataclass(frozen=True)
class LinkMatch:
    """A link found in text: where it is, how it was written, and its comparison key.

    ``plain`` is the link as a reader sees it (after normalisation); ``text`` is how it
    is spelled in the original. When they differ beyond Markdown escapes the link was
    obfuscated, and ``key`` starts with ``obfuscated:`` so it never equals an allowed key.
    """

    start: int
    end: int
    text: str
    key: str
    plain: str = ""


def as_read(text: str) -> str:
    """``text`` as a reader sees it, the text :func:`find_links` looks at.

    Entities decoded, invisible characters dropped, NFKC, look-alikes folded, Markdown
    escapes removed; :mod:`grounded_answer.grounding.injection` screens this too.
    """
    return _normalise(text).folded


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
    user-info tricks (``github.com@evil.io``) resolve to the real host, and whatever else
    the URL carries that a reader sees (user info, a port, a query, a ``#fragment``) stays
    in the key: ``https://evil.io@github.com/x`` and ``https://github.com/x#https://evil.io``
    are not ``github.com/x``. Schemes other than http(s) keep their name, so they never
    compare equal to a web link.
    """
    raw = link.strip().rstrip(_TRAILING)
    bare = _ARXIV_BARE.match(raw)
    if bare:
        return f"arxiv:{_VERSION.sub('', bare.group('id')).lower()}"
    scheme = _SCHEME.match(raw)
    if raw.startswith("//"):
        candidate = f"http:{raw}"
    elif scheme and raw[scheme.end() : scheme.end() + 2] == "//":
        candidate = raw
    elif scheme and scheme.group(1).lower() in ("http", "https"):
        candidate = f"{scheme.group(1)}://{raw[scheme.end() :].lstrip('/')}"
    elif scheme and "@" not in raw[: scheme.end()] and "." not in scheme.group(1):
        return raw.lower()  # mailto:, javascript:, git@host:path ... never a web link
    else:
        candidate = f"http://{raw}"
    try:
        parts = urlsplit(candidate)
        host = (parts.hostname or "").lower()
        port = parts.port
    except ValueError:
        return raw.lower()
    kind = parts.scheme.lower()
    if kind not in ("http", "https"):
        return f"{kind}:{candidate[len(kind) + 1 :]}".lower()
    if host.startswith("www."):
        host = host[4:]
    user = parts.netloc.rpartition("@")[0] if "@" in parts.netloc else ""
    key = host if port in (None, 80, 443) else f"{host}:{port}"
    if user:
        key = f"{user}@{key}"
    key = f"{key}{parts.path.rstrip('/')}".lower()
    if parts.query:
        key += f"?{parts.query}"
    if parts.fragment:
        key += f"#{parts.fragment}"
    arxiv = _ARXIV_PATH.match(key)
    if arxiv:
        return f"arxiv:{arxiv.group('id')}"
    if host == "github.com":
        key = key.removesuffix(".git")
    return key


def find_links(text: str) -> tuple[LinkMatch, ...]:
    """Every URL, host, address or arXiv id in ``text``, as a reader would see it."""
    # Every link form has a dot, a colon, a slash or an at sign, or hides one behind an
    # entity or a non-ASCII character; most prose fields are ASCII without "/" or "@".
    if text.isascii() and not any(mark in text for mark in ".:/@&"):
        return ()
    return _find_links(text)


# Answers are checked field by field and the same source titles, summaries and passages
# come back in every answer; scanning each once per process keeps validation cheap.
@lru_cache(maxsize=4096)
def _find_links(text: str) -> tuple[LinkMatch, ...]:
    norm = _normalise(text)
    folded = norm.folded
    found: list[LinkMatch] = []
    pos = 0
    # Links hold no whitespace and always a ".", ":", "/" or "@": the full pattern only
    # runs over the words that have one, which are a few in ordinary prose.
    for word in _CANDIDATE.finditer(folded):
        pos = max(pos, word.start())
        while (match := _LINK_RE.search(folded, pos, word.end())) is not None:
            pos = _read(match, norm, text, found)
    return tuple(found)


def _read(match: re.Match[str], norm: _Normalised, text: str, found: list[LinkMatch]) -> int:
    """Add the link(s) ``match`` stands for to ``found``; return where to search next."""
    folded = norm.folded
    span = _span(match, norm, text)
    if span is None:
        # Not a host after all ("Deblur-10.66.77.88", "x-2401.12345" have no TLD), but an
        # address or a paper id may sit inside it; the chain is searched once and then
        # skipped, never rescanned.
        pos = match.end()
        if folded.startswith(":", pos):
            # "-.https://evil.io", "x.mailto:a@evil.io": the last label is a scheme.
            pos = folded.rfind(".", match.start(), pos) + 1
        for inner in _IN_CHAIN.finditer(folded, match.start(), match.end()):
            tail = _TAIL.match(folded, inner.end())
            end = _trim(folded, inner.start(), tail.end() if tail else inner.end())
            found.append(_link_match(text, norm, inner.start(), end))
            pos = max(pos, end)
        return pos
    start, end = span
    if end > start:
        found.append(_link_match(text, norm, start, end))
    return max(end, match.start() + 1)


def _span(match: re.Match[str], norm: _Normalised, text: str) -> tuple[int, int] | None:
    """The link's span in the normalised text, or None if the match is not a link."""
    kind = match.lastgroup
    folded = norm.folded
    start, end = match.span()
    if kind in ("email", "host"):
        chain_start = start + 2 if folded.startswith("//", start) else start
        if kind == "email":
            chain_start = folded.index("@", start) + 1
        host = _host_span(folded, norm.shown, chain_start, end, _written(norm, text))
        if host is None:
            return None
        host_start, host_end = host
        if kind == "host" and chain_start == start:
            start = host_start
        if host_end < end:
            return start, host_end  # glued to other text: the host ends at its TLD
        end = host_end
        if kind == "email":
            scp = _SCP_PATH.match(folded, end)
            return (start, _trim(folded, start, scp.end())) if scp else (start, end)
    if kind in ("host", "ip", "local"):
        tail = _TAIL.match(folded, end)
        end = tail.end() if tail else end
    return start, _trim(folded, start, end)


def _host_span(
    folded: str, shown: str, start: int, end: int, written: Callable[[int], str] | None = None
) -> tuple[int, int] | None:
    """Where a chain of labels is a host: its last label (or its ASCII head) is a TLD.

    ``written(i)`` is the character the normalised position ``i`` was written as.
    """
    tlds = _tables()[0]
    labels = folded[start:end].split(".")
    offsets = [start]
    for label in labels[:-1]:
        offsets.append(offsets[-1] + len(label) + 1)
    for k in range(len(labels) - 1, 0, -1):
        if not labels[k - 1].strip("_-"):
            continue
        # A TLD in a non-Latin script (".рф") is matched as shown, before folding.
        label = labels[k].lower()
        plain = shown[offsets[k] : offsets[k] + len(labels[k])].lower()
        length = None
        if label in tlds or plain in tlds or label.startswith("xn--"):
            length = len(label)
        else:
            head = _ASCII_HEAD.match(label)
            # "evil.com에서": the host ends where the ASCII TLD meets other letters. After
            # an ideographic full stop only when a Latin label comes before it: in
            # "しました。AIで" the stop ends a Japanese sentence and "AIで" is a word, but
            # a reader of "evil。io에서" or "evil\uff0eioで" sees the host evil.io.
            dot = offsets[k] - 1
            if (
                head
                and head.end() < len(label)
                and head.group(0) in tlds
                and (
                    written is None
                    or written(dot) == "."
                    or (folded[dot - 1].isascii() and folded[dot - 1].isalnum())
                )
            ):
                length = head.end()
        if length is None:
            continue
        first = offsets[0]
        glue = _NON_ASCII_HEAD.match(folded, first, offsets[1] - 1)
        if glue and folded[offsets[k] : offsets[k] + length].isascii():
            first = glue.end()  # "사이트evil.com": the host starts where ASCII does
        while first < offsets[1] - 1 and folded[first] in "_-":
            first += 1  # Markdown emphasis "_evil.io_"
        return first, offsets[k] + length
    return None


def _written(norm: _Normalised, text: str) -> Callable[[int], str]:
    """The original character at a normalised position (a dot may be written "。")."""
    if norm.starts is None:
        return lambda i: text[i]
    starts = norm.starts
    return lambda i: text[starts[i]]


def _trim(folded: str, start: int, end: int) -> int:
    while end > start and folded[end - 1] in _TRAILING:
        end -= 1
    return end


def _link_match(text: str, norm: _Normalised, start: int, end: int) -> LinkMatch:
    if norm.starts is None or norm.ends is None:
        original = text[start:end]
        return LinkMatch(start, end, original, link_key(original), original)
    # Invisible characters right before or after the link travel with it: a renderer may
    # take a trailing soft hyphen into the URL, which is then not the source's link.
    first = norm.ends[start - 1] if start else 0
    last = norm.starts[end] if end < len(norm.starts) else len(text)
    original = text[first:last]
    folded = norm.folded[start:end]
    key = link_key(folded)
    if _BACKSLASH_ESCAPE.sub(r"\1", original) != folded:
        key = f"obfuscated:{key}"
    return LinkMatch(first, last, original, key, norm.shown[start:end])


def scrub_links(
    text: str, allowed: Iterable[str], replacement: str = "[link removed]"
) -> tuple[str, list[str]]:
    """Replace every link whose key is not in ``allowed``; return the text and what went.

    ``allowed`` holds keys from :func:`link_key`. What went is listed as a reader saw it
    (:attr:`LinkMatch.plain`), so a report that quotes it shows no invisible characters.
    """
    allowed_keys = set(allowed)
    removed: list[str] = []
    pieces: list[str] = []
    last = 0
    for found in find_links(text):
        if found.key in allowed_keys:
            continue
        removed.append(found.plain or found.text)
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
    what was removed, no longer a link for a renderer or for :func:`find_links`. A link
    that was obfuscated is shown as a reader would have seen it, defanged the same way.
    """
    found_links = find_links(text)
    if not found_links:
        return text
    pieces: list[str] = []
    last = 0
    for found in found_links:
        pieces.append(text[last : found.start])
        pieces.append(_defanged(found))
        last = found.end
    pieces.append(text[last:])
    return "".join(pieces)


def _defanged(found: LinkMatch) -> str:
    # "&" too: the reader's view of "&#x\uff12e;" is the entity "&#x2e;", which would
    # spell a dot the second time the text is read.
    marks = ".:@&/" if found.key.split("obfuscated:")[-1].startswith("arxiv:") else ".:@&"
    return "".join(f"[{c}]" if c in marks else c for c in (found.plain or found.text))


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


def check_link(value: str) -> str:
    """``value`` if it may be shown as a source's link, else a ValueError saying why.

    A link field is rendered as a live link, so it must be exactly one plain http(s) URL
    to a public host name: no user info (``evil.io@github.com`` shows one host and opens
    another), no bare IP address or localhost, no ``.``/``..`` path segments, balanced
    brackets, nothing invisible, encoded or look-alike, no second link in its query or
    fragment, and at most :data:`MAX_LINK_CHARS` characters.

    Args:
        value: A Paper/GitHub (``paper_url``/``github_url``) field as written.

    Returns:
        ``value`` unchanged.

    Raises:
        ValueError: the first rule it breaks, worded to follow "Paper link ...".

    """
    if not value:
        raise ValueError("is empty")
    if len(value) > MAX_LINK_CHARS:
        raise ValueError(f"is {len(value)} characters long; a link has at most {MAX_LINK_CHARS}")
    for char in value:
        if char.isspace() or not char.isprintable():
            raise ValueError(f"contains whitespace or an invisible character ({_name(char)})")
    norm = _normalise(value)
    if norm.folded != value:
        where = next(
            (i for i, (a, b) in enumerate(zip(value, norm.folded, strict=False)) if a != b),
            min(len(value), len(norm.folded)),
        )
        culprit = value[where] if where < len(value) else value[-1]
        raise ValueError(
            "contains a look-alike, encoded or escaped character "
            f"({_name(culprit)} at position {where + 1})"
        )
    unsafe = sorted(_UNSAFE_IN_LINK.intersection(value))
    if unsafe:
        raise ValueError(f"contains {unsafe[0]!r}, which is not allowed in a link")
    if not _balanced(value):
        raise ValueError("has unbalanced brackets or parentheses")
    try:
        parts = urlsplit(value)
        host = parts.hostname or ""
        _port = parts.port  # parsing the port is the check
    except ValueError:
        raise ValueError("is not a valid URL") from None
    if parts.scheme.lower() not in ("http", "https") or not value.lower().startswith(
        f"{parts.scheme.lower()}://"
    ):
        raise ValueError("is not an http(s) URL")
    if "@" in parts.netloc:
        raise ValueError("has user info before the host (user@host), which hides the real host")
    if not host:
        raise ValueError("has no host")
    import ipaddress  # link fields are checked when files are read, not per query

    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        raise ValueError("points at a bare IP address, not a host name")
    if host == "localhost" or host.endswith(".localhost"):
        raise ValueError("points at localhost")
    labels = host.split(".")
    tld = labels[-1]
    if (
        len(labels) < 2
        or not all(len(label) <= 63 and _HOST_LABEL.fullmatch(label) for label in labels)
        or not (tld.isalpha() or tld.startswith("xn--"))
    ):
        raise ValueError(f"has no public host name ({host!r}; expected labels like example.org)")
    if any(segment in (".", "..") for segment in unquote(parts.path).split("/")):
        raise ValueError("has a '.' or '..' path segment")
    if (parts.query and find_links(parts.query)) or (parts.fragment and find_links(parts.fragment)):
        raise ValueError("holds another link in its query or #fragment")
    found = find_links(value)
    if len(found) != 1 or (found[0].start, found[0].end) != (0, len(value)):
        raise ValueError("does not read as one link (it ends in punctuation, or holds more)")
    return value


def _balanced(value: str) -> bool:
    stack: list[str] = []
    pairs = {")": "(", "]": "["}
    for char in value:
        if char in "([":
            stack.append(char)
        elif char in pairs and (not stack or stack.pop() != pairs[char]):
            return False
    return not stack


def _name(char: str) -> str:
    return f"U+{ord(char):04X} {unicodedata.name(char, 'unnamed')}"

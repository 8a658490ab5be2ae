"""Independent checks of what a rendering shows, written without the library's link code.

The guarantees are checked the way a reader and a renderer would meet the output:

* :func:`reader_view` normalises text with the standard library and the
  ``confusable_homoglyphs`` package directly (HTML entities, NFKC, invisible characters,
  Markdown escapes, ideographic full stops, look-alike letters), not with
  ``grounded_answer.grounding.links``;
* :func:`linkified` runs linkify-it-py (markdown-it's linkifier) with the full Public
  Suffix List from tldextract over that view;
* :func:`markdown_tokens` parses Markdown with markdown-it-py, linkify on or off, and
  returns every token that makes a link, an image or raw HTML.
"""

from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass
from functools import cache
from typing import Any

from confusable_homoglyphs import confusables
from linkify_it import LinkifyIt
from markdown_it import MarkdownIt

_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")
_INVISIBLE = ("Cf", "Mn", "Me")


@cache
def _look_alike(char: str) -> str:
    for entry in confusables.confusables_data.get(char, ()):
        target = str(entry["c"])
        if len(target) == 1 and target.isascii() and (target.isalnum() or target in "./:@"):
            return target.lower()
    return char


def reader_view(text: str) -> str:
    """``text`` as a reader sees it, lower-cased, with look-alikes replaced."""
    text = html.unescape(text)
    text = "".join(c for c in text if unicodedata.category(c) not in _INVISIBLE)
    text = unicodedata.normalize("NFKC", text)
    text = "".join(c for c in text if unicodedata.category(c) not in _INVISIBLE)
    text = text.replace("\u3002", ".").replace("\uff61", ".")
    text = _ESCAPE.sub(r"\1", text)
    return "".join(c if c.isascii() else _look_alike(c) for c in text).lower()


@cache
def _linkify() -> LinkifyIt:
    import tldextract

    extractor = tldextract.TLDExtract(cache_dir=None, suffix_list_urls=())
    tlds = sorted({suffix.rsplit(".", 1)[-1] for suffix in extractor.tlds})
    return LinkifyIt(options={"fuzzy_ip": True, "fuzzy_email": True, "fuzzy_link": True}).tlds(
        tlds, True
    )


def linkified(text: str) -> list[str]:
    """The URLs linkify-it finds in the reader's view of ``text``."""
    matches = _linkify().match(reader_view(text)) or []
    return [m.url for m in matches]


def canonical(url: str) -> str:
    """A plain comparison form: no scheme, no www., no trailing slash, arXiv by id."""
    url = url.strip().lower()
    url = re.sub(r"^[a-z][a-z0-9+.-]*:(?://)?", "", url)
    url = url.removeprefix("www.").rstrip("/").removesuffix(".git")
    arxiv = re.fullmatch(r"(?:export\.)?arxiv\.org/(?:abs|pdf)/(.+?)(?:v\d+)?(?:\.pdf)?", url)
    return f"arxiv:{arxiv.group(1)}" if arxiv else url


@dataclass(frozen=True)
class Tokens:
    """What a CommonMark parser made of a rendering."""

    hrefs: list[str]
    images: list[str]
    html: list[str]
    text: str


def markdown_tokens(markdown: str, *, linkify: bool) -> Tokens:
    """Every link target, image and HTML token markdown-it finds in ``markdown``."""
    parser = MarkdownIt("commonmark", {"linkify": linkify})
    parser.enable(["table", "strikethrough"])
    if linkify:
        parser.enable("linkify")
    hrefs: list[str] = []
    images: list[str] = []
    raw: list[str] = []
    texts: list[str] = []

    def walk(tokens: list[Any]) -> None:
        for token in tokens:
            if token.type == "link_open":
                hrefs.append(str(token.attrGet("href")))
            elif token.type == "image":
                images.append(str(token.attrGet("src")))
            elif token.type in ("html_inline", "html_block"):
                raw.append(token.content)
            elif token.type in ("text", "code_inline", "text_special"):
                texts.append(token.content)
            if token.children:
                walk(token.children)

    walk(parser.parse(markdown))
    return Tokens(hrefs, images, raw, "".join(texts))

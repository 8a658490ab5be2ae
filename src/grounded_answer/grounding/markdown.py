r"""Markdown that can only be text, and the library's own links: what "Markdown is inert" means.

Text from models and source records goes through :func:`escape` before it is put into
the Markdown rendering. CommonMark lets any ASCII punctuation be escaped with a backslash
and then shows it literally, so escaping every character that can open syntax turns the
text into text, whatever it holds:

* ``\`` first, so an escape already in the text (``\[x\](//evil.io)``) cannot cancel
  ours and re-open a link;
* ``[`` ``]`` (links, images, footnotes), ``<`` ``>`` (HTML, autolinks), `````
  (code spans), ``&`` (character references that could spell syntax or a link),
  ``*`` ``_`` ``~`` (emphasis and strikethrough), ``|`` (tables), ``$`` (math, whose
  ``\href`` some renderers honour), ``{`` ``}`` (attribute extensions) and ``@``
  (mentions, which some renderers turn into profile links);
* block markers at the start of the text (``#``, ``-``, ``+``, ``=``, ``1.``), for the
  fields that start a line.

Whitespace runs, newlines included, collapse to one space, so no field can start a new
block. Links to sources are written by :func:`markdown_link` only, with a destination
checked by :func:`grounded_answer.grounding.links.check_link` and put in angle brackets when it
holds parentheses (``https://en.wikipedia.org/wiki/Deblurring_(imaging)``). The tests
parse every rendering with markdown-it-py to prove it: the only link tokens are these.
"""

from __future__ import annotations

import re
from functools import lru_cache

from .links import check_link

__all__ = ["escape", "markdown_link"]

_SPECIAL = re.compile(r"[\\`*_\[\]<>&~|${}@]")
_BLOCK_START = re.compile(r"^(?:[#+=-]|\d{1,9}(?=[.)]))")


def escape(text: str) -> str:
    """``text`` as Markdown that renders exactly as ``text`` (whitespace collapsed)."""
    escaped = _SPECIAL.sub(r"\\\g<0>", " ".join(text.split()))
    block = _BLOCK_START.match(escaped)
    if block:
        # "1." or "1)" opens a list only after digits: escape the dot or parenthesis.
        end = block.end()
        if escaped[:end].isdigit():
            return f"{escaped[:end]}\\{escaped[end:]}"
        return f"\\{escaped}"
    return escaped


def markdown_link(label: str, url: str) -> str:
    """``[label](url)`` for a source's link, or "" if ``url`` is not a safe link field."""
    if not _safe(url):
        return ""
    destination = f"<{url}>" if "(" in url or ")" in url else url
    return f"[{escape(label)}]({destination})"


@lru_cache(maxsize=1024)
def _safe(url: str) -> bool:
    # Source records were checked when read; an Answer built by hand may not have been.
    try:
        check_link(url)
    except ValueError:
        return False
    return True

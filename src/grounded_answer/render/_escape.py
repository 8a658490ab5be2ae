"""Untrusted text made safe for markup, shared by the HTML page and the SVG graph.

Every text that came from a model or a source record goes through :func:`safe_text`, which
removes any link the answer is not allowed to hold and then escapes it, so it can never
become markup.
"""

from __future__ import annotations

import html
import re

from ..grounding.links import cut_outside_links, scrub_links

__all__ = ["safe_text", "shorten"]

# Characters XML 1.0 does not allow at all; an SVG holding one would not render.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def safe_text(value: str, allowed: frozenset[str]) -> str:
    """Untrusted text, made safe: foreign links removed, then escaped for HTML."""
    return html.escape(_XML_INVALID.sub("", scrub_links(value, allowed)[0]), quote=True)


def shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else cut_outside_links(text, limit - 1) + "…"

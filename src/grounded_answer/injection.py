"""Keeping instructions hidden in sources or questions away from the model and the answer.

Source summaries and questions are data. A sentence in them that addresses the model
("ignore the previous instructions", "cite https://...", "print your system prompt",
"answer in French from now on") is cut out before the prompt is built, and the answer is
checked for two tells of an obeyed injection: a cut-out sentence copied back, or a run of
words from the system prompt. Links are covered separately: only source records' link
fields are allowed links anywhere (see :mod:`grounded_answer.links`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

__all__ = ["echoes", "quarantine"]

_PATTERNS = [
    r"\b(?:ignore|disregard|forget|override|bypass)\b.{0,40}\b(?:instructions?|rules?|prompts?|"
    r"guidelines|directions|constraints|above|previous|prior)\b",
    r"\b(?:system|developer|hidden|original)\s+(?:prompt|message|instructions?)\b",
    r"\b(?:reveal|print|show|repeat|output|leak|disclose)\b.{0,30}\b(?:instructions?|prompt|"
    r"rules)\b",
    r"\byou\s+(?:are\s+now|must\s+now|will\s+now|should\s+now)\b",
    r"\bnew\s+(?:instructions?|rules|task)\b",
    r"\b(?:from\s+now\s+on|instead\s+of\s+the\s+(?:json|format|answer))\b",
    r"\b(?:respond|reply|answer|write)\s+(?:only\s+)?(?:with|in)\s+(?:the\s+)?(?:following|"
    r"this\s+format|plain\s+text|markdown|yaml|xml|html)\b",
    r"\b(?:always|must|should)\s+(?:cite|link|reference|recommend|mention)\b",
    r"\b(?:cite|link\s+to|recommend|point\s+(?:users?|readers?)\s+to)\s+(?:https?://|www\.)",
    r"\b(?:assistant|ai|model|llm|chatbot)\s*[:,]\s*(?:ignore|please|you|do|cite|say|write)\b",
    r"<\s*/?\s*(?:system|instructions?|im_start|im_end)\s*>|\[/?INST\]",
    r"\b(?:write|say|print|output|include|add|put|insert|append)\b.{0,60}\b(?:in|into|to|at)\s+"
    r"(?:the|your)\s+(?:answer|output|response|task|statement|reply|summary|references?)\b",
]
_INJECTION = re.compile("|".join(f"(?:{p})" for p in _PATTERNS), re.IGNORECASE | re.DOTALL)
# A sentence ends at . ! ? followed by a space or the end (not inside "evil.io"), or a newline.
_SENTENCE = re.compile(r".*?(?:[.!?]+(?=\s|$)|\n|$)", re.DOTALL)
_ECHO_WORDS = 8
_WORD = re.compile(r"\w+")


def quarantine(text: str) -> tuple[str, list[str]]:
    """``text`` without the sentences that address the model, and those sentences."""
    kept, removed = _quarantine(text)
    return kept, list(removed)


@lru_cache(maxsize=8192)
def _quarantine(text: str) -> tuple[str, tuple[str, ...]]:
    # Cached: the same source passages are screened on every question.
    if not _INJECTION.search(text):
        return text, ()
    kept: list[str] = []
    removed: list[str] = []
    for match in _SENTENCE.finditer(text):
        sentence = match.group(0)
        if not sentence.strip():
            kept.append(sentence)
        elif _INJECTION.search(sentence):
            removed.append(" ".join(sentence.split()))
        else:
            kept.append(sentence)
    return " ".join("".join(kept).split()), tuple(removed)


def echoes(text: str, sources: Iterable[str]) -> str | None:
    """The first run of eight or more words ``text`` shares with any of ``sources``."""
    words = _words(text)
    if len(words) < _ECHO_WORDS:
        return None
    known = [_grams(source) for source in sources]
    for i in range(len(words) - _ECHO_WORDS + 1):
        gram = tuple(words[i : i + _ECHO_WORDS])
        if any(gram in grams for grams in known):
            return " ".join(gram)
    return None


@lru_cache(maxsize=256)
def _grams(source: str) -> frozenset[tuple[str, ...]]:
    # Cached: one system prompt is checked against every prose field of an answer.
    words = _words(source)
    return frozenset(
        tuple(words[i : i + _ECHO_WORDS]) for i in range(len(words) - _ECHO_WORDS + 1)
    )


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())

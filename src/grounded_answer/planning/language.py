"""All language and script detection: what language a question is in, and whether a text is.

The embedding model reads English (and a little of other Latin-script languages), so the
plan must know when similarity to the question means nothing; the writers must know which
language to answer in, and whether a line a model wrote is in it. Every such decision is
made here, once.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from .models import QuestionReading

__all__ = [
    "LANGUAGE_NAMES",
    "in_language",
    "language_name",
    "read_question",
    "script_matches",
]

_ENGLISH = frozenset(
    (
        "a",
        "an",
        "the",
        "and",
        "or",
        "but",
        "if",
        "of",
        "to",
        "in",
        "on",
        "at",
        "by",
        "for",
        "from",
        "with",
        "about",
        "as",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "am",
        "do",
        "does",
        "did",
        "can",
        "could",
        "would",
        "should",
        "will",
        "shall",
        "may",
        "might",
        "must",
        "have",
        "has",
        "had",
        "i",
        "you",
        "he",
        "she",
        "it",
        "we",
        "they",
        "me",
        "my",
        "your",
        "our",
        "their",
        "this",
        "that",
        "these",
        "those",
        "what",
        "which",
        "who",
        "whom",
        "whose",
        "how",
        "why",
        "when",
        "where",
        "there",
        "here",
        "not",
        "no",
        "yes",
        "so",
        "than",
        "then",
        "too",
        "very",
        "just",
        "also",
        "any",
        "some",
        "all",
        "more",
        "most",
        "into",
        "out",
        "up",
        "down",
        "over",
        "only",
        "own",
        "same",
        "such",
        "get",
        "make",
        "want",
        "need",
    )
)


@lru_cache(maxsize=1024)
def read_question(question: str) -> QuestionReading:
    """The script of the question, and whether the embedding model can read it."""
    counts: dict[str, int] = {}
    for char in question:
        if char.isalpha():
            script = unicodedata.name(char, "UNKNOWN").split(" ", 1)[0]
            script = {"CJK": "Han", "HIRAGANA": "Japanese kana", "KATAKANA": "Japanese kana"}.get(
                script, script.capitalize()
            )
            counts[script] = counts.get(script, 0) + 1
    if not counts:
        return QuestionReading(script="Latin", english=True, readable=True)
    script = max(counts, key=lambda name: counts[name])
    if counts.get("Japanese kana") and script == "Han":
        script = "Japanese kana"
    words = re.findall(r"[a-z']+", question.lower())
    english = (
        script == "Latin"
        and bool(words)
        and (sum(w in _ENGLISH for w in words) / len(words) >= 0.15)
    )
    language = "en" if english else _SCRIPT_LANGUAGE.get(script) or _identify(question)
    return QuestionReading(
        script=script, language=language, english=english, readable=script == "Latin"
    )


_SCRIPT_LANGUAGE = {
    "Hangul": "ko",
    "Japanese kana": "ja",
    "Thai": "th",
    "Hebrew": "he",
    "Greek": "el",
    "Armenian": "hy",
    "Georgian": "ka",
}

#: Names of the languages answers are most often asked in, for prompts: in English, and
#: in the language's own script where it has one (a 0.5B model asked for "Japanese"
#: wrote Chinese).
LANGUAGE_NAMES = {
    "en": "English",
    "ko": "Korean (한국어)",
    "ja": "Japanese (日本語, with kana)",
    "zh": "Chinese (简体中文)",
    "es": "Spanish",
    "de": "German",
    "fr": "French",
    "pt": "Portuguese",
    "it": "Italian",
    "nl": "Dutch",
    "vi": "Vietnamese",
    "ru": "Russian (русский)",
    "uk": "Ukrainian (українська)",
    "pl": "Polish",
    "tr": "Turkish",
    "ar": "Arabic",
    "hi": "Hindi",
    "id": "Indonesian",
    "th": "Thai",
    "he": "Hebrew",
    "el": "Greek",
    "sv": "Swedish",
    "cs": "Czech",
    "fa": "Persian",
}


def _identify(text: str) -> str:
    # Only questions that are not plainly English get here, so English ones never pay
    # for loading the identifier's model (about half a second, once per process).
    import py3langid

    code: str = py3langid.classify(text)[0]
    return code


# Scripts a reader of these languages expects; a statement with few of its letters in
# them was written in another language.
_SCRIPTS = {
    "ko": ("HANGUL",),
    "ja": ("HIRAGANA", "KATAKANA", "CJK"),
    "zh": ("CJK",),
    "ru": ("CYRILLIC",),
    "uk": ("CYRILLIC",),
    "ar": ("ARABIC",),
    "el": ("GREEK",),
    "he": ("HEBREW",),
    "th": ("THAI",),
    "hi": ("DEVANAGARI",),
    "fa": ("ARABIC",),
}


def language_name(code: str) -> str:
    """A language code's name for prompts, in its own script too ("ko" -> "Korean (한국어)")."""
    return LANGUAGE_NAMES.get(code, code)


def script_matches(text: str, language: str) -> bool | None:
    """Whether ``text`` is in ``language``'s script; None for Latin-script languages."""
    scripts = _SCRIPTS.get(language)
    if not scripts:
        return None
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return False
    names = [unicodedata.name(c, "") for c in letters]
    native = sum(name.startswith(scripts) for name in names)
    kana = sum(name.startswith(("HIRAGANA", "KATAKANA")) for name in names)
    # Japanese and Chinese share the Han characters: a Japanese sentence has kana (its
    # particles), a Chinese one has none; a short noun phrase ("低解像度画像") may be all Han.
    if language == "ja" and native >= 10 and not kana:
        return False
    if language == "zh" and kana:
        return False
    # Model names stay in Latin letters; a third of native letters is a native sentence.
    return native / len(letters) >= 0.3


def _in_language(text: str, language: str) -> bool:
    # Latin-script languages: a slot is too short to identify reliably; trust the prompt.
    return script_matches(text, language) is not False


def in_language(text: str, language: str) -> bool:
    """Whether ``text`` may be a line in ``language``: False only when its script is wrong.

    Latin-script languages are not told apart here: a slot is too short to identify
    reliably, so the prompt is trusted.
    """
    return script_matches(text, language) is not False

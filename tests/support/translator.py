"""A fake translator for the translation call: it answers as a well-behaved model would.

Every lower-case English word becomes a word of the target language; source ids, names,
numbers, the arrow and the line's tag are kept. Tests then break one thing at a time.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

TAGGED = re.compile(r"^\[([A-Z]\d)\] (.*)$")
WORDS = {"fr": "mot", "ko": "단어", "ja": "ことば", "de": "Wort"}


def tagged_lines(body: dict[str, Any]) -> list[tuple[str, str]]:
    """The (tag, English text) lines of a translation request, in order."""
    prompt = body["messages"][-1]["content"]
    return [(m.group(1), m.group(2)) for line in prompt.splitlines() if (m := TAGGED.match(line))]


def translated(text: str, language: str = "ko", keep: tuple[str, ...] = ()) -> str:
    """``text`` with every lower-case English word but ``keep`` in ``language``."""
    return re.sub(
        r"(?<![\w-])[a-z][a-z']+(?![\w-])",
        lambda m: m.group(0) if m.group(0) in keep else WORDS[language],
        text,
    )


def reply(
    body: dict[str, Any],
    language: str = "ko",
    edit: Callable[[list[tuple[str, str]]], list[tuple[str, str]]] | None = None,
    keep: tuple[str, ...] = (),
) -> str:
    """The tagged reply to a translation request; ``edit`` breaks it as a test wants."""
    lines = [(tag, translated(text, language, keep)) for tag, text in tagged_lines(body)]
    if edit is not None:
        lines = edit(lines)
    return "\n".join(f"[{tag}] {text}" for tag, text in lines)

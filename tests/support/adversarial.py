"""Adversarial inputs for every pattern that sees user text, shared by the tests and benchmarks.

Each case builds an input of about ``n`` characters shaped to make a backtracking
pattern slow (long runs the pattern may split many ways, almost-matches that fail at the
very end) and names the function that reads it. ``tests/test_linearity.py`` checks that
8x the input costs about 8x the time; ``benchmarks/adversarial.py`` prints the curve.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from grounded_answer import load_settings
from grounded_answer.grounding.draft import strip_fences
from grounded_answer.grounding.injection import _quarantine
from grounded_answer.grounding.links import _find_links
from grounded_answer.sources.bundle import parse_bundle
from grounded_answer.sources.tasks import _guess_tasks, expand_name

SETTINGS = load_settings(sources={"max_bundle_bytes": 1 << 30})

BUNDLE_HEAD = (
    'A user has asked the following question:\n"How do I deblur a photo?"\n\n'
    "### Recommended AI Models:\n"
)
BUNDLE_ENTRY = "Model: Deblur-MSSNet\nGitHub: https://github.com/kky7/MSSNet\n"


def _bundle(line: str) -> str:
    return BUNDLE_HEAD + BUNDLE_ENTRY + "\n### Related Papers:\n" + BUNDLE_ENTRY + line + "\n"


def _parse(text: str) -> object:
    try:
        return parse_bundle(text, settings=SETTINGS)
    except Exception as exc:  # a typed error is a fine outcome; only the time matters
        return exc


def _check(text: str) -> object:
    from grounded_answer.grounding.links import check_link

    try:
        return check_link(text)
    except ValueError as exc:
        return exc


@dataclass(frozen=True)
class Case:
    """One adversarial input family for one reader of untrusted text."""

    target: str
    name: str
    make: Callable[[int], str]
    run: Callable[[str], object]


def _uncached(function: Callable[[str], object]) -> Callable[[str], object]:
    # The readers cache by text; the measured call must do the work every time.
    return getattr(function, "__wrapped__", function)


_LINKS = _uncached(_find_links)
_QUARANTINE = _uncached(_quarantine)

CASES: tuple[Case, ...] = (
    # The bundle parser: one hostile line inside an otherwise valid bundle.
    Case(
        "bundle",
        "heading with runs of spaces",
        lambda n: _bundle("#" + " " * (n // 2) + "x" + " " * (n // 2) + "y"),
        _parse,
    ),
    Case(
        "bundle",
        "heading with spaces and colons",
        lambda n: _bundle("# a" + " :" * (n // 2) + " a"),
        _parse,
    ),
    Case(
        "bundle",
        "field key then spaces, no colon",
        lambda n: _bundle("Summary" + " " * n + "x"),
        _parse,
    ),
    Case(
        "bundle",
        "field with spaces before the colon",
        lambda n: _bundle("Summary" + "\t " * (n // 2) + ":" + " x" * (n // 4)),
        _parse,
    ),
    Case(
        "bundle",
        "question marker with spaces",
        lambda n: _bundle("").replace("question:\n", "question" + " " * n + ": q\n"),
        _parse,
    ),
    Case(
        "bundle",
        "many summary lines",
        lambda n: _bundle("Summary: s\n" + "more words here.\n" * (n // 17)),
        _parse,
    ),
    # The link finder (without its cache).
    Case("links", "one long label", lambda n: "a" * n, _LINKS),
    Case("links", "many labels, no TLD", lambda n: "a." * (n // 2), _LINKS),
    Case("links", "many hyphenated labels", lambda n: "a-." * (n // 3), _LINKS),
    Case("links", "digits and dots", lambda n: "1." * (n // 2), _LINKS),
    Case("links", "digit labels and arXiv-like runs", lambda n: "2401." * (n // 5), _LINKS),
    Case("links", "unbalanced parentheses in a URL", lambda n: "http://a.io/" + "(" * n, _LINKS),
    Case("links", "nested open brackets", lambda n: "http://a.io/" + "(a[b{" * (n // 5), _LINKS),
    Case("links", "at signs", lambda n: "a@" * (n // 2), _LINKS),
    Case("links", "local parts without a host", lambda n: "a.b+c@" * (n // 6), _LINKS),
    Case("links", "entity starts", lambda n: "&#" * (n // 2), _LINKS),
    Case("links", "numeric entities", lambda n: "&#46;" * (n // 5), _LINKS),
    Case("links", "backslashes", lambda n: "\\." * (n // 2), _LINKS),
    Case("links", "fullwidth text", lambda n: "\uff45\uff56\uff49\uff4c\uff0e" * (n // 5), _LINKS),
    Case("links", "scheme starts", lambda n: "http:" * (n // 5), _LINKS),
    Case("links", "slashes", lambda n: "/" * n, _LINKS),
    Case("links", "scheme-like words", lambda n: "abcdefghij" * (n // 10) + "://", _LINKS),
    Case("links", "javascript: repeated", lambda n: "javascript:" * (n // 11), _LINKS),
    Case("links", "old arXiv archive prefixes", lambda n: "cs/" * (n // 3), _LINKS),
    Case("links", "www. repeated", lambda n: "www." * (n // 4), _LINKS),
    Case("links", "host glued to Hangul", lambda n: "evil.com" + "\uc5d0" * n, _LINKS),
    Case("links", "Hangul glued to a host", lambda n: "\uc0ac" * n + "evil.com", _LINKS),
    Case("links", "addresses inside a label chain", lambda n: "a-1.1.1.1." * (n // 10), _LINKS),
    Case("links", "label chains ending in a colon", lambda n: "a.b:" * (n // 4), _LINKS),
    Case("links", "one long URL", lambda n: "https://a.io/" + "x/" * (n // 2), _LINKS),
    Case("links", "many short URLs", lambda n: "see https://a.io/x " * (n // 19), _LINKS),
    Case("links", "invisible characters", lambda n: "e\u200bv." * (n // 4), _LINKS),
    # Link fields.
    Case(
        "check_link",
        "long path of parentheses",
        lambda n: "https://a.org/" + "()" * (n // 2),
        _check,
    ),
    Case("check_link", "long host", lambda n: "https://" + "a." * (n // 2) + "org", _check),
    # Injection screening (without its cache).
    Case(
        "injection",
        "a run of full stops",
        lambda n: "Ignore the rules" + "." * n + "a",
        _QUARANTINE,
    ),
    Case("injection", "repeated trigger words", lambda n: "ignore " * (n // 7), _QUARANTINE),
    Case("injection", "trigger, then spaces", lambda n: "respond" + " " * n + "x", _QUARANTINE),
    Case(
        "injection",
        "write ... in, then spaces",
        lambda n: "write in" + " " * n + "the x",
        _QUARANTINE,
    ),
    Case(
        "injection",
        "CJK full stops",
        lambda n: "\u5ffd\u7565\u6307\u4ee4" + "\u3002" * n,
        _QUARANTINE,
    ),
    Case(
        "injection",
        "many sentences",
        lambda n: "Ignore the rules. Fine text here. " * (n // 34),
        _QUARANTINE,
    ),
    # Task names and model output.
    Case("tasks", "capitals", lambda n: "A" * n, _uncached(expand_name)),
    Case("tasks", "mixed case runs", lambda n: "AAAa" * (n // 4), _uncached(expand_name)),
    Case("tasks", "lexicon on long text", lambda n: "super " * (n // 6), _uncached(_guess_tasks)),
    Case("draft", "unclosed code fence with spaces", lambda n: "```" + " " * n + "x", strip_fences),
)


def seconds(case: Case, n: int, repeats: int = 5, budget: float = 1.0) -> float:
    """The fastest of up to ``repeats`` runs of ``case`` on its size-``n`` input.

    Runs stop once they have taken ``budget`` seconds together, so a reader that has
    gone quadratic is measured once instead of five times.
    """
    text = case.make(n)
    best = float("inf")
    spent = 0.0
    for _ in range(repeats):
        started = time.perf_counter()
        case.run(text)
        took = time.perf_counter() - started
        best, spent = min(best, took), spent + took
        if spent > budget:
            break
    return best


def calibrated(case: Case, floor: float = 0.003, start: int = 64, cap: int = 131_072) -> int:
    """The smallest size (doubling from ``start``) that takes ``floor`` seconds, up to ``cap``.

    Sizing by time rather than by characters keeps the measurement meaningful for fast
    readers and short for slow ones: a cubic reader reaches the floor at a few hundred
    characters, so 8x that still ends in seconds instead of hanging the test run.
    """
    n = start
    while n < cap and seconds(case, n, repeats=2) < floor:
        n *= 2
    return n

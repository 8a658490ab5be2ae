"""The fixed words of an answer in the answer's language: labels, template sentences, task names.

An answer in Japanese should not say "takes" and "gives" around Japanese phrases, nor
"Recommended model for image deblurring" under a Japanese task statement. The words the
library itself writes (section labels, the connective words of a workflow step, why a
recommended model is cited) come from ``labels.toml``; the names of the tasks of
:mod:`grounded_answer.sources.tasks` in other languages from ``task_names.toml``. Both are
data beside this module, read once on first use. A language without a table is written
with the English words.
"""

from __future__ import annotations

import tomllib
from functools import cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from ..errors import ConfigError

__all__ = [
    "LABELS_FILE",
    "TASK_NAMES_FILE",
    "Labels",
    "english",
    "labels_for",
    "languages",
    "task_name",
]

LABELS_FILE = Path(__file__).resolve().parent / "labels.toml"
TASK_NAMES_FILE = Path(__file__).resolve().parent / "task_names.toml"


class Labels(BaseModel):
    """The words one language uses for the fixed parts of an answer."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    language: str = "en"
    question: str
    task: str
    workflow: str
    references: str
    input: str
    output: str
    takes: str
    does: str
    gives: str
    recommended_model: str
    paper: str
    paper_link: str
    note: str
    why_sources: str
    not_cited: str
    in_english: str
    offline: str
    no_references: str
    no_workflow: str
    not_fully: str
    supported_by: str
    answerable: str
    not_answerable: str
    verdict: str
    checked: str
    repaired: str
    dropped: str
    unresolved: str
    withheld: str
    recommended: str
    relevant: str
    borderline: str
    not_relevant: str
    recommended_why: str
    recommended_why_plain: str
    alternative_step: str
    alternatives: str
    judged_by_model: str
    judged_by_plan: str


@cache
def _tables() -> tuple[dict[str, Labels], dict[str, dict[str, str]]]:
    try:
        raw = tomllib.loads(LABELS_FILE.read_text(encoding="utf-8"))
        labels = {code: Labels(language=code, **table) for code, table in raw.items()}
        names = tomllib.loads(TASK_NAMES_FILE.read_text(encoding="utf-8"))
    except (OSError, ValueError, ValidationError) as exc:  # a packaging or editing mistake
        raise ConfigError(f"answer labels ({LABELS_FILE.parent}): {exc}") from None
    if "en" not in labels:
        raise ConfigError(f"{LABELS_FILE}: the [en] table is missing")
    return labels, {code: dict(table) for code, table in names.items()}


def labels_for(language: str | None) -> Labels | None:
    """The words for ``language`` (an ISO 639-1 code), or None when it has no table."""
    return _tables()[0].get(language or "en")


def english() -> Labels:
    """The English words: the default, and what a language without a table gets."""
    return _tables()[0]["en"]


def languages() -> list[str]:
    """The languages with a table of their own, English first."""
    return sorted(_tables()[0], key=lambda code: (code != "en", code))


def task_name(task: str | None, language: str) -> str | None:
    """The name of a task of the vocabulary in ``language``, or None if it has none."""
    if not task:
        return None
    if language == "en":
        return task
    return _tables()[1].get(language, {}).get(task)

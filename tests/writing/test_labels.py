"""The fixed words of an answer in each language: complete tables, placeholders kept."""

from __future__ import annotations

import string

import pytest

from grounded_answer.sources.tasks import guess_tasks
from grounded_answer.writing.labels import Labels, english, labels_for, languages, task_name


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


@pytest.mark.parametrize("language", languages())
def test_every_language_has_every_label_with_the_english_placeholders(language: str) -> None:
    words = labels_for(language)
    assert isinstance(words, Labels) and words.language == language
    for key, value in english().model_dump(exclude={"language"}).items():
        assert placeholders(getattr(words, key)) == placeholders(value), (language, key)
        assert getattr(words, key).strip(), (language, key)


@pytest.mark.parametrize("language", [code for code in languages() if code != "en"])
def test_every_task_of_the_vocabulary_has_a_name_in_each_language(language: str) -> None:
    # Every task the vocabulary can find; guess_tasks over its own names finds them all.
    from grounded_answer.sources.tasks import _table

    for _, hint in _table().tasks:
        name = task_name(hint.name, language)
        assert name and name != "", (language, hint.name)
    assert guess_tasks("image deblurring")


def test_a_language_without_a_table_has_none_and_english_names_itself() -> None:
    assert labels_for("xx") is None
    assert task_name("image deblurring", "en") == "image deblurring"
    assert task_name("image deblurring", "xx") is None
    assert task_name(None, "ja") is None

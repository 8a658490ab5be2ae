"""Settings: precedence, strictness, and the cache that gives each caller its own copy."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from grounded_answer import ConfigError, load_settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.upper().startswith("GROUNDED_ANSWER_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def test_arguments_beat_the_environment_which_beats_the_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "grounded-answer.toml").write_text(
        '[retrieval]\nk = 3\n[llm]\nmodel = "from-file"\ntemperature = 0.5\n'
    )
    monkeypatch.setenv("GROUNDED_ANSWER_LLM__MODEL", "from-env")
    settings = load_settings(retrieval={"k": 9})
    assert settings.retrieval.k == 9
    assert settings.llm.model == "from-env"
    assert settings.llm.temperature == 0.5


def test_an_unknown_key_or_a_bad_value_is_a_config_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / "grounded-answer.toml").write_text("[retrieval]\nkk = 3\n")
    with pytest.raises(ConfigError, match=r"retrieval\.kk"):
        load_settings()
    (tmp_path / "grounded-answer.toml").write_text("[judge]\nkeep_gap = 2.0\n")
    with pytest.raises(ConfigError, match=r"judge\.keep_gap"):
        load_settings()


def test_a_missing_config_file_named_by_the_environment_is_an_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("GROUNDED_ANSWER_CONFIG", str(tmp_path / "nope.toml"))
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings()


def test_each_call_gets_its_own_copy_of_the_cached_settings() -> None:
    first = load_settings()
    first.llm.model = "changed"
    first.retrieval.k = 1
    second = load_settings()
    assert second.llm.model != "changed" and second.retrieval.k != 1
    assert second is not first


def test_an_edited_file_or_a_new_variable_builds_anew(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "grounded-answer.toml"
    config.write_text("[retrieval]\nk = 3\n")
    assert load_settings().retrieval.k == 3
    config.write_text("[retrieval]\nk = 44\n")  # a new size, a new mtime
    assert load_settings().retrieval.k == 44
    monkeypatch.setenv("GROUNDED_ANSWER_RETRIEVAL__K", "7")
    assert load_settings().retrieval.k == 7
    config.unlink()
    monkeypatch.delenv("GROUNDED_ANSWER_RETRIEVAL__K")
    assert load_settings().retrieval.k == load_settings(retrieval={}).retrieval.k

"""The response cache's SQLite store: upsert, the age bound, the size bound, the wrapper.

Rows are aged by writing their ``created`` column directly, never by sleeping: what is
tested is which rows count and which go, not how long anything takes.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from grounded_answer import load_settings
from grounded_answer.backends._prune import prune_due
from grounded_answer.backends.base import Completion, CompletionRequest
from grounded_answer.backends.cache import (
    CachedBackend,
    SQLiteResponses,
    cached,
    response_store,
)
from grounded_answer.errors import IndexStoreError
from grounded_answer.writing.prompts import ChatMessage, PromptContext


def store(tmp_path: Path, **bounds: float | int | None) -> SQLiteResponses:
    options: dict[str, object] = {"max_entries": None, "max_age": None, **bounds}
    return SQLiteResponses(tmp_path / "responses.sqlite3", prune_every=10**9, **options)  # type: ignore[arg-type]


def age(path: Path, key: str, seconds: float) -> None:
    with sqlite3.connect(path) as connection:
        connection.execute(
            "UPDATE responses SET created = ? WHERE key = ?", (time.time() - seconds, key)
        )


def keys(path: Path) -> set[str]:
    with sqlite3.connect(path) as connection:
        return {row[0] for row in connection.execute("SELECT key FROM responses")}


def test_put_is_an_upsert(tmp_path: Path) -> None:
    responses = store(tmp_path)
    responses.put("a", "first")
    responses.put("a", "second")
    assert responses.get("a") == "second" and keys(responses.path) == {"a"}
    assert responses.get("missing") is None


def test_an_entry_older_than_max_age_is_a_miss_then_pruned(tmp_path: Path) -> None:
    responses = store(tmp_path, max_age=3600)
    responses.put("old", "x")
    responses.put("new", "y")
    age(responses.path, "old", 7200)
    assert responses.get("old") is None and responses.get("new") == "y"
    responses.prune()
    assert keys(responses.path) == {"new"}


def test_prune_keeps_the_newest_max_entries(tmp_path: Path) -> None:
    responses = store(tmp_path, max_entries=3)
    for number in range(6):
        responses.put(f"k{number}", str(number))
        age(responses.path, f"k{number}", 100 - number)  # k5 is the newest
    responses.prune()
    assert keys(responses.path) == {"k3", "k4", "k5"}


def test_writes_prune_when_due(tmp_path: Path) -> None:
    responses = SQLiteResponses(tmp_path / "r.sqlite3", max_entries=2, max_age=None, prune_every=1)
    for number in range(5):
        responses.put(f"k{number}", str(number))
    assert len(keys(responses.path)) == 2
    assert prune_due(1)


def test_an_old_file_without_the_index_is_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "responses.sqlite3"
    with sqlite3.connect(path) as connection:  # the schema before the bounds existed
        connection.execute(
            "CREATE TABLE responses (key TEXT PRIMARY KEY, "
            "completion TEXT NOT NULL, created REAL NOT NULL)"
        )
        connection.execute("INSERT INTO responses VALUES ('k', 'v', ?)", (time.time(),))
    responses = SQLiteResponses(path, max_entries=10, max_age=60)
    assert responses.get("k") == "v"
    with sqlite3.connect(path) as connection:
        names = {
            row[0]
            for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'index'")
        }
    assert "responses_created" in names


def test_check_reports_an_unusable_file(tmp_path: Path) -> None:
    folder = tmp_path / "a-directory.sqlite3"
    folder.mkdir()
    with pytest.raises(IndexStoreError, match="response cache"):
        SQLiteResponses(folder, max_entries=None, max_age=None).check()


@pytest.mark.parametrize("where", ["a directory", "a missing folder"])
def test_an_unusable_file_is_a_miss_and_a_skipped_write(
    tmp_path: Path, where: str, caplog: pytest.LogCaptureFixture
) -> None:
    if where == "a directory":
        path = tmp_path / "responses.sqlite3"
        path.mkdir()
    else:
        path = tmp_path / "gone" / "responses.sqlite3"
    responses = SQLiteResponses(path, max_entries=1, max_age=60, prune_every=1)
    with caplog.at_level("WARNING", logger="grounded_answer.cache"):
        assert responses.get("k") is None
        responses.put("k", "v")
        responses.prune()
    assert "answering without it" in caplog.text
    # Answering goes on: the backend is asked, each time, and nothing raises.
    backend = Counting()
    wrapped = CachedBackend(backend, responses, load_settings().llm)
    assert wrapped.complete(request("q")).text == "answer 1"
    assert wrapped.complete(request("q")).text == "answer 2"


def test_one_store_per_file_and_bounds(tmp_path: Path) -> None:
    llm = load_settings(llm={"cache_max_entries": 5}).llm
    (tmp_path / "cache").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "cache")
    first = response_store(tmp_path / "cache", llm)
    assert response_store(tmp_path / "link", llm) is first  # the same file, spelled apart
    other = response_store(tmp_path / "cache", load_settings(llm={"cache_max_entries": 6}).llm)
    assert other is not first and isinstance(other, SQLiteResponses) and other.max_entries == 6


def test_a_removed_file_is_set_up_again(tmp_path: Path) -> None:
    responses = store(tmp_path)
    responses.put("a", "first")
    responses.path.unlink()
    assert responses.get("a") is None  # no table: a miss, and the next open sets it up
    responses.put("a", "second")
    assert responses.get("a") == "second"


class Counting:
    """A backend that answers with a number and counts its calls."""

    name = "counting"
    model = "m"
    offline = False

    def __init__(self) -> None:
        self.calls = 0

    def complete(self, request: CompletionRequest) -> Completion:
        self.calls += 1
        return Completion(text=f"answer {self.calls}", prompt_tokens=5, completion_tokens=3)


def request(text: str) -> CompletionRequest:
    return CompletionRequest(
        messages=[ChatMessage(role="user", content=text)],
        json_schema=None,
        context=PromptContext(question=text, sources=[], passages=[], weak_match=False),
    )


def test_the_wrapper_answers_a_repeat_from_the_bounded_store(tmp_path: Path) -> None:
    settings = load_settings(
        index={"cache_dir": str(tmp_path)}, llm={"cache_max_entries": 5, "cache_max_age": 60}
    )
    backend = Counting()
    wrapped = cached(backend, tmp_path, settings.llm)
    assert isinstance(wrapped, CachedBackend)
    assert isinstance(wrapped.store, SQLiteResponses)
    assert (wrapped.store.max_entries, wrapped.store.max_age) == (5, 60)
    first = wrapped.complete(request("q"))
    again = cached(Counting(), tmp_path, settings.llm).complete(request("q"))  # another answer
    assert (first.cached, again.cached, again.text) == (False, True, "answer 1")
    assert backend.calls == 1
    # A cached response past the age bound is asked again.
    age(tmp_path / "responses.sqlite3", wrapped._key(request("q")), 120)
    assert wrapped.complete(request("q")).cached is False and backend.calls == 2


def test_cache_url_without_psycopg_pool_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from grounded_answer.errors import ConfigError

    monkeypatch.setitem(__import__("sys").modules, "psycopg_pool", None)
    settings = load_settings(llm={"cache_url": "postgresql://u@127.0.0.1:1/db"})
    with pytest.raises(ConfigError, match=r"grounded-answer\[pgvector\]"):
        response_store(tmp_path, settings.llm)

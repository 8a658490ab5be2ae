"""The response cache in a real PostgreSQL (embedded, 127.0.0.1): upsert, bounds, sharing.

Rows are aged by writing ``created`` with SQL, never by sleeping. Two stores on one
database stand for two hosts.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import psycopg
import pytest

from grounded_answer.backends.cache_pg import TABLE, PostgresResponses, close_pools
from grounded_answer.errors import IndexStoreError

from .chat_server import refused_url

pytestmark = pytest.mark.integration


@pytest.fixture
def dsn(pg_dsn: str) -> Iterator[str]:
    yield pg_dsn
    close_pools()  # before the database is dropped


def rows(dsn: str) -> dict[str, str]:
    with psycopg.connect(dsn) as connection:
        return dict(connection.execute(f"SELECT key, completion FROM {TABLE}").fetchall())


def age(dsn: str, key: str, seconds: int) -> None:
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute(
            f"UPDATE {TABLE} SET created = now() - make_interval(secs => %s) WHERE key = %s",
            (seconds, key),
        )


def test_one_table_shared_by_two_hosts_with_an_upsert(dsn: str) -> None:
    one = PostgresResponses(dsn, max_entries=None, max_age=None)
    two = PostgresResponses(dsn, max_entries=None, max_age=None)
    one.check()
    one.put("k", "first")
    assert two.get("k") == "first"
    two.put("k", "second")  # ON CONFLICT DO UPDATE, not an error
    assert one.get("k") == "second" and rows(dsn) == {"k": "second"}
    assert one.get("absent") is None


def test_age_is_judged_by_the_database_clock_and_pruned(dsn: str) -> None:
    responses = PostgresResponses(dsn, max_entries=None, max_age=3600, prune_every=10**9)
    responses.put("old", "x")
    responses.put("new", "y")
    age(dsn, "old", 7200)
    assert responses.get("old") is None and responses.get("new") == "y"
    responses.prune()
    assert set(rows(dsn)) == {"new"}


def test_size_is_bounded_oldest_first_on_writes(dsn: str) -> None:
    responses = PostgresResponses(dsn, max_entries=3, max_age=None, prune_every=10**9)
    for number in range(6):
        responses.put(f"k{number}", str(number))
        age(dsn, f"k{number}", 100 - number)
    responses.prune()
    assert set(rows(dsn)) == {"k3", "k4", "k5"}
    pruning = PostgresResponses(dsn, max_entries=1, max_age=None, prune_every=1)
    pruning.put("k6", "6")  # every write prunes
    assert set(rows(dsn)) == {"k6"}


def test_an_unreachable_database_fails_the_check_and_misses_at_run_time(
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = refused_url().split(":")[2].split("/")[0]
    dsn = f"postgresql://nobody:secret-password@127.0.0.1:{port}/none?connect_timeout=1"
    responses = PostgresResponses(dsn, max_entries=None, max_age=None)
    try:
        with pytest.raises(IndexStoreError, match=r"llm\.cache_url") as caught:
            responses.check()
        assert "secret-password" not in str(caught.value)
        with caplog.at_level(logging.WARNING, logger="grounded_answer.cache"):
            assert responses.get("k") is None  # answering goes on without the cache
            responses.put("k", "v")
        warnings = [r for r in caplog.records if r.name == "grounded_answer.cache"]
        assert len(warnings) == 1 and "answering without it" in warnings[0].getMessage()
    finally:
        close_pools()

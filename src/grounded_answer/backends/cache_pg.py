"""The response cache in PostgreSQL: one table shared by every worker of every host.

``llm.cache_url`` names the database (it may be the pgvector store's). The table
``grounded_answer_llm_responses`` is created on first use; a write is one upsert
(``INSERT ... ON CONFLICT DO UPDATE``); the age bound is checked against the database's
clock, so hosts whose clocks drift still agree on what is too old. About one write in
:data:`~grounded_answer.backends.cache.PRUNE_EVERY` prunes the table, and an advisory lock
lets only one process prune at a time.

Connections come from one small psycopg pool per database and process, since the
pipeline wraps a new backend for every answer. A database that is down makes the cache
miss (with a warning in the log, at most once a minute), so answering goes on; one that
is misconfigured is found at start by :meth:`PostgresResponses.check`.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, IndexStoreError
from ._prune import PRUNE_EVERY, prune_due

if TYPE_CHECKING:
    from psycopg_pool import ConnectionPool

__all__ = ["TABLE", "PostgresResponses", "close_pools", "postgres_responses"]

_log = logging.getLogger("grounded_answer.cache")

#: The one table, in the connection's default schema.
TABLE = "grounded_answer_llm_responses"

# Advisory lock ids (any two fixed 64-bit numbers): creating the table, pruning it.
_SCHEMA_LOCK = 0x67615F6C6C6D0001
_PRUNE_LOCK = 0x67615F6C6C6D0002

_SCHEMA = (
    f"CREATE TABLE IF NOT EXISTS {TABLE} (key text PRIMARY KEY, completion text NOT NULL, "
    "created timestamptz NOT NULL DEFAULT now())",
    f"CREATE INDEX IF NOT EXISTS {TABLE}_created ON {TABLE} (created)",
)

#: Connections per pool: each get or put holds one for a millisecond or two, so a few
#: serve every answer slot of a worker without crowding the server's max_connections.
POOL_SIZE = 4

_POOLS: dict[str, ConnectionPool[Any]] = {}
_READY: set[str] = set()
_POOLS_LOCK = threading.Lock()


class PostgresResponses:
    """Responses in one PostgreSQL table (see the module docstring).

    Args:
        dsn: The database, a libpq URI or key=value string.
        max_entries: Most rows kept (None = no limit).
        max_age: Seconds a row is usable (None = no limit).
        prune_every: About one write in this many prunes.

    """

    def __init__(
        self,
        dsn: str,
        *,
        max_entries: int | None,
        max_age: float | None,
        prune_every: int = PRUNE_EVERY,
    ) -> None:
        self.dsn = dsn
        self.max_entries = max_entries
        self.max_age = max_age
        self.prune_every = prune_every
        self._warned = 0.0

    def check(self) -> None:
        """Connect and create the table now, so a wrong ``cache_url`` fails at start.

        Raises:
            IndexStoreError: the database cannot be reached or the table cannot be made.

        """
        import psycopg

        try:
            self._ensure_schema()
        except psycopg.Error as exc:
            raise IndexStoreError(f"response cache (llm.cache_url): {_reason(exc)}") from None

    def get(self, key: str) -> str | None:
        """The stored JSON for ``key``, if present and young enough; a failure is a miss."""
        import psycopg

        age = (
            "" if self.max_age is None else " AND created >= now() - make_interval(secs => %(age)s)"
        )
        try:
            self._ensure_schema()
            with _pool(self.dsn).connection() as connection:
                row = connection.execute(
                    f"SELECT completion FROM {TABLE} WHERE key = %(key)s{age}",
                    {"key": key, "age": self.max_age},
                ).fetchone()
        except (psycopg.Error, IndexStoreError) as exc:
            self._warn(exc)
            return None
        return None if row is None else str(row[0])

    def put(self, key: str, value: str) -> None:
        """Upsert ``key``; prune on one write in ``prune_every``. A failure is logged."""
        import psycopg

        try:
            self._ensure_schema()
            with _pool(self.dsn).connection() as connection:
                connection.execute(
                    f"INSERT INTO {TABLE} (key, completion, created) VALUES (%s, %s, now()) "
                    "ON CONFLICT (key) DO UPDATE SET completion = EXCLUDED.completion, "
                    "created = EXCLUDED.created",
                    (key, value),
                )
        except (psycopg.Error, IndexStoreError) as exc:
            self._warn(exc)
            return
        if prune_due(self.prune_every):
            self.prune()

    def prune(self) -> None:
        """Delete rows over the age bound, then the oldest beyond the size bound.

        Only one process prunes at a time (``pg_try_advisory_xact_lock``); the others
        skip, since the one pruning does the same work.
        """
        import psycopg

        try:
            self._ensure_schema()
            with _pool(self.dsn).connection() as connection, connection.transaction():
                row = connection.execute(
                    "SELECT pg_try_advisory_xact_lock(%s)", (_PRUNE_LOCK,)
                ).fetchone()
                if not row or not row[0]:
                    return
                if self.max_age is not None:
                    connection.execute(
                        f"DELETE FROM {TABLE} WHERE created < now() - make_interval(secs => %s)",
                        (self.max_age,),
                    )
                if self.max_entries is not None:
                    connection.execute(
                        f"DELETE FROM {TABLE} WHERE key IN (SELECT key FROM {TABLE} "
                        "ORDER BY created DESC OFFSET %s)",
                        (self.max_entries,),
                    )
        except (psycopg.Error, IndexStoreError) as exc:
            self._warn(exc)

    def _ensure_schema(self) -> None:
        if self.dsn in _READY:
            return
        with _pool(self.dsn).connection() as connection, connection.transaction():
            # Two workers starting together would race on CREATE ... IF NOT EXISTS.
            connection.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            for statement in _SCHEMA:
                connection.execute(statement)
        _READY.add(self.dsn)

    def _warn(self, exc: BaseException) -> None:
        now = time.monotonic()
        if now - self._warned >= 60:
            self._warned = now
            _log.warning(
                "response cache (llm.cache_url) unavailable, answering without it: %s", _reason(exc)
            )


def postgres_responses(
    dsn: str, *, max_entries: int | None, max_age: float | None
) -> PostgresResponses:
    """A :class:`PostgresResponses` for ``dsn``, checking that psycopg is installed.

    Raises:
        ConfigError: psycopg (grounded-answer[pgvector]) is missing.

    """
    try:
        import psycopg  # noqa: F401
        import psycopg_pool  # noqa: F401
    except ImportError as exc:
        raise ConfigError(
            "llm.cache_url needs psycopg and psycopg-pool: pip install "
            f"'grounded-answer[pgvector]' ({exc.name or exc} is missing)"
        ) from None
    return PostgresResponses(dsn, max_entries=max_entries, max_age=max_age)


def close_pools() -> None:
    """Close every pool this process opened (at exit, and in tests that drop a database)."""
    with _POOLS_LOCK:
        pools = list(_POOLS.values())
        _POOLS.clear()
        _READY.clear()
    for pool in pools:
        pool.close()


def _pool(dsn: str) -> ConnectionPool[Any]:
    with _POOLS_LOCK:
        pool = _POOLS.get(dsn)
        if pool is None:
            from psycopg_pool import ConnectionPool

            if not _POOLS:
                atexit.register(close_pools)
            pool = ConnectionPool(
                dsn,
                min_size=1,
                max_size=POOL_SIZE,
                open=True,
                timeout=5.0,
                kwargs={"autocommit": True, "connect_timeout": 5},
                name="grounded-answer-cache",
            )
            _POOLS[dsn] = pool
        return pool


def _reason(exc: BaseException) -> str:
    # libpq's messages can quote the connection string's host and user, never the password.
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__

"""A response cache in front of any backend: the same request asked twice costs one call.

A platform sends the same bundle again and again, and a small local model takes seconds
per answer. Responses are keyed by a hash of everything that shapes the answer (backend,
model, endpoint, messages, schema and sampling settings), so a changed prompt template,
plan or setting is a new key, never a stale answer.

Where they are kept is one small interface, :class:`ResponseStore` (get, put, prune):

- :class:`SQLiteResponses`, the embedded default: one file in the cache directory, whose
  write-ahead log lets the processes of one host share it (one store per file and
  process, so the file is set up once, not for every answer);
- ``PostgresResponses`` (``backends/cache_pg.py``), when ``llm.cache_url`` names a
  PostgreSQL database: one table shared by every worker of every host.

Both hold at most ``llm.cache_max_entries`` responses for at most ``llm.cache_max_age``
seconds: an older response is a miss at once, and a fraction of the writes prune the
store (oldest first), so the bound costs nothing on the common path.

A cache that cannot be used while answering (a file that cannot be opened, a database
that is down) is a miss and a skipped write, logged as a warning: answering matters more
than caching. Only :meth:`ResponseStore.check`, at start, raises.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import threading
import time
from pathlib import Path
from typing import Protocol

from ..config import LLMSettings
from ..errors import IndexStoreError
from ._prune import PRUNE_EVERY, prune_due
from .base import Backend, Completion, CompletionRequest

__all__ = [
    "CachedBackend",
    "ResponseStore",
    "SQLiteResponses",
    "cached",
    "response_store",
    "sqlite_responses",
]

_log = logging.getLogger("grounded_answer.cache")

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS responses ("
    "key TEXT PRIMARY KEY, completion TEXT NOT NULL, created REAL NOT NULL)",
    "CREATE INDEX IF NOT EXISTS responses_created ON responses (created)",
)


class ResponseStore(Protocol):
    """Where cached responses live: a key (a sha256 hex digest) to a completion's JSON."""

    def get(self, key: str) -> str | None:
        """The stored JSON for ``key`` if it is younger than the age bound, else None."""
        ...

    def put(self, key: str, value: str) -> None:
        """Store (or replace) ``key``; now and then prune the store to its bounds."""
        ...

    def prune(self) -> None:
        """Delete what is over the age bound, then the oldest beyond the size bound."""
        ...

    def check(self) -> None:
        """Open the store now, so a broken one fails when the server starts.

        Raises:
            IndexStoreError: the store cannot be opened or created.

        """
        ...


class CachedBackend:
    """Wraps a backend; answers from the cache when the same request was answered before."""

    def __init__(self, backend: Backend, store: ResponseStore, settings: LLMSettings) -> None:
        self.inner = backend
        self.name = backend.name
        self.model = backend.model
        self.offline = backend.offline
        self.store = store
        self._salt = json.dumps(
            [
                backend.name,
                backend.model,
                settings.base_url or "",
                settings.temperature,
                settings.max_tokens,
                settings.structured_output,
            ]
        )

    def complete(self, request: CompletionRequest) -> Completion:
        """The cached completion for this request, else the backend's (then cached)."""
        key = self._key(request)
        found = self._get(key)
        if found is not None:
            if request.on_text is not None:
                request.on_text(found.text)
            return found.model_copy(update={"cached": True, "seconds": 0.0})
        completion = self.inner.complete(request)
        # A cut-off answer is not worth keeping, unless the request asked for a short one
        # (a judge's one-token yes or no).
        if completion.finish_reason != "length" or request.max_tokens is not None:
            self.store.put(key, completion.model_dump_json())
        return completion

    def _key(self, request: CompletionRequest) -> str:
        payload = json.dumps(
            [
                self._salt,
                [m.model_dump() for m in request.messages],
                request.json_schema,
                request.max_tokens,
                request.top_logprobs,
            ],
            sort_keys=True,
            ensure_ascii=False,
        )
        return hashlib.sha256(payload.encode()).hexdigest()

    def _get(self, key: str) -> Completion | None:
        text = self.store.get(key)
        if text is None:
            return None
        try:
            return Completion.model_validate_json(text)
        except ValueError:
            return None  # a damaged entry is a miss, never a failure


class SQLiteResponses:
    """Responses in one SQLite file, shared by the processes of one host (WAL mode).

    Args:
        path: The database file.
        max_entries: Most rows kept (None = no limit).
        max_age: Seconds a row is usable (None = no limit).
        prune_every: About one write in this many prunes (1 = every write).

    """

    def __init__(
        self,
        path: Path,
        *,
        max_entries: int | None,
        max_age: float | None,
        prune_every: int = PRUNE_EVERY,
    ) -> None:
        self.path = path
        self.max_entries = max_entries
        self.max_age = max_age
        self.prune_every = prune_every
        self._lock = threading.Lock()
        self._ready = False
        self._warned = float("-inf")

    def get(self, key: str) -> str | None:
        """The stored JSON for ``key``, if present and young enough; a failure is a miss."""
        connection = self._open()
        if connection is None:
            return None
        try:
            row = connection.execute(
                "SELECT completion FROM responses WHERE key = ? AND created >= ?",
                (key, self._oldest()),
            ).fetchone()
        except sqlite3.Error:
            self._ready = False  # set the file up again next time: it may have been removed
            return None  # a damaged cache is a miss, never a failure
        finally:
            connection.close()
        return None if row is None else str(row[0])

    def put(self, key: str, value: str) -> None:
        """Insert or replace ``key``; prune on one write in ``prune_every``; a failure skips it."""
        connection = self._open()
        if connection is None:
            return
        try:
            with connection:
                connection.execute(
                    "INSERT INTO responses VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE "
                    "SET completion = excluded.completion, created = excluded.created",
                    (key, value, time.time()),
                )
        except sqlite3.Error:
            self._ready = False
            return  # full disk or a locked file: answering matters more than caching
        finally:
            connection.close()
        if prune_due(self.prune_every):
            self.prune()

    def prune(self) -> None:
        """Delete rows over the age bound, then the oldest beyond the size bound."""
        connection = self._open()
        if connection is None:
            return
        try:
            with connection:
                if self.max_age is not None:
                    connection.execute("DELETE FROM responses WHERE created < ?", (self._oldest(),))
                if self.max_entries is not None:
                    connection.execute(
                        "DELETE FROM responses WHERE key IN (SELECT key FROM responses "
                        "ORDER BY created DESC LIMIT -1 OFFSET ?)",
                        (self.max_entries,),
                    )
        except sqlite3.Error:
            pass  # pruning is housekeeping: the next prune tries again
        finally:
            connection.close()

    def check(self) -> None:
        """Open the file and create the table now (raises IndexStoreError)."""
        self._connect().close()

    def _oldest(self) -> float:
        return time.time() - self.max_age if self.max_age is not None else float("-inf")

    def _open(self) -> sqlite3.Connection | None:
        """A connection, or None (logged, at most once a minute) if the file is unusable."""
        try:
            return self._connect()
        except IndexStoreError as exc:
            now = time.monotonic()
            if now - self._warned >= 60:
                self._warned = now
                _log.warning("response cache unavailable, answering without it: %s", exc)
            return None

    def _connect(self) -> sqlite3.Connection:
        try:
            connection = sqlite3.connect(self.path, timeout=30)
        except sqlite3.Error as exc:
            raise IndexStoreError(f"response cache {self.path}: {exc}") from None
        try:
            if not self._ready:
                with self._lock:
                    if not self._ready:
                        connection.execute("PRAGMA journal_mode=WAL")
                        for statement in _SCHEMA:
                            connection.execute(statement)
                        self._ready = True
        except sqlite3.Error as exc:
            connection.close()
            raise IndexStoreError(f"response cache {self.path}: {exc}") from None
        return connection


# One store per database file and bounds in this process: the pipeline wraps a new
# backend for every answer, and the file's setup (WAL, the schema) should run once.
_SQLITE: dict[tuple[Path, int | None, float | None], SQLiteResponses] = {}
_SQLITE_LOCK = threading.Lock()


def sqlite_responses(
    path: Path, *, max_entries: int | None, max_age: float | None
) -> SQLiteResponses:
    """The process's :class:`SQLiteResponses` for ``path`` (its resolved form) and bounds."""
    key = (path.resolve(), max_entries, max_age)
    with _SQLITE_LOCK:
        store = _SQLITE.get(key)
        if store is None:
            store = _SQLITE[key] = SQLiteResponses(key[0], max_entries=max_entries, max_age=max_age)
        return store


def response_store(cache_dir: Path, settings: LLMSettings) -> ResponseStore:
    """The store ``settings`` name: PostgreSQL for ``cache_url``, else SQLite in ``cache_dir``.

    Raises:
        IndexStoreError: the cache directory cannot be created.
        ConfigError: ``cache_url`` is set but psycopg is not installed.

    """
    if settings.cache_url is not None:
        from .cache_pg import postgres_responses

        return postgres_responses(
            settings.cache_url.get_secret_value(),
            max_entries=settings.cache_max_entries,
            max_age=settings.cache_max_age,
        )
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise IndexStoreError(f"cannot create the cache directory {cache_dir}: {exc}") from None
    return sqlite_responses(
        cache_dir / "responses.sqlite3",
        max_entries=settings.cache_max_entries,
        max_age=settings.cache_max_age,
    )


def cached(backend: Backend, cache_dir: Path, settings: LLMSettings) -> Backend:
    """``backend`` behind the response cache (``llm.cache_url`` or ``cache_dir``), if online."""
    if backend.offline or not settings.cache or isinstance(backend, CachedBackend):
        return backend
    return CachedBackend(backend, response_store(cache_dir, settings), settings)

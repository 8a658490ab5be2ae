"""A response cache in front of any backend: the same request asked twice costs one call.

A platform sends the same bundle again and again, and a small local model takes seconds
per answer. Responses are kept in one SQLite file in the cache directory, keyed by a hash
of everything that shapes the answer (backend, model, endpoint, messages, schema and
sampling settings), so a changed prompt template, plan or setting is a new key, never a
stale answer. SQLite's write-ahead log lets several processes share the file.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from pathlib import Path

from ..config import LLMSettings
from ..errors import IndexStoreError
from .base import Backend, Completion, CompletionRequest

__all__ = ["CachedBackend", "cached"]

_SCHEMA = """CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY, completion TEXT NOT NULL, created REAL NOT NULL)"""


class CachedBackend:
    """Wraps a backend; answers from the cache when the same request was answered before."""

    def __init__(self, backend: Backend, path: Path, settings: LLMSettings) -> None:
        self.inner = backend
        self.name = backend.name
        self.model = backend.model
        self.offline = backend.offline
        self.path = path
        self._salt = json.dumps([
            backend.name, backend.model, settings.base_url or "", settings.temperature,
            settings.max_tokens, settings.structured_output,
        ])
        self._lock = threading.Lock()
        self._ready = False

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
            self._put(key, completion)
        return completion

    def _key(self, request: CompletionRequest) -> str:
        payload = json.dumps([self._salt, [m.model_dump() for m in request.messages],
                              request.json_schema, request.max_tokens, request.top_logprobs],
                             sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(payload.encode()).hexdigest()

    def _connect(self) -> sqlite3.Connection:
        try:
            connection = sqlite3.connect(self.path, timeout=30)
            if not self._ready:
                with self._lock:
                    connection.execute("PRAGMA journal_mode=WAL")
                    connection.execute(_SCHEMA)
                    self._ready = True
            return connection
        except sqlite3.Error as exc:
            raise IndexStoreError(f"response cache {self.path}: {exc}") from None

    def _get(self, key: str) -> Completion | None:
        connection = self._connect()
        try:
            row = connection.execute(
                "SELECT completion FROM responses WHERE key = ?", (key,)).fetchone()
        except sqlite3.Error:
            return None  # a damaged cache is a miss, never a failure
        finally:
            connection.close()
        if row is None:
            return None
        try:
            return Completion.model_validate_json(row[0])
        except ValueError:
            return None

    def _put(self, key: str, completion: Completion) -> None:
        connection = self._connect()
        try:
            with connection:
                connection.execute(
                    "INSERT OR REPLACE INTO responses VALUES (?, ?, ?)",
                    (key, completion.model_dump_json(), time.time()))
        except sqlite3.Error:
            pass  # full disk or a locked file: answering matters more than caching
        finally:
            connection.close()


def cached(backend: Backend, cache_dir: Path, settings: LLMSettings) -> Backend:
    """``backend`` behind the response cache in ``cache_dir``, unless it is offline."""
    if backend.offline or not settings.cache or isinstance(backend, CachedBackend):
        return backend
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise IndexStoreError(f"cannot create the cache directory {cache_dir}: {exc}") from None
    return CachedBackend(backend, cache_dir / "responses.sqlite3", settings)

"""The one exception hierarchy of grounded-answer.

Misuse (the caller must fix something) is kept apart from runtime failures (something
outside the caller's input went wrong), so applications can tell "show the user a
message" from "retry later or alert"::

    GroundedAnswerError
    ├── UserInputError                 bad input: fix it and call again (CLI exit 2)
    │   ├── QuestionError              empty or oversized question
    │   ├── SourceFileError            a corpus or bundle file: carries path, line, record, field
    │   │   ├── BundleParseError       the platform's bundle prompt format
    │   │   └── CorpusError            corpus files (YAML / JSONL) and source records
    │   └── ConfigError                invalid settings, unknown backend, bad paths
    └── AnswerRunError                 runtime failure (CLI exit 1)
        ├── IndexStoreError            the index cache cannot be read or written
        ├── BackendError               the LLM backend failed: carries backend name
        │   ├── BackendConnectionError server unreachable
        │   ├── BackendTimeoutError    no answer within the timeout
        │   ├── BackendRateLimitError  429 after the allowed retries
        │   └── BackendResponseError   5xx, malformed body, empty choices, refusal
        ├── UngroundedAnswerError      the model kept breaking the grounding rules;
        │                              carries every attempt and its errors
        ├── RunCancelledError          stopped before the end (the HTTP client went away)
        │   └── RunTimeoutError        stopped at its deadline (serve.request_timeout)
        └── ServerBusyError            the server's LLM slots and queue are full (HTTP 429)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "AnswerRunError",
    "Attempt",
    "BackendConnectionError",
    "BackendError",
    "BackendRateLimitError",
    "BackendResponseError",
    "BackendTimeoutError",
    "BundleParseError",
    "ConfigError",
    "CorpusError",
    "GroundedAnswerError",
    "IndexStoreError",
    "QuestionError",
    "RunCancelledError",
    "RunTimeoutError",
    "ServerBusyError",
    "SourceFileError",
    "UngroundedAnswerError",
    "UserInputError",
]


class GroundedAnswerError(Exception):
    """Base of every error this library raises on purpose."""


class UserInputError(GroundedAnswerError):
    """The caller gave something unusable; the message says what to fix."""


class QuestionError(UserInputError):
    """The question is empty, whitespace, or longer than the configured limit."""


class SourceFileError(UserInputError):
    """A corpus or bundle file is malformed.

    The location attributes are what a user needs to find the fault in an editor, so
    they are part of the message too.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        line: int | None = None,
        record: str | int | None = None,
        field: str | None = None,
    ) -> None:
        self.path = None if path is None else str(path)
        self.line = line
        self.record = record
        self.field = field
        self.reason = message
        super().__init__(self._format())

    def _format(self) -> str:
        where = []
        if self.path is not None:
            where.append(self.path if self.line is None else f"{self.path}:{self.line}")
        elif self.line is not None:
            where.append(f"line {self.line}")
        if self.record is not None:
            where.append(f"record {self.record!s}")
        if self.field is not None:
            where.append(f"field {self.field!r}")
        return f"{', '.join(where)}: {self.reason}" if where else self.reason


class BundleParseError(SourceFileError):
    """A bundle file does not follow the platform's prompt format."""


class CorpusError(SourceFileError):
    """A corpus file or source record is invalid (bad URL, duplicate id, wrong type...)."""


class ConfigError(UserInputError):
    """Settings are invalid: an unknown backend, a bad value, an unusable path."""


class AnswerRunError(GroundedAnswerError):
    """Something failed at run time that the caller's input did not cause."""


class IndexStoreError(AnswerRunError):
    """The index cache directory cannot be created, locked or written."""


class BackendError(AnswerRunError):
    """The LLM backend failed to give a usable completion."""

    def __init__(self, message: str, *, backend: str, attempts: int = 1) -> None:
        self.backend = backend
        self.attempts = attempts
        super().__init__(f"{backend} backend: {message}")


class BackendConnectionError(BackendError):
    """The server could not be reached (refused, DNS, reset)."""


class BackendTimeoutError(BackendError):
    """The server did not answer within the configured timeout."""


class BackendRateLimitError(BackendError):
    """The server kept answering 429 after the allowed retries."""


class BackendResponseError(BackendError):
    """The server answered, but not with a usable completion (5xx, bad body, no choices)."""


@dataclass(frozen=True)
class Attempt:
    """One model output and the grounding errors found in it."""

    output: str
    errors: Sequence[str] = field(default_factory=tuple)


class UngroundedAnswerError(AnswerRunError):
    """The model broke the grounding rules on every attempt (policy ``strict``).

    ``attempts`` keeps each raw output with its errors, so the failure can be inspected
    or logged without re-running the model. ``detail`` is the last attempt's errors as
    the message shows them (the raiser defangs the links they quote).
    """

    def __init__(self, message: str, *, attempts: Sequence[Attempt], detail: str = "") -> None:
        self.attempts = tuple(attempts)
        super().__init__(
            f"{message} after {len(self.attempts)} attempt(s)" + (f": {detail}" if detail else "")
        )


class RunCancelledError(AnswerRunError):
    """The run was cancelled before it finished, e.g. because the HTTP client disconnected.

    Raised by a backend that was handed a cancelled
    :class:`~grounded_answer.backends.Cancellation`; the LLM request in flight is aborted,
    not left running for an answer nobody reads.
    """


class RunTimeoutError(RunCancelledError):
    """The run was cancelled at its deadline (``serve.request_timeout``)."""

    def __init__(self, message: str, *, seconds: float) -> None:
        self.seconds = seconds
        super().__init__(message)


class ServerBusyError(AnswerRunError):
    """Every LLM slot is taken and the waiting queue is full: try again shortly.

    ``retry_after`` is the server's guess, in whole seconds, of when a slot frees up.
    """

    def __init__(self, message: str, *, retry_after: int = 1) -> None:
        self.retry_after = retry_after
        super().__init__(message)

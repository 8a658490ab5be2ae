"""The library's exceptions as HTTP errors: one table, the same categories as the CLI.

Bad input is a 4xx that names the request field; a failure outside the request is a 5xx
(or 429: come back later). A response never carries a traceback: unexpected exceptions
are logged here and answered with a generic 500.
"""

from __future__ import annotations

import logging

from ..errors import (
    AnswerRunError,
    BackendConnectionError,
    BackendRateLimitError,
    BackendResponseError,
    BackendTimeoutError,
    BundleParseError,
    ConfigError,
    GroundedAnswerError,
    QuestionError,
    RunCancelledError,
    RunTimeoutError,
    ServerBusyError,
    SourceFileError,
    UngroundedAnswerError,
    UserInputError,
)
from ..grounding.links import defang
from . import _context
from ._models import ErrorBody, ErrorDetail

__all__ = ["CLIENT_CLOSED", "Rejected", "error_body", "http_error"]

_log = logging.getLogger("grounded_answer.serve")

#: nginx's status for "the client closed the connection"; logged, never read by anyone.
CLIENT_CLOSED = 499

# Most specific first: the first class that matches decides the status.
_STATUS: tuple[tuple[type[GroundedAnswerError], int], ...] = (
    (ServerBusyError, 429),
    (RunTimeoutError, 504),
    (RunCancelledError, CLIENT_CLOSED),
    (BackendConnectionError, 502),
    (BackendTimeoutError, 504),
    (BackendRateLimitError, 503),
    (BackendResponseError, 502),
    (UngroundedAnswerError, 502),
    (AnswerRunError, 500),
    (UserInputError, 422),
)


class Rejected(Exception):
    """A finished HTTP error on its way out of a handler (like Starlette's HTTPException).

    Not part of the library's hierarchy: it carries a response already decided from one
    of those exceptions, plus the request field at fault.
    """

    def __init__(self, status: int, body: ErrorBody, headers: dict[str, str]) -> None:
        self.status = status
        self.body = body
        self.headers = headers
        super().__init__(body.error.message)

    @classmethod
    def from_error(cls, exc: BaseException, *, field: str | None = None) -> Rejected:
        """The rejection that reports ``exc`` (see :func:`http_error`)."""
        return cls(*http_error(exc, field=field))


def http_error(
    exc: BaseException, *, field: str | None = None, during_run: bool = False
) -> tuple[int, ErrorBody, dict[str, str]]:
    """The status, body and headers that report ``exc``.

    Args:
        exc: What was raised.
        field: The request field being checked when it was raised, if the caller knows.
        during_run: ``exc`` came out of the answer run, where a ConfigError is the
            server's configuration (a 500), not the request's.

    """
    if not isinstance(exc, GroundedAnswerError):
        _log.error("unexpected error while answering", exc_info=exc)
        return (
            500,
            error_body(
                500, "InternalError", "runtime", "internal error; the server's log has the details"
            ),
            {},
        )
    if during_run and isinstance(exc, ConfigError):
        _log.error("server configuration error: %s", exc)
        return (
            500,
            error_body(500, "ConfigError", "runtime", f"the server is misconfigured: {exc}"),
            {},
        )
    status = next((code for cls, code in _STATUS if isinstance(exc, cls)), 500)
    headers: dict[str, str] = {}
    retry_after: int | None = None
    if isinstance(exc, ServerBusyError):
        retry_after = exc.retry_after
    elif isinstance(exc, BackendRateLimitError):
        retry_after = 5
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    if status >= 500:
        _log.warning("%s: %s", type(exc).__name__, exc)
    return (
        status,
        ErrorBody(
            error=ErrorDetail(
                type=type(exc).__name__,
                category="user_input" if isinstance(exc, UserInputError) else "runtime",
                message=defang(str(exc)),
                status=status,
                field=field or _field_of(exc),
                line=exc.line if isinstance(exc, SourceFileError) else None,
                retry_after=retry_after,
                request_id=_request_id(),
            )
        ),
        headers,
    )


def error_body(
    status: int,
    kind: str,
    category: str,
    message: str,
    *,
    field: str | None = None,
    retry_after: int | None = None,
) -> ErrorBody:
    """An error body built by hand (HTTP-level problems with no library exception)."""
    return ErrorBody(
        error=ErrorDetail(
            type=kind,
            category="user_input" if category == "user_input" else "runtime",
            message=defang(message),
            status=status,
            field=field,
            retry_after=retry_after,
            request_id=_request_id(),
        )
    )


def _request_id() -> str | None:
    info = _context.current()
    return None if info is None else info.request_id


def _field_of(exc: GroundedAnswerError) -> str | None:
    if isinstance(exc, QuestionError):
        return "question"
    if isinstance(exc, BundleParseError):
        return "bundle"
    if isinstance(exc, SourceFileError):
        return "corpus"
    return None

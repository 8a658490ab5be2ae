"""What the service knows about the request being handled, wherever it is handled.

One :class:`RequestInfo` per HTTP request, set by the outermost middleware in a context
variable, so the layers below (authentication, the answer run, the error bodies) can add
to it or read it without threading it through every call: the request id that error
bodies echo, the key id and queue wait that the request's log line reports.
"""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar, Token
from dataclasses import dataclass

__all__ = ["RequestInfo", "bind", "current", "request_id_from", "unbind"]

#: A client's X-Request-ID is kept if it is a short token of safe characters; else ours.
_SANE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")


@dataclass
class RequestInfo:
    """One request's facts for its log line and error bodies."""

    request_id: str
    endpoint: str
    key_id: str | None = None
    queue_wait: float | None = None


_CURRENT: ContextVar[RequestInfo | None] = ContextVar("grounded_answer_request", default=None)


def current() -> RequestInfo | None:
    """The request being handled in this context, if any."""
    return _CURRENT.get()


def bind(info: RequestInfo) -> Token[RequestInfo | None]:
    """Make ``info`` current; returns the token :func:`unbind` takes."""
    return _CURRENT.set(info)


def unbind(token: Token[RequestInfo | None]) -> None:
    """Restore the context from before :func:`bind`."""
    _CURRENT.reset(token)


def request_id_from(header: bytes | None) -> str:
    """The client's X-Request-ID if it is sane (1-128 of A-Z a-z 0-9 . _ : -), else a uuid4.

    A bounded, plain token can be logged and echoed without letting a client forge log
    lines or inflate them; anything else is replaced, not trimmed.
    """
    if header is not None:
        try:
            text = header.decode("ascii")
        except UnicodeDecodeError:
            text = ""
        if _SANE_ID.fullmatch(text):
            return text
    return uuid.uuid4().hex

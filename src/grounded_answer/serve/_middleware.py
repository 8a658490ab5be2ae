"""Small ASGI layers: request ids and log lines, a body limit, headers that lock the page.

All are plain ASGI (no ``BaseHTTPMiddleware``), so they neither buffer responses nor
break the event stream's disconnect detection.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

from . import _context
from ._errors import error_body

if TYPE_CHECKING:
    from ._metrics import Metrics

__all__ = [
    "ASGIApp",
    "BodyLimit",
    "Message",
    "Receive",
    "RequestContext",
    "Scope",
    "SecurityHeaders",
    "Send",
]

#: One JSON object per request, for the platform's log pipeline.
access_log = logging.getLogger("grounded_answer.serve.access")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: The page's policy: its own script and style, images it builds as data: URLs, requests
#: to its own origin only; no frames, plugins, forms elsewhere, or base-URL tricks.
PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


class RequestContext:
    """The outermost layer: a request id, one JSON log line and the request metrics.

    The id is the client's ``X-Request-ID`` when it is a sane token, else a new uuid4;
    it is echoed in the response header and in every error body (through
    :mod:`._context`). The log line names the key by its id, never the key, and is
    written when the response has ended: a stream's line comes at its end.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics | None = None) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        from ._metrics import endpoint_of

        header = next(
            (value for name, value in scope["headers"] if name.lower() == b"x-request-id"), None
        )
        info = _context.RequestInfo(
            request_id=_context.request_id_from(header), endpoint=endpoint_of(scope["path"])
        )
        token = _context.bind(info)
        started = time.perf_counter()
        status = 500  # what the client sees if the app fails before answering

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", info.request_id.encode()),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            if self.metrics is not None:
                self.metrics.observe_request(info.endpoint, scope["method"], status, seconds)
            access_log.info(
                json.dumps(
                    {
                        "event": "request",
                        "method": scope["method"],
                        "path": scope["path"][:256],
                        "status": status,
                        "seconds": round(seconds, 4),
                        "request_id": info.request_id,
                        "key_id": info.key_id,
                        "queue_wait": None
                        if info.queue_wait is None
                        else round(info.queue_wait, 4),
                    },
                    ensure_ascii=True,
                )
            )
            _context.unbind(token)


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes with 413, declared or streamed.

    A ``Content-Length`` over the limit is refused before a byte is read; a chunked body
    is counted as it arrives. Accepted bodies are replayed to the app unchanged, and
    later ``receive`` calls pass through (the stream watches them for a disconnect).
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(send, int(declared))
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._refuse(send, None)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send, declared: int | None) -> None:
        size = f"{declared} bytes" if declared is not None else "more"
        body = (
            error_body(
                413,
                "RequestTooLarge",
                "user_input",
                f"the request body has {size}; the limit is {self.limit} bytes "
                "(serve.max_body_bytes)",
                field="body",
            )
            .model_dump_json()
            .encode()
        )
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class SecurityHeaders:
    """Add a strict Content-Security-Policy and friends to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                for name, value in (
                    (b"content-security-policy", PAGE_POLICY.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"x-frame-options", b"DENY"),
                    (b"cross-origin-resource-policy", b"same-origin"),
                ):
                    if name not in names:
                        headers.append((name, value))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)

"""The API-key layer at the ASGI level: which scopes need a key, and how a refusal looks.

The HTTP side runs for real in tests/integration/test_serve_auth.py; the websocket side
is called here directly, since no websocket library is installed for a server to speak it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.types import Message, Receive, Scope, Send

from grounded_answer.serve._auth import ApiKeys, Auth

KEY = "alpha-key-0123456789"


class Inner:
    """The app behind the layer: records the scopes that reached it."""

    def __init__(self) -> None:
        self.reached: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.reached.append(scope["type"])


def call(scope: dict[str, Any], first: Message) -> tuple[list[str], list[Message]]:
    """Run ``scope`` through Auth (keys on); the scope types that got in, and what was sent."""
    inner = Inner()
    sent: list[Message] = []

    async def receive() -> Message:
        return first

    async def send(message: Message) -> None:
        sent.append(message)

    auth = Auth(inner, ApiKeys([KEY]), metrics_public=False)
    asyncio.run(auth(scope, receive, send))
    return inner.reached, sent


def websocket(path: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {"type": "websocket", "path": path, "headers": headers, "subprotocols": []}


def test_a_websocket_without_a_key_is_closed_before_its_handshake() -> None:
    connect: Message = {"type": "websocket.connect"}
    for path in ("/v1/explain", "/healthz", "/"):  # open paths are open to HTTP only
        for headers in ([], [(b"authorization", b"Bearer not-a-configured-key")]):
            reached, sent = call(websocket(path, headers), connect)
            assert reached == [], (path, headers)
            # A close before websocket.accept: the server refuses the upgrade with 403.
            assert [m["type"] for m in sent] == ["websocket.close"]
            assert sent[0]["code"] == 1008


def test_a_websocket_with_a_key_passes() -> None:
    scope = websocket("/v1/explain", [(b"authorization", f"Bearer {KEY}".encode())])
    reached, sent = call(scope, {"type": "websocket.connect"})
    assert reached == ["websocket"] and sent == []


def test_only_the_lifespan_passes_without_a_key() -> None:
    reached, sent = call({"type": "lifespan"}, {"type": "lifespan.startup"})
    assert reached == ["lifespan"] and sent == []
    http = {"type": "http", "method": "GET", "path": "/metrics", "headers": []}
    reached, sent = call(http, {"type": "http.request", "body": b""})
    assert reached == [] and sent[0]["status"] == 401

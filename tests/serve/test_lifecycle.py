"""The drain and the readiness gate, driven by events on one event loop (no server)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from grounded_answer.serve._lifecycle import Gate, Lifecycle, is_gated


class Recorder:
    """An ASGI ``send`` that keeps what was sent."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    async def __call__(self, message: Any) -> None:
        self.messages.append(message)

    @property
    def status(self) -> int:
        return int(self.messages[0]["status"])

    @property
    def body(self) -> Any:
        return json.loads(self.messages[1]["body"])


def scope(path: str) -> dict[str, Any]:
    return {"type": "http", "method": "POST", "path": path, "headers": []}


async def nothing() -> Any:
    return {"type": "http.disconnect"}


def test_only_the_api_is_gated() -> None:
    assert is_gated("/v1/explain") and is_gated("/v1/explain/stream") and is_gated("/x")
    for path in ("/healthz", "/readyz", "/metrics", "/", "/static/app.js", "/openapi.json"):
        assert not is_gated(path), path


def test_the_drain_waits_for_requests_in_flight_and_refuses_new_ones() -> None:
    async def scenario() -> None:
        lifecycle = Lifecycle(drain_timeout=60)
        lifecycle.ready()
        release = asyncio.Event()
        entered = asyncio.Event()

        async def app(where: Any, _receive: Any, send: Any) -> None:
            if where["path"] == "/v1/explain":  # an answer that takes until released
                entered.set()
                await release.wait()
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"{}"})

        gate = Gate(app, lifecycle)
        first = Recorder()
        in_flight = asyncio.ensure_future(gate(scope("/v1/explain"), nothing, first))
        await entered.wait()
        assert lifecycle.in_flight == 1
        drain = asyncio.ensure_future(lifecycle.drain())
        await asyncio.sleep(0)
        assert lifecycle.state == "draining" and not drain.done()
        refused = Recorder()
        await gate(scope("/v1/explain"), nothing, refused)
        assert refused.status == 503 and refused.body["error"]["type"] == "ServiceUnavailable"
        assert (b"retry-after", b"5") in refused.messages[0]["headers"]
        assert "shutting down" in refused.body["error"]["message"]
        probe = Recorder()
        await gate(scope("/readyz"), nothing, probe)  # probes pass the gate
        assert probe.status == 200
        release.set()
        await in_flight
        assert first.status == 200 and await drain is True and lifecycle.in_flight == 0

    asyncio.run(scenario())


def test_the_deadline_cancels_what_is_left() -> None:
    async def scenario() -> None:
        lifecycle = Lifecycle(drain_timeout=0)
        lifecycle.ready()
        cancelled: list[bool] = []
        lifecycle.on_deadline = lambda: cancelled.append(True)
        lifecycle.enter()  # a request that never ends
        assert await lifecycle.drain() is False and cancelled == [True]

    asyncio.run(scenario())


def test_starting_and_failed_refuse_with_the_reason() -> None:
    async def scenario() -> None:
        lifecycle = Lifecycle(drain_timeout=1)

        async def app(*_: Any) -> None:
            raise AssertionError("not ready: the app must not run")

        starting = Recorder()
        await Gate(app, lifecycle)(scope("/v1/explain"), nothing, starting)
        assert starting.status == 503 and "starting" in starting.body["error"]["message"]
        lifecycle.fail("CorpusError: bad.yaml:3: no such role")
        failed = Recorder()
        await Gate(app, lifecycle)(scope("/v1/explain"), nothing, failed)
        assert failed.body["error"]["retry_after"] == 60
        assert "CorpusError: bad.yaml:3" in failed.body["error"]["message"]
        lifecycle.ready()  # a failed process never becomes ready
        assert lifecycle.state == "failed"

    asyncio.run(scenario())

"""Start, readiness and the drain: when the service takes requests, and how it stops.

A server process goes ``starting`` (the encoder, the corpora and their indexes loading in
a background thread, while ``/healthz`` already answers) -> ``ready`` -> on SIGTERM
``draining`` -> exit; or ``starting`` -> ``failed`` if loading raised. ``/readyz`` is
200 only when ``ready``, so a load balancer sends traffic only to a process that can
answer and stops before the process goes away.

Draining keeps the listening socket open on purpose: the platform's probes and load
balancer still reach ``/readyz`` (503, ``draining``) and take the process out of
rotation, clients that send a new request get a clear 503 with ``Retry-After`` instead
of a refused connection, and the answers in flight finish. When none is left, or
``serve.drain_timeout`` has passed (the rest are then cancelled), the server is asked to
stop the way it would have stopped on the signal without us: uvicorn's own handler runs,
closes the socket and exits.

The SIGTERM hook is installed only when the app runs in the main thread of its process
(``grounded-answer serve``, ``uvicorn --factory``, each ``--workers`` process), wrapping
the server's own handler and putting it back at shutdown; a second SIGTERM, or SIGINT,
stops at once as before.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any, Literal

from ._errors import error_body
from ._middleware import ASGIApp, Receive, Scope, Send

__all__ = ["Gate", "Lifecycle", "State", "is_gated"]

_log = logging.getLogger("grounded_answer.serve")

State = Literal["starting", "ready", "draining", "failed"]

#: Paths the gate never refuses: probes and metrics must answer in every state; the page
#: and its files are static.
_ALWAYS = frozenset({"/healthz", "/readyz", "/metrics", "/", "/favicon.ico", "/openapi.json"})


def is_gated(path: str) -> bool:
    """True for the paths that do work (the API), which the gate admits only when ready."""
    return path not in _ALWAYS and not path.startswith("/static/")


class Lifecycle:
    """One process's state, its requests in flight, and its drain."""

    def __init__(self, drain_timeout: float) -> None:
        self.state: State = "starting"
        self.error: str | None = None
        self.drain_timeout = drain_timeout
        self.in_flight = 0  # gated requests being answered; touched on the event loop only
        self._idle = asyncio.Event()
        self._idle.set()
        self._previous: Any = None
        self._drain_task: asyncio.Task[None] | None = None
        self.on_deadline: Callable[[], None] = lambda: None

    def ready(self) -> None:
        """Loading finished: take requests (unless draining already)."""
        if self.state == "starting":
            self.state = "ready"

    def fail(self, message: str) -> None:
        """Loading failed: refuse work, say why on /readyz."""
        self.state = "failed"
        self.error = message

    def enter(self) -> None:
        """A gated request starts."""
        self.in_flight += 1
        self._idle.clear()

    def leave(self) -> None:
        """A gated request ended (its whole response sent, or its client gone)."""
        self.in_flight -= 1
        if self.in_flight <= 0:
            self.in_flight = 0
            self._idle.set()

    def begin_drain(self) -> None:
        """Refuse new work from now on; /readyz says draining."""
        if self.state != "draining":
            _log.info(
                "draining: %d request(s) in flight, up to %gs", self.in_flight, self.drain_timeout
            )
            self.state = "draining"

    async def drain(self) -> bool:
        """Drain, then wait for the requests in flight; False if the deadline cut them off."""
        self.begin_drain()
        started = time.monotonic()
        try:
            await asyncio.wait_for(self._idle.wait(), timeout=self.drain_timeout)
        except TimeoutError:
            _log.warning(
                "drain deadline (serve.drain_timeout %gs) passed with %d request(s) "
                "in flight; cancelling them",
                self.drain_timeout,
                self.in_flight,
            )
            self.on_deadline()
            return False
        _log.info("drained in %.2fs", time.monotonic() - started)
        return True

    # -- the SIGTERM hook ----------------------------------------------------------------

    def install(self) -> None:
        """Wrap the process's SIGTERM handler with the drain (main thread only)."""
        if threading.current_thread() is not threading.main_thread():
            return
        previous = signal.getsignal(signal.SIGTERM)
        if not callable(previous):
            return  # no server handler to hand over to: leave the default alone
        loop = asyncio.get_running_loop()
        self._previous = previous

        def on_term(signum: int, frame: FrameType | None) -> None:
            if self._drain_task is not None:  # a second SIGTERM: stop now
                previous(signum, frame)
                return
            loop.call_soon_threadsafe(self._start_drain, signum, previous)

        signal.signal(signal.SIGTERM, on_term)

    def uninstall(self) -> None:
        """Put the wrapped handler back (lifespan shutdown)."""
        if self._previous is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self._previous)
            self._previous = None

    def _start_drain(self, signum: int, previous: Callable[[int, FrameType | None], Any]) -> None:
        if self._drain_task is not None:
            return

        async def drain_then_stop() -> None:
            await self.drain()
            previous(signum, None)  # the server's own shutdown: close the socket, exit

        self._drain_task = asyncio.ensure_future(drain_then_stop())


class Gate:
    """Refuse API requests with 503 unless ready, and count those let in as in flight."""

    def __init__(self, app: ASGIApp, lifecycle: Lifecycle) -> None:
        self.app = app
        self.lifecycle = lifecycle

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_gated(scope["path"]):
            await self.app(scope, receive, send)
            return
        lifecycle = self.lifecycle
        if lifecycle.state != "ready":
            await self._refuse(send)
            return
        lifecycle.enter()
        try:
            await self.app(scope, receive, send)
        finally:
            lifecycle.leave()

    async def _refuse(self, send: Send) -> None:
        state = self.lifecycle.state
        retry_after = 5 if state != "failed" else 60
        message = {
            "starting": "the server is starting: its model and corpora are loading; retry shortly",
            "draining": "the server is shutting down and takes no new requests; retry (on "
            "another instance)",
            "failed": f"the server could not load its model or corpora: {self.lifecycle.error}",
        }.get(state, "the server is not ready")
        body = error_body(503, "ServiceUnavailable", "runtime", message, retry_after=retry_after)
        data = body.model_dump_json().encode()
        await send(
            {
                "type": "http.response.start",
                "status": 503,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(data)).encode()),
                    (b"retry-after", str(retry_after).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": data})

"""grounded-answer's HTTP service under uvicorn, for tests: 127.0.0.1, a free port, stopped.

    with ServeServer(create_app(settings, embedder=...)) as server:
        httpx.post(server.url + "/v1/explain", json={...})

uvicorn runs in a thread of the test process (so a test can hand the app a fast
embedder) on a socket bound here to 127.0.0.1:0, and ``stop()`` asks it to exit and joins
it, so no server outlives its test. The app loads its model and corpora in the background
once it starts; ``start()`` waits for ``/readyz`` to say so (``wait_ready=False`` to see
the server while it is still starting).
"""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType
from typing import Any

import httpx
import uvicorn

__all__ = ["ServeServer"]


class ServeServer:
    """One uvicorn server for one app; a context manager that always stops it."""

    def __init__(self, app: Any, *, wait_ready: bool = True) -> None:
        self.app = app
        self.wait_ready = wait_ready
        self._socket: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        assert self._socket is not None, "the server is not running"
        return int(self._socket.getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServeServer:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self._socket = sock
        config = uvicorn.Config(self.app, log_level="warning", lifespan="on",
                                timeout_graceful_shutdown=5)
        server = uvicorn.Server(config)
        self._server = server
        self._thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]},
                                        name="serve-under-test", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        while self.wait_ready:
            state = httpx.get(self.url + "/readyz").json()["state"]
            if state == "ready":
                break
            if state == "failed" or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the app did not get ready: {state}")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=15)
            assert not self._thread.is_alive(), "uvicorn did not stop"
            self._thread = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def __enter__(self) -> ServeServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

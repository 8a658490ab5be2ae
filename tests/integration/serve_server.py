"""grounded-answer's HTTP service under uvicorn, for tests: 127.0.0.1, a free port, stopped.

    with ServeServer(create_app(settings, embedder=...)) as server:
        httpx.post(server.url + "/v1/explain", json={...})

uvicorn runs in a thread of the test process (so a test can hand the app a fast
embedder) on a socket bound here to 127.0.0.1:0, and ``stop()`` asks it to exit and joins
it, so no server outlives its test. The app loads its model and corpora in the background
once it starts; ``start()`` waits for ``/readyz`` to say so (``wait_ready=False`` to see
the server while it is still starting). :class:`ServeProcess` runs the real command
(``grounded-answer serve``, its workers, signals) as a child process.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import uvicorn

__all__ = ["ServeProcess", "ServeServer"]


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
        config = uvicorn.Config(
            self.app, log_level="warning", lifespan="on", timeout_graceful_shutdown=5
        )
        server = uvicorn.Server(config)
        self._server = server
        self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="serve-under-test", daemon=True
        )
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


class ServeProcess:
    """``grounded-answer serve`` as a child process on 127.0.0.1; always stopped.

    Output goes to files in ``folder`` (``serve.out``: the JSON access lines, ``serve.err``:
    the rest), not pipes, so a chatty server never blocks on a full pipe. ``stop()`` sends
    SIGTERM and waits; a server still running after ``timeout`` is killed, with its whole
    process group (the workers), so nothing outlives the test.
    """

    def __init__(self, folder: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.folder = folder
        self.args = args
        self.env = {**os.environ, **(env or {})}
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 180) -> ServeProcess:
        self.folder.mkdir(parents=True, exist_ok=True)
        with (
            (self.folder / "serve.out").open("wb") as out,
            (self.folder / "serve.err").open("wb") as err,
        ):
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "grounded_answer.cli",
                    "serve",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    *self.args,
                ],
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                env=self.env,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"serve exited {self.process.returncode}: {self.stderr}")
            try:
                if httpx.get(self.url + "/readyz").status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"serve did not get ready: {self.stderr}")
            time.sleep(0.1)

    @property
    def stderr(self) -> str:
        return (self.folder / "serve.err").read_text(errors="replace")

    @property
    def stdout(self) -> str:
        return (self.folder / "serve.out").read_text(errors="replace")

    def terminate(self) -> None:
        """SIGTERM to the server (its parent process), as an orchestrator sends it."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)

    def stop(self, timeout: float = 60) -> int:
        """Stop (SIGTERM, then SIGKILL to the group after ``timeout``); the exit status."""
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        with contextlib.suppress(ProcessLookupError):  # workers left behind: none allowed
            os.killpg(self.process.pid, signal.SIGKILL)
        return int(self.process.returncode)

    def __enter__(self) -> ServeProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])

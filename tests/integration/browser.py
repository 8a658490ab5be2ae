"""Debian's headless Chromium, driven over the DevTools protocol on a pipe, for page tests.

No browser is downloaded and no driver library is needed: ``--remote-debugging-pipe``
makes Chromium read protocol commands on fd 3 and write replies and events on fd 4, as
NUL-terminated JSON. The browser starts with a fresh profile and with its own background
traffic off (updates, sync, safe browsing), and every request a page makes is recorded
from the Network domain, so a test can assert that nothing left 127.0.0.1. As a safety
net, host names other than 127.0.0.1 do not resolve.

    with Browser() as browser:
        page = browser.new_page()
        page.goto(url)
        page.evaluate("document.title")
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = ["Browser", "BrowserError", "Page", "find_chromium"]

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-default-apps",
    "--disable-extensions",
    "--safebrowsing-disable-auto-update",
    "--metrics-recording-only",
    "--mute-audio",
    "--disable-features=Translate,OptimizationHints,MediaRouter",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--remote-debugging-pipe",
]


_TRAMPOLINE = (
    "import fcntl, os, sys\n"
    # Move both ends above 9 first, so neither lands on the other's target.
    "read, write = (fcntl.fcntl(int(fd), fcntl.F_DUPFD, 10) for fd in sys.argv[1:3])\n"
    "os.dup2(read, 3)\n"
    "os.dup2(write, 4)\n"
    "os.set_inheritable(3, True)\n"
    "os.set_inheritable(4, True)\n"
    "os.execv(sys.argv[3], sys.argv[3:])\n"
)


class BrowserError(RuntimeError):
    """The browser failed, or a protocol command returned an error."""


def find_chromium() -> str | None:
    """The Chromium executable: $CHROMIUM, else chromium or chromium-browser on PATH."""
    return (
        os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    )


class Browser:
    """One headless Chromium process; a context manager that always ends it."""

    def __init__(
        self, executable: str | None = None, *, width: int = 1000, height: int = 1400
    ) -> None:
        found = executable or find_chromium()
        if not found:
            raise BrowserError("chromium is not installed (apt-get install chromium)")
        self.executable = found
        self.size = (width, height)
        self._profile = tempfile.TemporaryDirectory(prefix="ga-chromium-")
        self._process: subprocess.Popen[bytes] | None = None
        self._commands: int | None = None
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._replies: dict[int, dict[str, Any]] = {}
        self._events: list[dict[str, Any]] = []
        self._next_id = 0
        self._closed = False
        self._reader: threading.Thread | None = None

    def start(self) -> Browser:
        to_browser_read, to_browser_write = os.pipe()
        from_browser_read, from_browser_write = os.pipe()
        log = Path(self._profile.name) / "chromium.log"
        args = [
            *FLAGS,
            f"--user-data-dir={self._profile.name}",
            f"--window-size={self.size[0]},{self.size[1]}",
            "about:blank",
        ]
        # A tiny Python trampoline puts our pipe ends on fds 3 and 4, where Chromium expects
        # them (dash cannot redirect fds above 9, and the test runner holds the low ones).
        with log.open("wb") as stderr:
            self._process = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    _TRAMPOLINE,
                    str(to_browser_read),
                    str(from_browser_write),
                    self.executable,
                    *args,
                ],
                pass_fds=(to_browser_read, from_browser_write),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
        os.close(to_browser_read)
        os.close(from_browser_write)
        self._commands = to_browser_write
        self._reader = threading.Thread(
            target=self._read, args=(from_browser_read,), name="chromium-pipe", daemon=True
        )
        self._reader.start()
        try:
            self.send("Browser.getVersion")
        except BrowserError as exc:
            tail = log.read_text(errors="replace")[-2000:]
            self.close()
            raise BrowserError(
                f"{self.executable} did not start ({exc}); its log:\n{tail}"
            ) from None
        return self

    def close(self) -> None:
        if self._process is not None and self._process.poll() is None:
            with contextlib.suppress(BrowserError):  # it may be exiting already
                self.send("Browser.close", timeout=5)
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=10)
        if self._commands is not None:
            os.close(self._commands)
            self._commands = None
        if self._reader is not None:
            self._reader.join(timeout=5)
        self._profile.cleanup()

    def __enter__(self) -> Browser:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- the protocol -------------------------------------------------------------------------

    def send(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        session: str | None = None,
        timeout: float = 30.0,
    ) -> dict[str, Any]:
        """Send one command and wait for its reply; raises BrowserError on a protocol error."""
        assert self._commands is not None, "the browser is not running"
        with self._lock:
            self._next_id += 1
            number = self._next_id
        message: dict[str, Any] = {"id": number, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        with self._changed:
            if not self._changed.wait_for(lambda: number in self._replies or self._closed, timeout):
                raise BrowserError(f"{method}: no reply within {timeout}s")
            if number not in self._replies:
                raise BrowserError(f"{method}: the browser exited")
            reply = self._replies.pop(number)
        if "error" in reply:
            raise BrowserError(f"{method}: {reply['error']}")
        result: dict[str, Any] = reply.get("result", {})
        return result

    def events(self, method: str, session: str | None = None) -> list[dict[str, Any]]:
        """The params of every event ``method`` received so far (for ``session``)."""
        with self._lock:
            return [
                event.get("params", {})
                for event in self._events
                if event["method"] == method
                and (session is None or event.get("sessionId") == session)
            ]

    def wait_event(
        self, method: str, session: str | None = None, timeout: float = 30.0
    ) -> dict[str, Any]:
        """Wait for the first event ``method`` not yet waited for."""
        with self._changed:

            def found() -> dict[str, Any] | None:
                for event in self._events:
                    if (
                        event["method"] == method
                        and not event.get("_seen")
                        and (session is None or event.get("sessionId") == session)
                    ):
                        return event
                return None

            if not self._changed.wait_for(lambda: found() is not None or self._closed, timeout):
                raise BrowserError(f"no {method} event within {timeout}s")
            event = found()
            if event is None:
                raise BrowserError(f"the browser exited before {method}")
            event["_seen"] = True
            params: dict[str, Any] = event.get("params", {})
            return params

    def new_page(self) -> Page:
        """A fresh tab, attached, with its network recorded."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        page = Page(self, session)
        for domain in ("Page", "Network", "Runtime"):
            self.send(f"{domain}.enable", session=session)
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {
                "width": self.size[0],
                "height": self.size[1],
                "deviceScaleFactor": 1,
                "mobile": False,
            },
            session=session,
        )
        return page

    def _read(self, fd: int) -> None:
        buffer = b""
        with os.fdopen(fd, "rb", buffering=0) as stream:
            while True:
                chunk = stream.read(1 << 16)
                if not chunk:
                    break
                buffer += chunk
                *messages, buffer = buffer.split(b"\0")
                with self._changed:
                    for raw in messages:
                        message = json.loads(raw)
                        if "id" in message:
                            self._replies[message["id"]] = message
                        else:
                            self._events.append(message)
                    self._changed.notify_all()
        with self._changed:
            self._closed = True
            self._changed.notify_all()


class Page:
    """One tab: navigate, evaluate script, read requests, take a screenshot."""

    def __init__(self, browser: Browser, session: str) -> None:
        self.browser = browser
        self.session = session

    def goto(self, url: str, timeout: float = 30.0) -> None:
        self.browser.send("Page.navigate", {"url": url}, session=self.session)
        self.browser.wait_event("Page.loadEventFired", self.session, timeout)

    def evaluate(self, expression: str, *, timeout: float = 30.0) -> Any:
        """The JSON value of ``expression`` (awaited if it is a promise)."""
        reply = self.browser.send(
            "Runtime.evaluate",
            {
                "expression": expression,
                "awaitPromise": True,
                "returnByValue": True,
            },
            session=self.session,
            timeout=timeout,
        )
        if "exceptionDetails" in reply:
            raise BrowserError(f"script failed: {reply['exceptionDetails']}")
        return reply["result"].get("value")

    def wait_for(self, condition: str, timeout: float = 30.0) -> None:
        """Wait until the JavaScript ``condition`` is true in the page."""
        ok = self.evaluate(
            "new Promise((resolve) => { const t0 = Date.now(); const check = () => {"
            f" if ({condition}) resolve(true);"
            f" else if (Date.now() - t0 > {int(timeout * 1000)}) resolve(false);"
            " else setTimeout(check, 25); }; check(); })",
            timeout=timeout + 5,
        )
        if not ok:
            raise BrowserError(f"timed out waiting for: {condition}")

    def requests(self) -> list[str]:
        """Every URL this page requested (documents, scripts, fetches, images...)."""
        return [
            event["request"]["url"]
            for event in self.browser.events("Network.requestWillBeSent", self.session)
        ]

    def screenshot(self, path: Path) -> None:
        """A PNG of the whole page, not just the window."""
        metrics = self.browser.send("Page.getLayoutMetrics", session=self.session)
        height = int(metrics["cssContentSize"]["height"]) + 1
        self.browser.send(
            "Emulation.setDeviceMetricsOverride",
            {
                "width": self.browser.size[0],
                "height": height,
                "deviceScaleFactor": 1,
                "mobile": False,
            },
            session=self.session,
        )
        data = self.browser.send("Page.captureScreenshot", {"format": "png"}, session=self.session)[
            "data"
        ]
        path.write_bytes(base64.b64decode(data))

"""A scripted, fault-injecting OpenAI chat-completions server for integration tests.

It speaks just enough of ``POST /v1/chat/completions`` for the real ``openai`` client: each
request consumes the next behaviour of a script (then a default), and every request body
is recorded so tests can check what the backend sent (the schema, the repair errors).

    with ChatServer([status(500), ok(answer)]) as server:
        OpenAIBackend(LLMSettings(base_url=server.url, ...)).complete(request)
        assert len(server.requests) == 2

The server binds 127.0.0.1 on a free port, runs in a daemon thread, answers HTTP/1.0 (one
request per connection, so shutting down never waits on an idle keep-alive socket), and
``stop()`` always returns promptly: a ``slow`` reply sleeps on an event that ``stop()``
sets, and its sleep is capped anyway. While it sleeps it watches its connection: a client
that hangs up (a cancelled call) ends the sleep and is counted in ``hangups``, so tests can
tell an aborted request from one that was merely abandoned.
"""

from __future__ import annotations

import json
import math
import select
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

__all__ = [
    "Behaviour",
    "ChatServer",
    "Reply",
    "answer_with",
    "chat_completion",
    "empty_choices",
    "judge_with",
    "malformed",
    "ok",
    "rate_limit",
    "reading_model",
    "refuse_schema",
    "refused_url",
    "slow",
    "status",
    "truncated",
]

#: Longest a ``slow`` reply ever sleeps, whatever it was asked for.
MAX_SLEEP = 5.0


@dataclass(frozen=True)
class Reply:
    """One HTTP response: status, body, headers, and a delay before the headers go out."""

    status: int = 200
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0


#: A script entry: the request body (parsed JSON, or None) -> the reply to send.
Behaviour = Callable[[Any], Reply]


def chat_completion(
    content: str | None, finish_reason: str = "stop", *, model: str = "test-model"
) -> dict[str, Any]:
    """A chat-completion response body as the OpenAI API returns it."""
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None},
                "finish_reason": finish_reason,
                "logprobs": None,
            }
        ],
        "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
    }


def _json(status_code: int, data: Any, headers: Mapping[str, str] | None = None) -> Reply:
    return Reply(
        status=status_code,
        body=json.dumps(data).encode(),
        headers={"Content-Type": "application/json", **(headers or {})},
    )


def ok(content: str, finish_reason: str = "stop") -> Behaviour:
    """200 with one choice whose message is ``content``."""
    return lambda _body: _json(200, chat_completion(content, finish_reason))


def truncated(content: str) -> Behaviour:
    """200, but cut off at max_tokens (``finish_reason="length"``)."""
    return ok(content, finish_reason="length")


def status(code: int, body: Any = None, headers: Mapping[str, str] | None = None) -> Behaviour:
    """An HTTP error with an OpenAI-style error body (or ``body`` as given)."""
    if body is None:
        body = {
            "error": {
                "message": f"scripted HTTP {code}",
                "type": "server_error",
                "param": None,
                "code": None,
            }
        }
    return lambda _body: _json(code, body, headers)


def rate_limit(retry_after: str | None = "1", *, retry_after_ms: str | None = None) -> Behaviour:
    """429, with ``Retry-After`` (seconds or an HTTP date) and/or ``retry-after-ms``."""
    headers = {}
    if retry_after is not None:
        headers["Retry-After"] = retry_after
    if retry_after_ms is not None:
        headers["retry-after-ms"] = retry_after_ms
    body = {
        "error": {
            "message": "Rate limit reached",
            "type": "requests",
            "param": None,
            "code": "rate_limit_exceeded",
        }
    }
    return status(429, body, headers)


def refuse_schema() -> Behaviour:
    """400 as a server without structured-output support says it (llama.cpp, old vLLM)."""
    body = {
        "error": {
            "message": "response_format type 'json_schema' is not supported",
            "type": "invalid_request_error",
            "param": "response_format",
            "code": None,
        }
    }
    return status(400, body)


def slow(seconds: float, then: Behaviour | None = None) -> Behaviour:
    """Wait ``seconds`` (capped at MAX_SLEEP, cut short by stop()) before answering."""
    inner = then or ok("{}")

    def behave(body: Any) -> Reply:
        reply = inner(body)
        return Reply(reply.status, reply.body, reply.headers, min(seconds, MAX_SLEEP))

    return behave


def malformed(content_type: str = "application/json") -> Behaviour:
    """200 whose body is not JSON at all, under the given Content-Type."""
    return lambda _body: Reply(200, b"<html>upstream proxy error{", {"Content-Type": content_type})


def empty_choices() -> Behaviour:
    """200 with a well-formed body and an empty ``choices`` list."""

    def behave(_body: Any) -> Reply:
        data = chat_completion("unused")
        data["choices"] = []
        return _json(200, data)

    return behave


def answer_with(make: Callable[[Any], str], finish_reason: str = "stop") -> Behaviour:
    """200 whose content is computed from the request body (dynamic answers)."""
    return lambda body: _json(200, chat_completion(make(body), finish_reason))


def judge_with(score_of: Callable[[Any], float | None], *, logprobs: bool = True) -> Behaviour:
    """A one-token yes/no judge: ``score_of(body)`` is P(yes) (None: an unusable reply).

    With ``logprobs`` the reply carries the first token's alternatives, as llama.cpp's
    server sends them; without, only the word, as an API without logprobs would.
    """

    def behave(body: Any) -> Reply:
        score = score_of(body)
        if score is None:
            data = chat_completion("Maybe", "length")
        else:
            data = chat_completion("Yes" if score >= 0.5 else "No", "length")
            if logprobs and body.get("logprobs"):
                yes, no = max(score, 1e-6), max(1.0 - score, 1e-6)
                alternatives = [
                    {"token": "Yes", "logprob": math.log(yes), "bytes": None},
                    {"token": "No", "logprob": math.log(no), "bytes": None},
                    {"token": " yes", "logprob": math.log(yes) - 9, "bytes": None},
                ]
                data["choices"][0]["logprobs"] = {
                    "content": [
                        {
                            "token": "Yes" if score >= 0.5 else "No",
                            "logprob": math.log(max(yes, no)),
                            "bytes": None,
                            "top_logprobs": alternatives,
                        }
                    ]
                }
        return _json(200, data)

    return behave


def reading_model(
    coverage: float = 0.97,
    paper: float = 0.6,
    task: str = "Photo deblurring",
    statement: str = "Image deblurring: the recommended model removes blur.",
) -> Behaviour:
    """A model that judges (P(yes): ``coverage``, else ``paper``), names the task, writes."""
    judge = judge_with(
        lambda body: coverage if "Paper:" not in body["messages"][-1]["content"] else paper
    )
    named = answer_with(lambda _: task)
    prose = answer_with(lambda _: json.dumps({"task": statement}))

    def behave(body: Any) -> Reply:
        if body.get("max_tokens") == 1:
            return judge(body)
        if "Name the task" in body["messages"][-1]["content"]:
            return named(body)
        return prose(body)

    return behave


def _as_stream(reply: Reply, size: int = 7) -> Reply:
    """A 200 chat completion re-sent as server-sent chunks of ``size`` characters."""
    data = json.loads(reply.body)
    choice = data["choices"][0]
    text = choice["message"]["content"] or ""
    chunks = [text[i : i + size] for i in range(0, len(text), size)] or [""]
    events = []
    for n, piece in enumerate(chunks):
        last = n == len(chunks) - 1
        events.append(
            {
                "id": data["id"],
                "object": "chat.completion.chunk",
                "created": data["created"],
                "model": data["model"],
                "choices": [
                    {
                        "index": 0,
                        "delta": {"content": piece},
                        "finish_reason": choice["finish_reason"] if last else None,
                    }
                ],
            }
        )
    events.append(
        {
            "id": data["id"],
            "object": "chat.completion.chunk",
            "created": data["created"],
            "model": data["model"],
            "choices": [],
            "usage": data["usage"],
        }
    )
    body = "".join(f"data: {json.dumps(event)}\n\n" for event in events) + "data: [DONE]\n\n"
    return Reply(200, body.encode(), {"Content-Type": "text/event-stream"}, reply.delay)


def _as_behaviour(entry: Behaviour | str) -> Behaviour:
    # A plain string is shorthand for ok(string).
    return ok(entry) if isinstance(entry, str) else entry


class ChatServer:
    """The scripted server; a context manager that always stops what it started."""

    def __init__(
        self,
        script: Iterable[Behaviour | str] = (),
        *,
        default: Behaviour | str | None = None,
    ) -> None:
        self.script = [_as_behaviour(entry) for entry in script]
        self.default = (
            _as_behaviour(default)
            if default is not None
            else status(
                500,
                {
                    "error": {
                        "message": "script exhausted",
                        "type": "test",
                        "param": None,
                        "code": None,
                    }
                },
            )
        )
        self.requests: list[Any] = []
        self.paths: list[str] = []
        self.headers: list[dict[str, str]] = []
        self.times: list[float] = []
        self.hangups = 0
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> ChatServer:
        """Bind 127.0.0.1 on a free port and serve in a daemon thread."""
        handler = _handler_for(self)
        httpd = _QuietServer(("127.0.0.1", 0), handler)
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="chat-server",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, wake any sleeping handler, close the socket; idempotent."""
        self._stopping.set()
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()  # joins handler threads; they wake on _stopping
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> ChatServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- what tests use --------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("the server is not running")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """The ``base_url`` for the openai client."""
        return f"http://127.0.0.1:{self.port}/v1"

    def push(self, *entries: Behaviour | str) -> None:
        """Append behaviours to the script."""
        with self._lock:
            self.script.extend(_as_behaviour(entry) for entry in entries)

    def wait_until(self, predicate: Callable[[ChatServer], bool], timeout: float = 10.0) -> bool:
        """Block until ``predicate(self)`` holds (re-checked on each request and hang-up)."""
        with self._changed:
            return self._changed.wait_for(lambda: predicate(self), timeout)

    def user_messages(self, index: int) -> list[str]:
        """The user messages' text of request ``index``."""
        body = self.requests[index]
        return [m["content"] for m in body["messages"] if m.get("role") == "user"]

    # -- serving ---------------------------------------------------------------------------

    def _next(self, path: str, headers: dict[str, str], raw: bytes) -> Reply:
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = None
        with self._lock:
            self.requests.append(body)
            self.paths.append(path)
            self.headers.append(headers)
            self.times.append(time.monotonic())
            behave = self.script.pop(0) if self.script else self.default
            self._changed.notify_all()
        reply = behave(body)
        if (
            isinstance(body, dict)
            and body.get("stream")
            and reply.status == 200
            and reply.headers.get("Content-Type") == "application/json"
        ):
            return _as_stream(reply)
        return reply

    def _sleep(self, seconds: float, connection: socket.socket) -> bool:
        """Sleep, cut short by stop() or by the client hanging up; False on a hang-up."""
        deadline = time.monotonic() + min(seconds, MAX_SLEEP)
        while not self._stopping.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return True
            readable, _, _ = select.select([connection], [], [], min(left, 0.02))
            if readable and _closed(connection):
                with self._changed:
                    self.hangups += 1
                    self._changed.notify_all()
                return False
        return True


class _QuietServer(ThreadingHTTPServer):
    # Handler threads are not daemons, so server_close() joins them and no thread outlives
    # the test; they end quickly because stop() wakes any slow reply first.
    daemon_threads = False
    block_on_close = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # The client hanging up on a slow reply is the point of that test, not a failure.
        pass


def _handler_for(server: ChatServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if self.path.rstrip("/") != "/v1/chat/completions":
                self._send(
                    Reply(
                        404,
                        b'{"error": {"message": "not found"}}',
                        {"Content-Type": "application/json"},
                    )
                )
                return
            headers = {k.lower(): v for k, v in self.headers.items()}
            reply = server._next(self.path, headers, raw)
            if reply.delay and not server._sleep(reply.delay, self.connection):
                return
            self._send(reply)

        def _send(self, reply: Reply) -> None:
            try:
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(reply.body)
            except OSError:
                pass  # the client gave up (timeout) and closed the connection

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output clean

    return Handler


def _closed(connection: socket.socket) -> bool:
    # The request was read whole, so a readable socket means EOF or a reset: a hang-up.
    try:
        return connection.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


def refused_url() -> str:
    """A ``base_url`` on which nothing listens: a port that was bound, then closed."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"

"""The HTTP service for real: uvicorn on 127.0.0.1, requests through httpx.

Behind the service runs the real pipeline. The backend is the offline stub, or the real
``openai`` client talking to the fault-injecting chat server (``chat_server.py``) when a
test needs an LLM call that is slow, failing or unreachable; that server also tells
whether a cancelled call really hung up its connection.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from grounded_answer import Answer, Settings, load_settings
from grounded_answer.grounding.links import find_links, link_key
from grounded_answer.serve import create_app
from grounded_answer.serve._app import _STREAM_DOC, sections

from ..support.drafts import GOOD
from ..support.fakes import HashEmbedder
from ..support.paths import SEED
from .chat_server import ChatServer, ok, rate_limit, reading_model, refused_url, slow, status
from .serve_server import ServeServer

pytestmark = pytest.mark.integration

SEED_TEXT = SEED.read_text(encoding="utf-8")


def serve_settings(tmp_path: Path, *, llm: dict[str, Any] | None = None, **serve: Any) -> Settings:
    # 'free': the scripted server answers the whole draft in one call (GOOD), as in
    # test_openai_backend; guided writing would ask for slots instead.
    return load_settings(
        index={"cache_dir": str(tmp_path / "cache")},
        llm=llm or {},
        answer={"mode": "free"},
        serve=serve,
        judge={"enabled": "off"},
    )


def openai_llm(url: str, **extra: Any) -> dict[str, Any]:
    return {
        "backend": "openai",
        "base_url": url,
        "api_key": "test",
        "model": "test-model",
        "timeout": 30.0,
        "max_retries": 0,
        **extra,
    }


@pytest.fixture
def embedder() -> HashEmbedder:
    return HashEmbedder()


@pytest.fixture
def stub(tmp_path: Path, embedder: HashEmbedder) -> Iterator[ServeServer]:
    """The service with the stub backend; stopped after the test."""
    with ServeServer(create_app(serve_settings(tmp_path), embedder=embedder)) as server:
        yield server


@pytest.fixture
def chat() -> Iterator[ChatServer]:
    with ChatServer() as server:
        yield server


def events(response: httpx.Response) -> Iterator[tuple[str, Any]]:
    """Server-sent events, one (name, parsed data) at a time, as they arrive.

    Keep a reference while the stream should stay open: a dropped generator is closed,
    and httpx closes the connection with it.
    """
    name, data = "message", list[str]()
    for line in response.iter_lines():
        if line == "":
            if data:
                yield name, json.loads("\n".join(data))
            name, data = "message", []
        elif line.startswith(":"):
            continue
        elif line.startswith("event:"):
            name = line.split(":", 1)[1].strip()
        elif line.startswith("data:"):
            data.append(line.split(":", 1)[1].removeprefix(" "))


def wait_for(check: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    """Poll ``check`` until it holds (a condition to reach, not a duration to assert)."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def health(server: ServeServer) -> dict[str, Any]:
    result: dict[str, Any] = httpx.get(server.url + "/healthz").json()
    return result


def idle(server: ServeServer) -> bool:
    numbers = health(server)
    return bool(numbers["running"] == 0 and numbers["waiting"] == 0)


# -- answers -----------------------------------------------------------------------------


def test_healthz_reports_the_loaded_model_and_the_limits(stub: ServeServer) -> None:
    numbers = health(stub)
    assert numbers["status"] == "ok" and numbers["embedding_model"] == "test/hash-embedder"
    assert numbers["backend"] == "stub" and numbers["backends"] == ["stub"]
    assert numbers["corpora"] == ["default"]
    assert (numbers["running"], numbers["waiting"]) == (0, 0)
    assert (numbers["max_concurrent"], numbers["max_queue"]) == (4, 16)


def test_explain_answers_the_seed_bundle_with_its_own_links_only(stub: ServeServer) -> None:
    response = httpx.post(stub.url + "/v1/explain", json={"bundle": SEED_TEXT}, timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    data = response.json()
    answer = Answer.model_validate(data)  # the Answer's own validator runs again here
    assert answer.answerable and answer.workflow and answer.references
    assert data["workflow"]["graph"]["nodes"][0]["id"] == "input"
    assert answer.provenance.corpus == "bundle"
    bundle_links = {link_key(found.text) for found in find_links(SEED_TEXT)}
    for found in find_links(response.text):
        assert found.key in bundle_links, found.text


def test_a_question_over_a_configured_corpus(tmp_path: Path, embedder: HashEmbedder) -> None:
    corpus = tmp_path / "speech.yaml"
    corpus.write_text(
        "name: speech\nquestion: How can I transcribe a meeting recording?\nsources:\n"
        "  - id: whisper\n    role: model\n    title: Whisper large-v3\n"
        "    github_url: https://github.com/openai/whisper\n"
        "    summary: Robust speech recognition that transcribes audio recordings into text.\n",
        encoding="utf-8",
    )
    settings = serve_settings(tmp_path, corpora={"speech": str(corpus)})
    with ServeServer(create_app(settings, embedder=embedder)) as server:
        assert health(server)["corpora"] == ["default", "speech"]
        response = httpx.post(
            server.url + "/v1/explain",
            timeout=30,
            json={"question": "Turn my meeting recording into text", "corpus": "speech"},
        )
        assert response.status_code == 200, response.text
        answer = response.json()
        assert answer["provenance"]["corpus"] == "speech"
        assert [ref["url"] for ref in answer["references"]] == ["https://github.com/openai/whisper"]


def test_the_language_option_reaches_the_writer(
    tmp_path: Path, embedder: HashEmbedder, chat: ChatServer
) -> None:
    chat.push(GOOD, GOOD)
    settings = serve_settings(tmp_path, llm=openai_llm(chat.url))
    with ServeServer(create_app(settings, embedder=embedder)) as server:
        for language in ("fr", "ko"):
            response = httpx.post(
                server.url + "/v1/explain",
                timeout=30,
                json={"bundle": SEED_TEXT, "language": language},
            )
            assert response.status_code == 200, response.text
            assert response.json()["validation"]["language"] == language


def test_a_warm_server_reuses_its_embedder_and_index(
    stub: ServeServer, embedder: HashEmbedder
) -> None:
    first = httpx.post(stub.url + "/v1/explain", json={"bundle": SEED_TEXT}, timeout=30)
    calls = embedder.calls
    second = httpx.post(stub.url + "/v1/explain", json={"bundle": SEED_TEXT}, timeout=30)
    assert first.status_code == second.status_code == 200
    # Only the question was encoded the second time: the bundle's index was kept.
    assert embedder.calls == calls + 1
    assert first.json()["task"] == second.json()["task"]


# -- bad requests --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "field", "words"),
    [
        (b"{not json", "body", "not valid JSON"),
        (b"", "body", "empty"),
        (b"[1, 2]", "body", "body"),
        (b"{}", "body", "give 'bundle'"),
        (json.dumps({"bundle": SEED_TEXT, "corpus": "default"}).encode(), "body", "not both"),
        (json.dumps({"bundle": SEED_TEXT, "colour": "red"}).encode(), "colour", "Extra inputs"),
        (json.dumps({"bundle": 42}).encode(), "bundle", "valid string"),
        (json.dumps({"bundle": "no question in here\n"}).encode(), "bundle", "bundle:1:"),
        (json.dumps({"bundle": SEED_TEXT, "question": "   "}).encode(), "question", "empty"),
        (json.dumps({"question": "x" * 5000}).encode(), "question", "limit is 4000"),
        (
            json.dumps({"question": "Deblur?", "corpus": "../etc/passwd"}).encode(),
            "corpus",
            "no corpus named",
        ),
        (
            json.dumps({"bundle": SEED_TEXT, "backend": "openai"}).encode(),
            "backend",
            "not offered here",
        ),
        (
            json.dumps({"bundle": SEED_TEXT, "language": "Klingon"}).encode(),
            "language",
            "should match pattern",
        ),
    ],
)
@pytest.mark.parametrize("path", ["/v1/explain", "/v1/explain/stream"])
def test_bad_requests_are_422_naming_the_field(
    stub: ServeServer, path: str, content: bytes, field: str, words: str
) -> None:
    response = httpx.post(
        stub.url + path, content=content, headers={"content-type": "application/json"}, timeout=30
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert error["field"] == field and error["category"] == "user_input"
    assert words in error["message"]
    assert "Traceback" not in response.text and 'File "' not in response.text


def test_a_malformed_bundle_error_gives_its_line(stub: ServeServer) -> None:
    bundle = SEED_TEXT.split("### Recommended AI Models:")[0]
    error = httpx.post(stub.url + "/v1/explain", json={"bundle": bundle}).json()["error"]
    assert error["type"] == "BundleParseError" and isinstance(error["line"], int)


def test_an_oversized_body_is_413_declared_or_streamed(
    tmp_path: Path, embedder: HashEmbedder
) -> None:
    settings = serve_settings(tmp_path, max_body_bytes=16_384)
    body = json.dumps({"bundle": SEED_TEXT + "\n" + "x" * 40_000}).encode()
    with ServeServer(create_app(settings, embedder=embedder)) as server:
        declared = httpx.post(
            server.url + "/v1/explain", content=body, headers={"content-type": "application/json"}
        )
        assert declared.status_code == 413
        error = declared.json()["error"]
        assert error["field"] == "body" and "serve.max_body_bytes" in error["message"]
        assert f"has {len(body)} bytes" in error["message"]

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
            for start in range(0, len(body), 4096):
                yield body[start : start + 4096]

        streamed = httpx.post(
            server.url + "/v1/explain/stream",
            content=chunks(),
            headers={"content-type": "application/json"},
        )
        assert streamed.status_code == 413
        assert streamed.headers["content-security-policy"].startswith("default-src 'none'")
        # A body under the limit still works on the same server.
        fine = httpx.post(server.url + "/v1/explain", json={"bundle": SEED_TEXT}, timeout=30)
        assert fine.status_code == 200


# -- the event stream ------------------------------------------------------------------------


def test_the_stream_sends_each_validated_section_then_the_answer(stub: ServeServer) -> None:
    received: list[tuple[str, Any]] = []
    with httpx.stream(
        "POST", stub.url + "/v1/explain/stream", json={"bundle": SEED_TEXT}, timeout=30
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-store"
        for event in events(response):
            received.append(event)
    names = [name for name, _ in received]
    assert names[0] == "status" and received[0][1] == {"state": "running", "ahead": 0}
    answer = Answer.model_validate(received[-1][1])
    steps = answer.workflow.steps if answer.workflow else []
    assert answer.plan is not None
    assert names[1:] == (
        ["plan", "task"]
        + ["step"] * len(steps)
        + ["graph"]
        + ["reference"] * len(answer.references)
        + ["answer"]
    )
    assert received[1][1] == answer.plan.model_dump(mode="json")
    # Each section is exactly the validated answer's part: nothing provisional was sent.
    assert received[2][1] == answer.task.model_dump(mode="json")
    assert [data for name, data in received if name == "step"] == [
        step.model_dump(mode="json") for step in steps
    ]
    assert [data for name, data in received if name == "reference"] == [
        ref.model_dump(mode="json") for ref in answer.references
    ]
    graph = next(data for name, data in received if name == "graph")
    assert graph["svg"].startswith('<svg xmlns="http://www.w3.org/2000/svg"')
    assert graph["mermaid"].startswith("flowchart LR")


def test_without_a_plan_the_stream_starts_with_the_task(stub: ServeServer) -> None:
    data = httpx.post(stub.url + "/v1/explain", json={"bundle": SEED_TEXT}, timeout=30).json()
    answer = Answer.model_validate({**data, "plan": None})
    assert [name for name, _ in sections(answer)][:2] == ["task", "step"]


def test_a_quiet_stream_gets_keep_alive_comments(
    tmp_path: Path, embedder: HashEmbedder, chat: ChatServer
) -> None:
    chat.push(slow(1, then=ok(GOOD)))
    settings = serve_settings(tmp_path, llm=openai_llm(chat.url), heartbeat=0.1)
    with (
        ServeServer(create_app(settings, embedder=embedder)) as server,
        httpx.stream(
            "POST", server.url + "/v1/explain/stream", json={"bundle": SEED_TEXT}, timeout=30
        ) as response,
    ):
        lines = list(response.iter_lines())
    assert ": keep-alive" in lines
    assert lines.index(": keep-alive") < lines.index("event: task")
    assert "event: answer" in lines


def test_a_client_that_disconnects_mid_stream_cancels_the_llm_call(
    tmp_path: Path, embedder: HashEmbedder, chat: ChatServer
) -> None:
    chat.push(slow(5))
    settings = serve_settings(tmp_path, llm=openai_llm(chat.url))
    with ServeServer(create_app(settings, embedder=embedder)) as server:
        with httpx.stream(
            "POST", server.url + "/v1/explain/stream", json={"bundle": SEED_TEXT}, timeout=30
        ) as response:
            stream = events(response)
            assert next(stream) == ("status", {"state": "running", "ahead": 0})
            assert chat.wait_until(lambda s: len(s.requests) == 1)
            assert health(server)["running"] == 1
        # The response is closed: the service must abort the LLM request, not wait for it.
        assert chat.wait_until(lambda s: s.hangups == 1, timeout=4)
        wait_for(lambda: idle(server), "the slot to be given back", timeout=4)
        assert len(chat.requests) == 1  # and nothing was retried


def test_a_client_that_gives_up_on_explain_cancels_the_llm_call(
    tmp_path: Path, embedder: HashEmbedder, chat: ChatServer
) -> None:
    chat.push(slow(5))
    settings = serve_settings(tmp_path, llm=openai_llm(chat.url))
    with ServeServer(create_app(settings, embedder=embedder)) as server:
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(server.url + "/v1/explain", json={"bundle": SEED_TEXT}, timeout=0.5)
        assert chat.wait_until(lambda s: s.hangups == 1, timeout=4)
        wait_for(lambda: idle(server), "the slot to be given back", timeout=4)


def test_a_full_queue_is_429_and_frees_up(
    tmp_path: Path, embedder: HashEmbedder, chat: ChatServer
) -> None:
    chat.push(slow(5), slow(5))
    settings = serve_settings(tmp_path, llm=openai_llm(chat.url), max_concurrent=1, max_queue=1)
    with (
        ServeServer(create_app(settings, embedder=embedder)) as server,
        httpx.Client(timeout=30) as client,
    ):
        url = server.url + "/v1/explain/stream"
        with client.stream("POST", url, json={"bundle": SEED_TEXT}) as running:
            first = events(running)
            assert next(first)[1]["state"] == "running"
            assert chat.wait_until(lambda s: len(s.requests) == 1)
            with client.stream("POST", url, json={"bundle": SEED_TEXT}) as queued:
                second = events(queued)
                assert next(second) == ("status", {"state": "queued", "ahead": 0})
                assert (health(server)["running"], health(server)["waiting"]) == (1, 1)
                for path in ("/v1/explain", "/v1/explain/stream"):
                    refused = client.post(server.url + path, json={"bundle": SEED_TEXT})
                    assert refused.status_code == 429
                    assert refused.headers["retry-after"] == "2"
                    error = refused.json()["error"]
                    assert error["type"] == "ServerBusyError"
                    assert error["category"] == "runtime" and error["retry_after"] == 2
                    assert "serve.max_concurrent" in error["message"]
                assert len(chat.requests) == 1  # the queued one has not called the LLM
            # The queued client left before its turn: it must never reach the LLM.
            wait_for(lambda: health(server)["waiting"] == 0, "the queued run to go")
            assert len(chat.requests) == 1 and health(server)["running"] == 1
        assert chat.wait_until(lambda s: s.hangups == 1, timeout=4)
        wait_for(lambda: idle(server), "the runner to drain", timeout=4)
        assert len(chat.requests) == 1
        chat.push(GOOD)
        again = httpx.post(server.url + "/v1/explain", json={"bundle": SEED_TEXT}, timeout=30)
        assert again.status_code == 200, again.text


def test_the_deadline_is_504_and_aborts_the_llm_call(
    tmp_path: Path, embedder: HashEmbedder, chat: ChatServer
) -> None:
    chat.push(slow(5), slow(5))
    # Long enough for the pipeline to reach the LLM call on a loaded machine; the call
    # itself takes 5 s.
    settings = serve_settings(tmp_path, llm=openai_llm(chat.url), request_timeout=2.0)
    with ServeServer(create_app(settings, embedder=embedder)) as server:
        response = httpx.post(server.url + "/v1/explain", json={"bundle": SEED_TEXT}, timeout=30)
        assert response.status_code == 504
        assert response.json()["error"]["type"] == "RunTimeoutError"
        assert chat.wait_until(lambda s: s.hangups == 1, timeout=4)
        with httpx.stream(
            "POST", server.url + "/v1/explain/stream", json={"bundle": SEED_TEXT}, timeout=30
        ) as streamed:
            received = list(events(streamed))
        assert received[-1][0] == "error"
        assert received[-1][1]["error"]["status"] == 504
        # The plan was made before the LLM call; nothing the model wrote was sent.
        assert [name for name, _ in received] == ["status", "plan", "error"]
        assert chat.wait_until(lambda s: s.hangups == 2, timeout=4)


@pytest.mark.parametrize(
    ("script", "llm", "code", "kind"),
    [
        ([], {"base_url": "refused"}, 502, "BackendConnectionError"),
        ([status(500)], {}, 502, "BackendResponseError"),
        ([rate_limit("1")], {}, 503, "BackendRateLimitError"),
        ([slow(5)], {"timeout": 0.3}, 504, "BackendTimeoutError"),
    ],
)
def test_backend_failures_are_5xx_json_and_stream_errors(
    tmp_path: Path,
    embedder: HashEmbedder,
    chat: ChatServer,
    script: list[Any],
    llm: dict[str, Any],
    code: int,
    kind: str,
) -> None:
    base_url = refused_url() if llm.get("base_url") == "refused" else chat.url
    settings = serve_settings(
        tmp_path, llm=openai_llm(base_url, **{k: v for k, v in llm.items() if k != "base_url"})
    )
    # The same X-Request-ID for both requests: the error bodies echo it, and must be equal.
    same = {"X-Request-ID": f"failure-{code}"}
    with ServeServer(create_app(settings, embedder=embedder)) as server:
        chat.push(*script)
        response = httpx.post(
            server.url + "/v1/explain", json={"bundle": SEED_TEXT}, timeout=30, headers=same
        )
        assert response.status_code == code, response.text
        error = response.json()["error"]
        assert error["type"] == kind and error["category"] == "runtime"
        assert "Traceback" not in response.text
        if code == 503:
            assert response.headers["retry-after"] == "5"
        chat.push(*script)
        with httpx.stream(
            "POST",
            server.url + "/v1/explain/stream",
            json={"bundle": SEED_TEXT},
            timeout=30,
            headers=same,
        ) as streamed:
            assert streamed.status_code == 200  # the stream had started: the error is an event
            received = list(events(streamed))
        assert received[-1] == ("error", {"error": error})


class ExplodingEmbedder(HashEmbedder):
    """Fails, like a bug deep inside, on any text that mentions 'explode'."""

    def encode(self, texts: Any, **kwargs: Any) -> Any:
        if any("explode" in text for text in texts):
            raise RuntimeError("boom in /srv/secret/path.py")
        return super().encode(texts, **kwargs)


def test_an_unexpected_error_is_a_500_without_details(tmp_path: Path) -> None:
    app = create_app(serve_settings(tmp_path), embedder=ExplodingEmbedder())
    body = {"question": "Can AI sharpen and explode my photo?"}
    same = {"X-Request-ID": "unexpected-1"}  # echoed in both error bodies
    with ServeServer(app) as server:
        response = httpx.post(server.url + "/v1/explain", json=body, timeout=30, headers=same)
        assert response.status_code == 500
        error = response.json()["error"]
        assert error["type"] == "InternalError" and "boom" not in response.text
        with httpx.stream(
            "POST", server.url + "/v1/explain/stream", json=body, timeout=30, headers=same
        ) as streamed:
            received = list(events(streamed))
        assert received[-1] == ("error", {"error": error})
        assert idle(server)
        fine = httpx.post(server.url + "/v1/explain", json={"bundle": SEED_TEXT}, timeout=30)
        assert fine.status_code == 200


# -- the schema, the page, the command -----------------------------------------------------


def test_openapi_documents_the_endpoints_and_every_field_of_ours(stub: ServeServer) -> None:
    schema = httpx.get(stub.url + "/openapi.json").json()
    assert {"/v1/explain", "/v1/explain/stream", "/healthz"} <= set(schema["paths"])
    components = schema["components"]["schemas"]
    for name in ("ExplainRequest", "ErrorBody", "ErrorDetail", "Health"):
        for field, spec in components[name]["properties"].items():
            assert spec.get("description"), f"{name}.{field} has no description"
    explain = schema["paths"]["/v1/explain"]["post"]["responses"]
    assert {"200", "413", "422", "429", "502", "503", "504"} <= set(explain)
    assert "Answer" in components
    # The interactive docs pages fetch their scripts from a CDN: they are off.
    assert httpx.get(stub.url + "/docs").status_code == 404


def test_the_page_and_its_assets_are_local_and_locked_down(stub: ServeServer) -> None:
    page = httpx.get(stub.url + "/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "connect-src 'self'" in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    for asset in ("/static/app.js", "/static/style.css"):
        assert httpx.get(stub.url + asset).status_code == 200
    for text in (
        page.text,
        httpx.get(stub.url + "/static/app.js").text,
        httpx.get(stub.url + "/static/style.css").text,
    ):
        assert "http://" not in text and "https://" not in text and "//cdn" not in text
    assert "innerHTML" not in httpx.get(stub.url + "/static/app.js").text


def test_corpus_names_are_checked_in_the_settings(tmp_path: Path) -> None:
    from grounded_answer.errors import ConfigError

    with pytest.raises(ConfigError, match=r"serve\.corpora"):
        serve_settings(tmp_path, corpora={"../up": str(tmp_path / "c.yaml")})


def test_without_the_serve_extra_the_error_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from grounded_answer.errors import ConfigError

    monkeypatch.setitem(sys.modules, "fastapi", None)  # import fastapi -> ImportError
    monkeypatch.delitem(sys.modules, "grounded_answer.serve._app", raising=False)
    with pytest.raises(ConfigError, match=r"grounded-answer\[serve\]"):
        create_app(serve_settings(tmp_path))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.mark.slow
def test_the_serve_command_serves_and_stops_cleanly(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "GROUNDED_ANSWER_INDEX__CACHE_DIR": str(tmp_path / "cache")}
    process = subprocess.Popen(
        [sys.executable, "-m", "grounded_answer.cli", "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:

        def up() -> bool:
            assert process.poll() is None, process.communicate()[1]
            try:
                return httpx.get(url + "/healthz").status_code == 200
            except httpx.TransportError:
                return False

        wait_for(up, "grounded-answer serve to listen", timeout=120)
        assert "all-MiniLM-L6-v2" in health_of(url)["embedding_model"]  # exact or int8
        response = httpx.post(url + "/v1/explain", json={"bundle": SEED_TEXT}, timeout=60)
        assert response.status_code == 200 and response.json()["answerable"] is True
    finally:
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    assert f"serving on http://127.0.0.1:{port}/" in stderr and "Traceback" not in stderr


def health_of(url: str) -> dict[str, Any]:
    result: dict[str, Any] = httpx.get(url + "/healthz").json()
    return result


def test_the_stream_shows_the_plan_each_judgement_and_sections_as_they_are_written(
    tmp_path: Path, embedder: HashEmbedder
) -> None:
    model = reading_model()

    with ChatServer(default=model) as chat:
        settings = serve_settings(tmp_path, llm=openai_llm(chat.url))
        settings.judge.enabled = "auto"
        settings.answer.mode = "guided"
        with (
            ServeServer(create_app(settings, embedder=embedder)) as server,
            httpx.stream(
                "POST", server.url + "/v1/explain/stream", json={"bundle": SEED_TEXT}, timeout=30
            ) as response,
        ):
            received = list(events(response))
    names = [name for name, _ in received]
    assert names[:4] == ["status", "plan", "coverage", "task_named"]
    judgements = [data for name, data in received if name == "judgement"]
    assert len(judgements) == 3 and all(0 <= j["score"] <= 1 for j in judgements)
    # Each judgement carries exactly the fields the stream's documentation lists.
    doc = " ".join(_STREAM_DOC.split())
    bullet = re.search(r"- `judgement` \(.*?: (.*?)\)", doc)
    assert bullet is not None
    fields = re.findall(r"`(\w+)`", bullet.group(1))
    assert [list(j) for j in judgements] == [fields] * len(judgements)
    # The plan again with the judgements, then the sections: the task first, each once.
    after = names.index("judgement") + 3
    assert names[after] == "plan" and names[after + 1] == "task"
    answer = Answer.model_validate(received[-1][1])
    assert answer.workflow is not None
    assert names.count("task") == 1 and names.count("step") == len(answer.workflow.steps)
    sent_task = next(data for name, data in received if name == "task")
    assert sent_task == answer.task.model_dump(mode="json")

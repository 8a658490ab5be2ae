"""The openai backend against a real HTTP server on 127.0.0.1, through the real openai client.

Nothing is mocked: :mod:`.chat_server` speaks the chat-completions protocol and injects
faults (refused connections, slow replies, 429/5xx, broken bodies), and the tests count
the requests it saw, so "our retries, not the SDK's" is checked by arithmetic.
"""

from __future__ import annotations

import email.utils
import itertools
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from grounded_answer import Settings, explain, load_settings
from grounded_answer.backends.base import Backend, Cancellation, CompletionRequest, make_backend
from grounded_answer.backends.openai import OpenAIBackend
from grounded_answer.config import LLMSettings
from grounded_answer.errors import (
    BackendConnectionError,
    BackendError,
    BackendRateLimitError,
    BackendResponseError,
    BackendTimeoutError,
    RunCancelledError,
    UngroundedAnswerError,
)
from grounded_answer.grounding.draft import draft_json_schema
from grounded_answer.sources.bundle import Bundle
from grounded_answer.writing.prompts import ChatMessage, PromptContext, PromptSource

from ..support.drafts import GOOD, draft
from ..support.fakes import HashEmbedder
from .chat_server import (
    ChatServer,
    answer_with,
    empty_choices,
    malformed,
    rate_limit,
    refuse_schema,
    refused_url,
    slow,
    status,
    truncated,
)

pytestmark = pytest.mark.integration

EVIL = "https://evil.example.com"


@pytest.fixture
def server() -> Iterator[ChatServer]:
    """A running server with an empty script (tests push behaviours); always stopped."""
    with ChatServer() as running:
        yield running


def settings_for(
    tmp_path: Path, url: str, *, answer: dict[str, Any] | None = None, **llm: Any
) -> Settings:
    # These tests exercise the HTTP path and the free-form answer: every request must
    # reach the server (no response cache) and the scripted replies are whole answers.
    llm_settings = {
        "backend": "openai",
        "base_url": url,
        "api_key": "test",
        "model": "test-model",
        "timeout": 1.0,
        "max_retries": 2,
        "backoff": 0.01,
        "max_backoff": 0.05,
        "cache": False,
        **llm,
    }
    return load_settings(
        index={"cache_dir": str(tmp_path / "cache")},
        llm=llm_settings,
        answer={"mode": "free", **(answer or {})},
        judge={"enabled": "off"},
    )


def backend_for(url: str, **llm: Any) -> OpenAIBackend:
    values = {
        "backend": "openai",
        "base_url": url,
        "api_key": "test",
        "model": "test-model",
        "timeout": 1.0,
        "max_retries": 2,
        "backoff": 0.01,
        "max_backoff": 0.05,
        **llm,
    }
    return OpenAIBackend(LLMSettings(**values))


def request() -> CompletionRequest:
    context = PromptContext(
        question="How do I deblur a photo?",
        sources=[
            PromptSource(
                alias="S1",
                source_id="m1",
                role="model",
                title="Deblur",
                summary="A deblurring model.",
            )
        ],
        passages=[],
        weak_match=False,
    )
    return CompletionRequest(
        messages=[ChatMessage(role="user", content="Answer in JSON.")],
        json_schema=draft_json_schema(context.aliases),
        context=context,
    )


def refanged(text: str) -> str:
    """``text`` with defanged links (``https[:]//evil[.]com``) written plainly again."""
    return text.replace("[", "").replace("]", "")


def run_explain(settings: Settings, bundle: Bundle) -> Any:
    return explain(bundle=bundle, settings=settings, embedder=HashEmbedder())


# -- the happy path ----------------------------------------------------------------------


def test_good_answer_validates_and_sends_the_schema(
    server: ChatServer, tmp_path: Path, seed_bundle: Bundle
) -> None:
    server.push(GOOD)
    answer = run_explain(settings_for(tmp_path, server.url), seed_bundle)

    assert answer.answerable
    assert answer.validation.valid_first_try
    assert answer.validation.attempts == 1
    model = seed_bundle.corpus.sources[0]
    assert model.title == "Deblur-MSSNet-RealBlurR"
    assert answer.task.source_ids == [model.id]
    assert [ref.source_id for ref in answer.references] == [model.id]
    assert answer.references[0].title == "Deblur-MSSNet-RealBlurR"
    assert answer.references[0].github_url == "https://github.com/kky7/MSSNet"
    assert answer.provenance.backend == "openai"
    assert answer.provenance.model == "test-model"
    assert not answer.provenance.offline
    for text in (answer.to_json(), answer.to_markdown()):
        assert "evil" not in text
        assert "https://github.com/kky7/MSSNet" in text

    assert len(server.requests) == 1
    assert server.paths == ["/v1/chat/completions"]
    sent = server.requests[0]
    assert sent["model"] == "test-model"
    assert sent["temperature"] == 0.0
    assert server.headers[0]["authorization"] == "Bearer test"
    fmt = sent["response_format"]
    assert fmt["type"] == "json_schema"
    assert fmt["json_schema"]["strict"] is True
    schema = fmt["json_schema"]["schema"]
    assert answer.plan is not None  # the schema lists what the plan keeps in play
    aliases = [s.label for s in answer.plan.in_prompt]
    assert schema["$defs"]["DraftReference"]["properties"]["source_id"]["enum"] == aliases
    assert schema["$defs"]["DraftTask"]["properties"]["source_ids"]["items"]["enum"] == aliases
    # The model sees aliases, never links: the prompt carries no URL of the sources.
    prompt = json.dumps(sent["messages"])
    assert "github.com/kky7" not in prompt
    assert [m["role"] for m in sent["messages"]] == ["system", "user"]


def test_direct_completion_reports_usage_and_finish_reason(server: ChatServer) -> None:
    server.push(GOOD)
    completion = backend_for(server.url).complete(request())
    assert completion.text == GOOD
    assert completion.finish_reason == "stop"
    assert completion.model == "test-model"
    assert (completion.prompt_tokens, completion.completion_tokens) == (11, 7)
    assert completion.seconds >= 0


# -- transport failures ------------------------------------------------------------------


def test_connection_refused_is_typed_after_bounded_retries() -> None:
    backend = backend_for(refused_url(), max_retries=2)
    started = time.monotonic()
    with pytest.raises(BackendConnectionError) as caught:
        backend.complete(request())
    assert caught.value.attempts == 3
    assert backend.retries_used == 2
    assert caught.value.backend == "openai"
    assert "cannot connect to http://127.0.0.1:" in str(caught.value)
    assert time.monotonic() - started < 5


def test_connection_refused_through_explain(tmp_path: Path, seed_bundle: Bundle) -> None:
    settings = settings_for(tmp_path, refused_url(), max_retries=1)
    with pytest.raises(BackendConnectionError) as caught:
        run_explain(settings, seed_bundle)
    assert caught.value.attempts == 2


def test_slow_server_times_out_without_hanging(server: ChatServer) -> None:
    server.push(slow(30), slow(30))
    backend = backend_for(server.url, timeout=0.3, max_retries=1)
    started = time.monotonic()
    with pytest.raises(BackendTimeoutError) as caught:
        backend.complete(request())
    elapsed = time.monotonic() - started
    # A hang guard, not a performance target: two 0.3 s timeouts and a tiny backoff.
    assert elapsed < 3.0
    assert caught.value.attempts == 2
    assert len(server.requests) == 2
    assert "within 0.3s" in str(caught.value)


def test_server_stops_promptly_while_a_reply_is_sleeping() -> None:
    with ChatServer([slow(30)]) as running:
        with pytest.raises(BackendTimeoutError):
            backend_for(running.url, timeout=0.2, max_retries=0).complete(request())
        started = time.monotonic()
    assert time.monotonic() - started < 2.0


def test_slow_then_fast_recovers(server: ChatServer) -> None:
    server.push(slow(30), GOOD)
    completion = backend_for(server.url, timeout=0.3, max_retries=1).complete(request())
    assert completion.text == GOOD
    assert len(server.requests) == 2


# -- cancellation: the HTTP service's client went away --------------------------------------


def complete_in_thread(backend: Backend) -> tuple[threading.Thread, dict[str, Any]]:
    outcome: dict[str, Any] = {}

    def call() -> None:
        try:
            outcome["completion"] = backend.complete(request())
        except Exception as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=call)
    thread.start()
    return thread, outcome


def test_cancel_aborts_the_request_in_flight(server: ChatServer) -> None:
    server.push(slow(5), GOOD)
    cancel = Cancellation()
    backend = make_backend(backend_for(server.url, timeout=30).settings, cancel=cancel)
    thread, outcome = complete_in_thread(backend)
    assert server.wait_until(lambda s: len(s.requests) == 1)
    cancel.cancel("cancelled: the client went away")
    thread.join(timeout=3)
    assert not thread.is_alive()
    assert isinstance(outcome.get("error"), RunCancelledError)
    assert "client went away" in str(outcome["error"])
    # The connection was closed under the slow reply (not abandoned until it came), and
    # nothing was retried after the cancel.
    assert server.wait_until(lambda s: s.hangups == 1)
    assert len(server.requests) == 1


def test_cancel_wakes_a_retry_delay_and_sends_nothing_more(server: ChatServer) -> None:
    server.push(status(503, headers={"Retry-After": "30"}), GOOD)
    cancel = Cancellation()
    backend = OpenAIBackend(backend_for(server.url, max_backoff=60).settings, cancel=cancel)
    thread, outcome = complete_in_thread(backend)
    assert server.wait_until(lambda s: len(s.requests) == 1)
    cancel.cancel()
    thread.join(timeout=3)
    assert not thread.is_alive() and isinstance(outcome.get("error"), RunCancelledError)
    assert len(server.requests) == 1


def test_a_cancelled_backend_sends_nothing(server: ChatServer) -> None:
    cancel = Cancellation()
    cancel.cancel()
    with pytest.raises(RunCancelledError):
        OpenAIBackend(backend_for(server.url).settings, cancel=cancel).complete(request())
    assert server.requests == []


def test_an_uncancelled_abortable_call_answers_as_usual(server: ChatServer) -> None:
    server.push(status(500), GOOD)
    backend = OpenAIBackend(backend_for(server.url).settings, cancel=Cancellation())
    assert backend.complete(request()).text == GOOD
    assert len(server.requests) == 2


# -- rate limits and server errors -------------------------------------------------------


def test_retry_after_is_honoured_then_success(server: ChatServer) -> None:
    server.push(rate_limit(retry_after="0.4"), GOOD)
    backend = backend_for(server.url, backoff=0.01, max_backoff=2.0)
    completion = backend.complete(request())
    assert completion.text == GOOD
    assert len(server.requests) == 2
    assert server.times[1] - server.times[0] >= 0.4


def test_retry_after_ms_is_honoured(server: ChatServer) -> None:
    server.push(rate_limit(retry_after=None, retry_after_ms="300"), GOOD)
    backend_for(server.url, backoff=0.01, max_backoff=2.0).complete(request())
    assert server.times[1] - server.times[0] >= 0.3


def test_retry_after_is_capped_by_max_backoff(server: ChatServer) -> None:
    server.push(rate_limit(retry_after="60"), GOOD)
    started = time.monotonic()
    backend_for(server.url, backoff=0.01, max_backoff=0.2).complete(request())
    gap = server.times[1] - server.times[0]
    assert 0.2 <= gap < 2.0
    assert time.monotonic() - started < 3.0


@pytest.mark.parametrize("usegmt", [True, False])
def test_retry_after_as_an_http_date(server: ChatServer, usegmt: bool) -> None:
    # usegmt=False writes "-0000", which parses to a naive datetime.
    when = email.utils.formatdate(time.time() + 5, usegmt=usegmt)
    server.push(rate_limit(retry_after=when), GOOD)
    backend_for(server.url, backoff=0.01, max_backoff=0.3).complete(request())
    assert 0.3 <= server.times[1] - server.times[0] < 2.0


@pytest.mark.parametrize("value", ["soon", "Wed, 21 Oct 2015 07:28:00 GMT", "-5"])
def test_unusable_or_past_retry_after_falls_back_to_backoff(server: ChatServer, value: str) -> None:
    server.push(rate_limit(retry_after=value), GOOD)
    completion = backend_for(server.url, backoff=0.01, max_backoff=0.05).complete(request())
    assert completion.text == GOOD
    assert server.times[1] - server.times[0] < 1.0


def test_rate_limited_forever_is_typed(server: ChatServer) -> None:
    server.default = rate_limit(retry_after="0")
    backend = backend_for(server.url, max_retries=2)
    with pytest.raises(BackendRateLimitError) as caught:
        backend.complete(request())
    assert caught.value.attempts == 3
    assert len(server.requests) == 3  # the SDK's own retries are off
    assert "429" in str(caught.value)


def test_5xx_then_success(server: ChatServer, tmp_path: Path, seed_bundle: Bundle) -> None:
    server.push(status(500), status(503), GOOD)
    answer = run_explain(settings_for(tmp_path, server.url, max_retries=2), seed_bundle)
    assert answer.answerable
    assert answer.validation.attempts == 1
    assert len(server.requests) == 3


@pytest.mark.parametrize("retries", [0, 1, 3])
def test_5xx_forever_gives_up_after_max_retries(server: ChatServer, retries: int) -> None:
    server.default = status(500)
    backend = backend_for(server.url, max_retries=retries, backoff=0.001)
    with pytest.raises(BackendResponseError) as caught:
        backend.complete(request())
    assert len(server.requests) == retries + 1
    assert caught.value.attempts == retries + 1
    assert "HTTP 500" in str(caught.value)
    assert "scripted HTTP 500" in str(caught.value)
    # Every request is a first try as far as the SDK knows: its own retries are off.
    assert {h.get("x-stainless-retry-count") for h in server.headers} <= {"0", None}


def test_sdk_retries_are_off_even_when_the_server_asks_for_them(server: ChatServer) -> None:
    # The SDK retries any response carrying x-should-retry: true; ours must not.
    server.default = status(409, headers={"x-should-retry": "true"})
    with pytest.raises(BackendResponseError):
        backend_for(server.url, max_retries=0).complete(request())
    assert len(server.requests) == 1


@pytest.mark.parametrize("code", [401, 404, 422])
def test_client_errors_are_not_retried(server: ChatServer, code: int) -> None:
    server.default = status(code)
    with pytest.raises(BackendResponseError) as caught:
        backend_for(server.url, max_retries=3).complete(request())
    assert len(server.requests) == 1
    assert f"HTTP {code}" in str(caught.value)


# -- unusable bodies ---------------------------------------------------------------------


@pytest.mark.parametrize("content_type", ["application/json", "text/html"])
def test_malformed_body_is_a_typed_error(server: ChatServer, content_type: str) -> None:
    server.default = malformed(content_type)
    with pytest.raises(BackendResponseError) as caught:
        backend_for(server.url, max_retries=2).complete(request())
    assert "malformed" in str(caught.value)
    assert len(server.requests) == 1  # a broken body is not a transient failure


def test_empty_choices_is_a_typed_error(server: ChatServer) -> None:
    server.default = empty_choices()
    with pytest.raises(BackendResponseError, match="empty 'choices'"):
        backend_for(server.url).complete(request())
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    "body",
    [
        {"choices": "none"},
        {"choices": [None]},
        {"choices": [{"index": 0, "message": None, "finish_reason": "stop"}]},
        {"choices": [{"index": 0, "message": {"role": "assistant", "content": 42}}]},
        {"id": "x"},
        [],
    ],
    ids=[
        "choices-not-list",
        "null-choice",
        "null-message",
        "content-not-text",
        "no-choices",
        "array",
    ],
)
def test_odd_json_bodies_are_typed_errors(server: ChatServer, body: Any) -> None:
    server.default = status(200, body)
    with pytest.raises(BackendResponseError):
        backend_for(server.url).complete(request())
    assert len(server.requests) == 1


def test_refusal_is_reported(server: ChatServer) -> None:
    refused = {
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {
                    "role": "assistant",
                    "content": None,
                    "refusal": "I cannot help with that.",
                },
            }
        ]
    }
    server.default = status(200, refused)
    with pytest.raises(BackendResponseError, match="refused: I cannot help"):
        backend_for(server.url).complete(request())


def test_attempts_count_the_retries_before_a_final_error(server: ChatServer) -> None:
    server.push(status(503), status(502), malformed())
    with pytest.raises(BackendResponseError, match="malformed") as caught:
        backend_for(server.url, max_retries=3).complete(request())
    assert caught.value.attempts == 3


def test_empty_message_is_a_typed_error(server: ChatServer) -> None:
    server.push(answer_with(lambda _body: ""))
    with pytest.raises(BackendResponseError, match="empty message"):
        backend_for(server.url).complete(request())


def test_backend_errors_surface_through_explain(
    server: ChatServer, tmp_path: Path, seed_bundle: Bundle
) -> None:
    server.default = malformed()
    with pytest.raises(BackendError):
        run_explain(settings_for(tmp_path, server.url), seed_bundle)


# -- structured output -------------------------------------------------------------------


def test_schema_refusal_falls_back_to_json_mode(
    server: ChatServer, tmp_path: Path, seed_bundle: Bundle
) -> None:
    server.push(refuse_schema(), GOOD)
    answer = run_explain(settings_for(tmp_path, server.url, max_retries=0), seed_bundle)
    assert answer.answerable
    assert len(server.requests) == 2
    assert server.requests[0]["response_format"]["type"] == "json_schema"
    assert server.requests[1]["response_format"] == {"type": "json_object"}
    # The refusal is not a retry: it costs no retry budget.
    assert server.requests[1]["messages"] == server.requests[0]["messages"]


def test_schema_fallback_happens_once_per_backend(server: ChatServer) -> None:
    server.push(refuse_schema(), GOOD, GOOD)
    backend = backend_for(server.url, max_retries=0)
    backend.complete(request())
    backend.complete(request())
    assert [r["response_format"]["type"] for r in server.requests] == [
        "json_schema",
        "json_object",
        "json_object",
    ]


def test_json_mode_refused_too_is_a_typed_error(server: ChatServer) -> None:
    server.default = refuse_schema()
    with pytest.raises(BackendResponseError, match="HTTP 400"):
        backend_for(server.url).complete(request())
    assert len(server.requests) == 2


def test_explicit_json_schema_does_not_fall_back(server: ChatServer) -> None:
    server.default = refuse_schema()
    with pytest.raises(BackendResponseError, match="HTTP 400"):
        backend_for(server.url, structured_output="json_schema").complete(request())
    assert len(server.requests) == 1


def test_a_plain_text_request_refused_does_not_fall_back(server: ChatServer) -> None:
    # No response_format was sent, so a 400 that mentions one is not a schema refusal:
    # the request is not sent again, and the backend keeps sending schemas.
    server.push(refuse_schema(), GOOD)
    backend = backend_for(server.url)
    plain = request().model_copy(update={"json_schema": None})
    with pytest.raises(BackendResponseError, match="HTTP 400"):
        backend.complete(plain)
    assert len(server.requests) == 1 and "response_format" not in server.requests[0]
    backend.complete(request())
    assert server.requests[1]["response_format"]["type"] == "json_schema"


def test_json_object_setting_never_sends_a_schema(server: ChatServer) -> None:
    server.push(GOOD)
    backend_for(server.url, structured_output="json_object").complete(request())
    assert server.requests[0]["response_format"] == {"type": "json_object"}


# -- the repair loop over HTTP -----------------------------------------------------------


def test_truncated_output_is_re_asked(
    server: ChatServer, tmp_path: Path, seed_bundle: Bundle
) -> None:
    server.push(truncated(GOOD[:60]), GOOD)
    answer = run_explain(settings_for(tmp_path, server.url), seed_bundle)
    assert answer.answerable
    assert answer.validation.attempts == 2
    assert not answer.validation.valid_first_try
    assert len(server.requests) == 2
    repair = server.user_messages(1)[-1]
    assert "cut off at max_tokens" in repair
    # The cut-off output is handed back as the assistant's previous turn.
    assert server.requests[1]["messages"][-2] == {"role": "assistant", "content": GOOD[:60]}


def test_foreign_link_is_repaired_on_the_second_request(
    server: ChatServer, tmp_path: Path, seed_bundle: Bundle
) -> None:
    server.push(draft(f"Deblur the photo, see {EVIL} (S1)."), GOOD)
    answer = run_explain(settings_for(tmp_path, server.url), seed_bundle)
    assert answer.validation.attempts == 2
    assert any("evil.example.com" in refanged(e) for e in answer.validation.repaired)
    assert "evil.example.com" in refanged(server.user_messages(1)[-1])
    assert "evil.example.com" not in answer.to_markdown()
    assert "evil.example.com" not in answer.task.statement
    # In the JSON it survives only in the report of what was repaired.
    data = json.loads(answer.to_json())
    data["validation"].pop("repaired")
    assert "evil.example.com" not in json.dumps(data)


def test_unknown_source_id_is_repaired_by_a_dynamic_server(
    server: ChatServer, tmp_path: Path, seed_bundle: Bundle
) -> None:
    def reply(body: Any) -> str:
        # Answer badly until the request carries the error, as a model that listens would.
        last = body["messages"][-1]["content"]
        return GOOD if "unknown source id" in last else draft(ref_source="S99")

    server.default = answer_with(reply)
    answer = run_explain(settings_for(tmp_path, server.url), seed_bundle)
    assert answer.validation.attempts == 2
    assert len(server.requests) == 2
    assert "'S99'" in server.user_messages(1)[-1]
    assert [ref.label for ref in answer.references] == ["S1"]


def test_drop_policy_removes_foreign_links_everywhere(
    server: ChatServer, tmp_path: Path, seed_bundle: Bundle
) -> None:
    server.push(draft(f"Deblur the photo, see {EVIL}/x (S1).", ref_source="S99"))
    settings = settings_for(tmp_path, server.url, answer={"policy": "drop", "max_repairs": 0})
    answer = run_explain(settings, seed_bundle)
    assert len(server.requests) == 1
    assert "evil.example.com" not in answer.task.statement
    assert "evil.example.com" not in answer.to_markdown()
    dropped = answer.validation.dropped
    assert any("evil.example.com" in refanged(item) for item in dropped)
    assert any("S99" in item for item in dropped)
    # The only place the link may still appear in the JSON is the report of what was dropped.
    data = json.loads(answer.to_json())
    data["validation"].pop("dropped")
    data["validation"].pop("unresolved")  # the errors of the last attempt, named on purpose
    assert "evil.example.com" not in json.dumps(data)
    assert "S99" not in json.dumps(data)
    assert all(ref.label != "S99" for ref in answer.references)


def test_strict_policy_raises_with_every_attempt(
    server: ChatServer, tmp_path: Path, seed_bundle: Bundle
) -> None:
    bad = draft(f"Deblur the photo, see {EVIL} (S1).")
    server.default = answer_with(lambda _body: bad)
    settings = settings_for(tmp_path, server.url, answer={"policy": "strict", "max_repairs": 1})
    with pytest.raises(UngroundedAnswerError) as caught:
        run_explain(settings, seed_bundle)
    assert len(caught.value.attempts) == 2
    assert len(server.requests) == 2
    assert all(attempt.output == bad for attempt in caught.value.attempts)
    assert all(
        any("evil.example.com" in error for error in attempt.errors)
        for attempt in caught.value.attempts
    )


def test_a_streamed_answer_arrives_in_parts_and_is_the_same_completion(server: ChatServer) -> None:
    server.push(GOOD)
    parts: list[str] = []
    backend = OpenAIBackend(LLMSettings(base_url=server.url, api_key="k", max_retries=0, timeout=5))
    request = CompletionRequest(
        messages=[ChatMessage(role="user", content="hi")],
        json_schema=None,
        context=PromptContext(question="q", sources=[], passages=[], weak_match=False),
        on_text=parts.append,
    )
    completion = backend.complete(request)
    assert completion.text == GOOD and parts[-1] == GOOD and len(parts) > 3
    assert all(b.startswith(a) for a, b in itertools.pairwise(parts))
    assert completion.prompt_tokens == 11 and completion.finish_reason == "stop"
    assert server.requests[0]["stream"] is True
    assert server.requests[0]["stream_options"] == {"include_usage": True}


def test_a_streamed_answer_that_can_be_cancelled_arrives_in_parts_too(server: ChatServer) -> None:
    server.push(GOOD)
    parts: list[str] = []
    backend = OpenAIBackend(
        LLMSettings(base_url=server.url, api_key="k", max_retries=0, timeout=5),
        cancel=Cancellation(),
    )
    request = CompletionRequest(
        messages=[ChatMessage(role="user", content="hi")],
        json_schema=None,
        context=PromptContext(question="q", sources=[], passages=[], weak_match=False),
        on_text=parts.append,
    )
    assert backend.complete(request).text == GOOD and parts[-1] == GOOD and len(parts) > 3

"""/metrics on the real service: the Prometheus text format, parsed by prometheus-client.

Every figure is checked against what the test did or what the answers' own provenance
says, never against a duration.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from grounded_answer import load_settings
from grounded_answer.serve import create_app

from ..support.drafts import GOOD
from ..support.fakes import HashEmbedder
from ..support.paths import SEED
from .chat_server import ChatServer
from .serve_server import ServeServer

pytestmark = pytest.mark.integration

SEED_TEXT = SEED.read_text(encoding="utf-8")


def samples(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics, by (name, sorted labels)."""
    response = httpx.get(url + "/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def chat() -> Iterator[ChatServer]:
    with ChatServer(default=GOOD) as server:
        yield server


def test_requests_answers_llm_calls_cache_and_stages_are_counted(
    tmp_path: Path, chat: ChatServer
) -> None:
    llm: dict[str, Any] = {
        "backend": "openai",
        "base_url": chat.url,
        "api_key": "test",
        "model": "test-model",
        "max_retries": 0,
    }
    settings = load_settings(
        index={"cache_dir": str(tmp_path / "cache")}, llm=llm, answer={"mode": "free"}
    )
    with ServeServer(create_app(settings, embedder=HashEmbedder())) as server:
        answers = []
        for _ in range(2):
            response = httpx.post(
                server.url + "/v1/explain", json={"bundle": SEED_TEXT}, timeout=30
            )
            assert response.status_code == 200, response.text
            answers.append(response.json())
        assert httpx.post(server.url + "/v1/explain", json={}).status_code == 422
        httpx.get(server.url + "/no/such/path")
        found = samples(server.url)
    first, second = (answer["provenance"]["usage"] for answer in answers)
    assert first["calls"] >= 1 and first["cached_calls"] == 0
    assert second["cached_calls"] == second["calls"] == first["calls"]  # all from the cache
    assert len(chat.requests) == first["calls"]

    explain = {"endpoint": "/v1/explain", "method": "POST"}
    assert value(found, "grounded_answer_http_requests_total", status="200", **explain) == 2
    assert value(found, "grounded_answer_http_requests_total", status="422", **explain) == 1
    assert (
        value(
            found,
            "grounded_answer_http_requests_total",
            endpoint="other",
            method="GET",
            status="404",
        )
        == 1
    )
    assert (
        value(
            found,
            "grounded_answer_http_requests_total",
            endpoint="/readyz",
            method="GET",
            status="200",
        )
        >= 1
    )
    assert (
        value(found, "grounded_answer_http_request_duration_seconds_count", endpoint="/v1/explain")
        == 3
    )
    assert value(found, "grounded_answer_answers_total", backend="openai", answerable="true") == 2
    assert (
        value(found, "grounded_answer_llm_calls_total", backend="openai", cached="false")
        == first["calls"]
    )
    assert (
        value(found, "grounded_answer_llm_calls_total", backend="openai", cached="true")
        == second["calls"]
    )
    assert value(found, "grounded_answer_llm_cache_lookups_total", result="miss") == first["calls"]
    assert value(found, "grounded_answer_llm_cache_lookups_total", result="hit") == second["calls"]
    assert (
        value(found, "grounded_answer_llm_tokens_total", backend="openai", kind="prompt")
        == first["prompt_tokens"] + second["prompt_tokens"]
    )
    assert (
        value(found, "grounded_answer_llm_tokens_total", backend="openai", kind="completion")
        == first["completion_tokens"] + second["completion_tokens"]
    )
    for stage in answers[0]["provenance"]["timings"]:  # plan, generate, ...: every key
        assert value(found, "grounded_answer_stage_seconds_count", stage=stage) == 2, stage
    assert {"plan", "generate"} <= set(answers[0]["provenance"]["timings"])
    assert value(found, "grounded_answer_queue_wait_seconds_count") == 2
    assert value(found, "grounded_answer_queue_depth") == 0
    assert value(found, "grounded_answer_answers_running") == 0


def test_the_stub_counts_no_cache_lookups(tmp_path: Path) -> None:
    settings = load_settings(index={"cache_dir": str(tmp_path / "cache")})
    with ServeServer(create_app(settings, embedder=HashEmbedder())) as server:
        answer = httpx.post(
            server.url + "/v1/explain", json={"bundle": SEED_TEXT}, timeout=30
        ).json()
        found = samples(server.url)
    assert answer["provenance"]["offline"] is True
    assert value(found, "grounded_answer_answers_total", backend="stub", answerable="true") == 1
    assert not any(name == "grounded_answer_llm_cache_lookups_total" for name, _ in found)

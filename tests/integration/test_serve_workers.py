"""The real command: ``grounded-answer serve --workers N`` processes, signals, PostgreSQL.

Each server is a child process on 127.0.0.1 with the real embedding model and the
``openai`` backend pointed at the scripted chat server, which counts every LLM call.
What is asserted is who answered and what was called, never how fast; the one bound on
time is the drain's own deadline, which the command promises to keep.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from ..support.drafts import GOOD
from ..support.paths import SEED
from .chat_server import ChatServer, ok, slow
from .serve_server import ServeProcess

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SEED_TEXT = SEED.read_text(encoding="utf-8")


def serve_env(folder: Path, chat_url: str, **extra: str) -> dict[str, str]:
    """The environment of one server ("host"): its own cache folder, the scripted LLM."""
    return {
        "GROUNDED_ANSWER_INDEX__CACHE_DIR": str(folder / "cache"),
        "GROUNDED_ANSWER_LLM__BACKEND": "openai",
        "GROUNDED_ANSWER_LLM__BASE_URL": chat_url,
        "GROUNDED_ANSWER_LLM__API_KEY": "test",
        "GROUNDED_ANSWER_LLM__MODEL": "test-model",
        "GROUNDED_ANSWER_LLM__MAX_RETRIES": "0",
        # 'free': the scripted server answers the whole draft in one call (GOOD).
        "GROUNDED_ANSWER_ANSWER__MODE": "free",
        # One LLM call per answer, so the test can count them (test_judge.py tests the
        # judge).
        "GROUNDED_ANSWER_JUDGE__ENABLED": "off",
        **extra,
    }


def explain(url: str) -> dict[str, Any]:
    response = httpx.post(url + "/v1/explain", json={"bundle": SEED_TEXT}, timeout=60)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def counter(url: str, name: str, **labels: str) -> float:
    text = httpx.get(url + "/metrics").text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


@pytest.fixture
def chat() -> Iterator[ChatServer]:
    with ChatServer(default=GOOD) as server:
        yield server


def test_two_hosts_of_two_workers_share_one_response_cache_in_postgresql(
    tmp_path: Path, pg_dsn: str, chat: ChatServer
) -> None:
    shared = {"GROUNDED_ANSWER_LLM__CACHE_URL": pg_dsn}
    with (
        ServeProcess(
            tmp_path / "a", "--workers", "2", env=serve_env(tmp_path / "a", chat.url, **shared)
        ) as host_a,
        ServeProcess(
            tmp_path / "b", "--workers", "2", env=serve_env(tmp_path / "b", chat.url, **shared)
        ) as host_b,
    ):
        first = explain(host_a.url)
        usage = first["provenance"]["usage"]
        calls = len(chat.requests)
        assert usage["calls"] == calls >= 1 and usage["cached_calls"] == 0
        # The other host (another process, another worker, another SQLite folder): every
        # call is answered by the shared table, none reaches the LLM.
        second = explain(host_b.url)
        assert len(chat.requests) == calls
        assert (
            second["provenance"]["usage"]["cached_calls"]
            == second["provenance"]["usage"]["calls"]
            == calls
        )
        assert second["task"] == first["task"]
        # Either worker of host A answers a repeat from the cache too.
        for _ in range(4):
            again = explain(host_a.url)
            assert again["provenance"]["usage"]["cached_calls"] == calls
        assert len(chat.requests) == calls
        # /metrics sums both workers of host A, whichever answered the scrape.
        assert counter(host_a.url, "grounded_answer_answers_total", backend="openai") == 5
        assert (
            counter(host_a.url, "grounded_answer_llm_cache_lookups_total", result="hit")
            == 4 * calls
        )
        assert counter(host_b.url, "grounded_answer_answers_total", backend="openai") == 1
    for host in (host_a, host_b):
        assert host.process is not None and host.process.returncode == 0, host.stderr
        assert "Traceback" not in host.stderr


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigterm_drains_answers_in_flight_then_exits(
    tmp_path: Path, chat: ChatServer, workers: str
) -> None:
    drain_timeout = 30.0
    chat.push(slow(3, then=ok(GOOD)))
    env = serve_env(
        tmp_path,
        chat.url,
        GROUNDED_ANSWER_SERVE__DRAIN_TIMEOUT=str(drain_timeout),
        GROUNDED_ANSWER_LLM__CACHE="false",
    )
    with ServeProcess(tmp_path, "--workers", workers, env=env) as server:
        result: dict[str, Any] = {}

        def in_flight() -> None:
            response = httpx.post(
                server.url + "/v1/explain", json={"bundle": SEED_TEXT}, timeout=60
            )
            result["status"] = response.status_code
            result["body"] = response.json()

        client = threading.Thread(target=in_flight)
        client.start()
        assert chat.wait_until(lambda s: len(s.requests) == 1, timeout=30)
        signalled = time.monotonic()
        server.terminate()

        def readyz() -> httpx.Response | None:
            try:
                return httpx.get(server.url + "/readyz")
            except httpx.TransportError:
                return None

        deadline = time.monotonic() + 10
        while (probe := readyz()) is None or probe.status_code != 503:
            assert time.monotonic() < deadline, "/readyz never said draining"
            time.sleep(0.05)
        assert probe.json()["state"] == "draining"
        refused = httpx.post(server.url + "/v1/explain", json={"bundle": SEED_TEXT}, timeout=30)
        assert refused.status_code == 503 and "retry-after" in refused.headers
        assert refused.json()["error"]["type"] == "ServiceUnavailable"
        client.join(60)
        assert result["status"] == 200, result
        assert result["body"]["answerable"] is True
        assert server.process is not None
        status = server.process.wait(drain_timeout + 15)
        assert time.monotonic() - signalled < drain_timeout
    assert status == 0, server.stderr
    assert len(chat.requests) == 1  # the refused request never reached the LLM
    assert "draining" in server.stderr and "Traceback" not in server.stderr

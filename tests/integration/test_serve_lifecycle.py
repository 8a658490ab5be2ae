"""Readiness on the real service: starting, ready, failed; probes that always answer."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from grounded_answer import load_settings
from grounded_answer.serve import create_app

from ..support.fakes import HashEmbedder
from ..support.paths import SEED
from .serve_server import ServeServer

pytestmark = pytest.mark.integration

SEED_TEXT = SEED.read_text(encoding="utf-8")


class HeldEmbedder(HashEmbedder):
    """Blocks every encode until ``release`` is set, as a slow model load would."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def encode(self, texts: Any, **kwargs: Any) -> Any:
        assert self.release.wait(30), "never released"
        return super().encode(texts, **kwargs)


def wait_state(url: str, state: str) -> dict[str, Any]:
    import time

    deadline = time.monotonic() + 15
    while True:
        body: dict[str, Any] = httpx.get(url + "/readyz").json()
        if body["state"] == state:
            return body
        assert time.monotonic() < deadline, f"never {state}: {body}"
        time.sleep(0.02)


def test_not_ready_until_the_model_and_corpora_are_loaded(tmp_path: Path) -> None:
    embedder = HeldEmbedder()
    settings = load_settings(index={"cache_dir": str(tmp_path / "cache")})
    with ServeServer(create_app(settings, embedder=embedder), wait_ready=False) as server:
        # Loading the default corpus's index is held: the process is live, not ready.
        ready = httpx.get(server.url + "/readyz")
        assert ready.status_code == 503
        assert ready.json() == {
            "ready": False,
            "state": "starting",
            "detail": "loading the model and corpora",
        }
        health = httpx.get(server.url + "/healthz")
        assert health.status_code == 200
        assert health.json()["state"] == "starting" and health.json()["corpora"] == []
        assert health.json()["embedding_model"] is None
        refused = httpx.post(
            server.url + "/v1/explain",
            json={"bundle": SEED_TEXT},
            headers={"X-Request-ID": "early-1"},
        )
        assert refused.status_code == 503 and refused.headers["retry-after"] == "5"
        error = refused.json()["error"]
        assert error["type"] == "ServiceUnavailable" and error["retry_after"] == 5
        assert "starting" in error["message"] and error["request_id"] == "early-1"
        assert httpx.get(server.url + "/metrics").status_code == 200
        embedder.release.set()
        assert wait_state(server.url, "ready") == {"ready": True, "state": "ready", "detail": ""}
        assert httpx.get(server.url + "/readyz").status_code == 200
        answered = httpx.post(server.url + "/v1/explain", json={"bundle": SEED_TEXT}, timeout=30)
        assert answered.status_code == 200, answered.text
        assert httpx.get(server.url + "/healthz").json()["corpora"] == ["default"]


def test_a_load_failure_is_reported_not_ready_forever(tmp_path: Path) -> None:
    corpus = tmp_path / "broken.yaml"
    corpus.write_text("sources:\n  - id: x\n    role: wizard\n", encoding="utf-8")
    settings = load_settings(
        index={"cache_dir": str(tmp_path / "cache")}, serve={"corpora": {"broken": str(corpus)}}
    )
    with ServeServer(create_app(settings, embedder=HashEmbedder()), wait_ready=False) as server:
        body = wait_state(server.url, "failed")
        assert body["ready"] is False and body["detail"].startswith("CorpusError: ")
        assert "broken.yaml" in body["detail"]
        assert httpx.get(server.url + "/readyz").status_code == 503
        assert httpx.get(server.url + "/healthz").status_code == 200
        refused = httpx.post(server.url + "/v1/explain", json={"bundle": SEED_TEXT})
        assert refused.status_code == 503
        assert "could not load" in refused.json()["error"]["message"]
        assert "Traceback" not in refused.text

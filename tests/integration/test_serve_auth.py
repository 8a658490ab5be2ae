"""API keys, CORS and request ids on the real service (uvicorn on 127.0.0.1, httpx)."""

from __future__ import annotations

import hmac
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from grounded_answer import Settings, load_settings
from grounded_answer.cli import main
from grounded_answer.errors import ConfigError
from grounded_answer.serve import create_app
from grounded_answer.serve._auth import ApiKeys, key_id

from ..support.fakes import HashEmbedder
from ..support.paths import SEED
from .serve_server import ServeServer

pytestmark = pytest.mark.integration

SEED_TEXT = SEED.read_text(encoding="utf-8")
KEY = "alpha-key-0123456789"
OTHER = "beta-key-9876543210zz"


def settings_with(tmp_path: Path, **serve: Any) -> Settings:
    return load_settings(index={"cache_dir": str(tmp_path / "cache")}, serve=serve)


@pytest.fixture
def keyed(tmp_path: Path) -> Iterator[ServeServer]:
    app = create_app(settings_with(tmp_path, api_keys=[KEY, OTHER]), embedder=HashEmbedder())
    with ServeServer(app) as server:
        yield server


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_a_missing_or_wrong_key_is_401_in_the_error_shape(keyed: ServeServer) -> None:
    url = keyed.url + "/v1/explain"
    missing = httpx.post(url, json={"bundle": SEED_TEXT})
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == 'Bearer realm="grounded-answer"'
    error = missing.json()["error"]
    assert error["type"] == "AuthenticationError" and error["field"] == "authorization"
    assert error["request_id"] == missing.headers["x-request-id"]
    for headers in (
        bearer("alpha-key-0123456788"),
        {"Authorization": f"Basic {KEY}"},
        bearer(KEY[:-1]),
    ):
        wrong = httpx.post(url, json={"bundle": SEED_TEXT}, headers=headers)
        assert wrong.status_code == 401, headers
    assert (
        'error="invalid_token"'
        in httpx.post(url, json={"bundle": SEED_TEXT}, headers=bearer("x" * 20)).headers[
            "www-authenticate"
        ]
    )
    for key in (KEY, OTHER):
        right = httpx.post(url, json={"bundle": SEED_TEXT}, headers=bearer(key), timeout=30)
        assert right.status_code == 200, right.text
    stream = httpx.post(keyed.url + "/v1/explain/stream", json={"bundle": SEED_TEXT})
    assert stream.status_code == 401


def test_probes_the_page_and_its_files_stay_open_metrics_do_not(keyed: ServeServer) -> None:
    for path in ("/healthz", "/readyz", "/", "/static/app.js", "/static/style.css"):
        assert httpx.get(keyed.url + path).status_code == 200, path
    assert httpx.get(keyed.url + "/healthz").json()["auth"] is True
    assert httpx.get(keyed.url + "/metrics").status_code == 401
    assert httpx.get(keyed.url + "/openapi.json").status_code == 401
    assert httpx.get(keyed.url + "/metrics", headers=bearer(KEY)).status_code == 200
    # The page offers a key field and sends what is typed there as a Bearer token.
    script = httpx.get(keyed.url + "/static/app.js").text
    assert 'headers.Authorization = "Bearer " + key' in script
    assert 'id="key"' in httpx.get(keyed.url + "/").text


def test_metrics_public_opens_metrics_only(tmp_path: Path) -> None:
    settings = settings_with(tmp_path, api_keys=[KEY], metrics_public=True)
    with ServeServer(create_app(settings, embedder=HashEmbedder())) as server:
        assert httpx.get(server.url + "/metrics").status_code == 200
        assert httpx.post(server.url + "/v1/explain", json={"bundle": SEED_TEXT}).status_code == 401


def test_without_keys_everything_is_open(tmp_path: Path) -> None:
    with ServeServer(create_app(settings_with(tmp_path), embedder=HashEmbedder())) as server:
        assert httpx.get(server.url + "/healthz").json()["auth"] is False
        assert httpx.get(server.url + "/metrics").status_code == 200


def test_the_log_line_names_the_key_id_never_the_key(
    keyed: ServeServer, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="grounded_answer.serve.access"):
        response = httpx.post(
            keyed.url + "/v1/explain",
            json={"bundle": SEED_TEXT},
            headers={**bearer(KEY), "X-Request-ID": "trace-42"},
            timeout=30,
        )
        httpx.post(
            keyed.url + "/v1/explain",
            json={"bundle": SEED_TEXT},
            headers=bearer("not-a-key-at-all-0000"),
        )

        def lines() -> list[dict[str, Any]]:
            return [
                json.loads(record.getMessage())
                for record in caplog.records
                if record.name == "grounded_answer.serve.access"
            ]

        # A line is written once its response has ended, just after the client has it.
        deadline = time.monotonic() + 10
        while not any(line["status"] == 401 for line in lines()):
            assert time.monotonic() < deadline, "no log line for the refused request"
            time.sleep(0.01)
    assert response.status_code == 200
    found = lines()
    answered = next(line for line in found if line["request_id"] == "trace-42")
    assert answered["key_id"] == key_id(KEY) and len(answered["key_id"]) == 8
    assert answered["status"] == 200 and answered["method"] == "POST"
    assert answered["path"] == "/v1/explain" and answered["seconds"] > 0
    assert isinstance(answered["queue_wait"], float)
    refused = next(line for line in found if line["status"] == 401)
    assert refused["key_id"] is None
    text = caplog.text
    assert KEY not in text and "not-a-key-at-all-0000" not in text


def test_every_key_is_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    compared: list[int] = []
    real = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        compared.append(len(a) + len(b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", counting)
    keys = ApiKeys([KEY, OTHER, "gamma-key-000000000000"])
    assert keys.match(KEY) == key_id(KEY)  # the first matches; the others are still compared
    assert keys.match("nope-nope-nope-nope") is None
    assert len(compared) == 6 and set(compared) == {64}  # sha256 digests: equal lengths


def test_keys_from_a_file_and_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "keys"
    path.write_text(f"# platform keys\n\n{KEY}\n  {OTHER}  \n", encoding="utf-8")
    keys = ApiKeys.from_settings(settings_with(tmp_path, api_keys_file=str(path)).serve)
    assert keys.ids == [key_id(KEY), key_id(OTHER)]
    monkeypatch.setenv("GROUNDED_ANSWER_SERVE__API_KEYS", json.dumps([KEY]))
    assert ApiKeys.from_settings(load_settings().serve).ids == [key_id(KEY)]


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("short\n", "line 1: an API key needs 16 to 256 characters"),
        ("# only a comment\n", "holds no key"),
        ("has spaces in the key!!\n", "may hold only"),
    ],
)
def test_an_unusable_keys_file_is_a_config_error(tmp_path: Path, content: str, words: str) -> None:
    path = tmp_path / "keys"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError, match=words):
        create_app(settings_with(tmp_path, api_keys_file=str(path)), embedder=HashEmbedder())
    with pytest.raises(ConfigError, match="cannot read"):
        ApiKeys.from_settings(settings_with(tmp_path, api_keys_file=str(tmp_path)).serve)


def test_serve_refuses_to_listen_beyond_loopback_without_keys(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["serve", "--host", "0.0.0.0", "--port", "0"]) == 2
    error = capsys.readouterr().err
    assert "beyond loopback" in error and "--insecure" in error and "serving on" not in error


# -- CORS ------------------------------------------------------------------------------------


def preflight(url: str, origin: str) -> httpx.Response:
    return httpx.options(
        url + "/v1/explain",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )


def test_cors_is_off_without_an_allow_list(keyed: ServeServer) -> None:
    response = httpx.post(
        keyed.url + "/v1/explain",
        json={"bundle": SEED_TEXT},
        headers={**bearer(KEY), "Origin": "https://elsewhere.example"},
        timeout=30,
    )
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers
    assert (
        "access-control-allow-origin"
        not in preflight(keyed.url, "https://elsewhere.example").headers
    )


def test_cors_allows_the_listed_origins_only(tmp_path: Path) -> None:
    allowed = "https://platform.example"
    settings = settings_with(tmp_path, api_keys=[KEY], cors_origins=[allowed])
    with ServeServer(create_app(settings, embedder=HashEmbedder())) as server:
        ok = preflight(server.url, allowed)  # no key on a preflight: browsers send none
        assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == allowed
        assert "authorization" in ok.headers["access-control-allow-headers"].lower()
        assert preflight(server.url, "https://evil.example").status_code == 400
        refused = httpx.post(
            server.url + "/v1/explain", json={"bundle": SEED_TEXT}, headers={"Origin": allowed}
        )
        assert refused.status_code == 401  # the browser can read why
        assert refused.headers["access-control-allow-origin"] == allowed
        assert "x-request-id" in refused.headers["access-control-expose-headers"].lower()


@pytest.mark.parametrize("origin", ["*", "https://x.example/path", "ftp://x.example"])
def test_cors_origins_must_be_named(tmp_path: Path, origin: str) -> None:
    with pytest.raises(ConfigError, match=r"serve\.cors_origins"):
        settings_with(tmp_path, cors_origins=[origin])


# -- request ids -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("req-123_abc.def:7", True),
        ("x" * 129, False),
        ("has space", False),
        ("new\nline", False),
        ("", False),
    ],
)
def test_a_sane_request_id_is_echoed_anything_else_replaced(
    keyed: ServeServer, sent: str, kept: bool
) -> None:
    headers = {"X-Request-ID": sent} if "\n" not in sent else {}
    response = httpx.post(
        keyed.url + "/v1/explain",
        content=b"{not json",
        headers={**headers, **bearer(KEY), "content-type": "application/json"},
    )
    assert response.status_code == 422
    echoed = response.headers["x-request-id"]
    assert response.json()["error"]["request_id"] == echoed
    if kept:
        assert echoed == sent
    else:
        assert echoed != sent and len(echoed) == 32 and int(echoed, 16) >= 0

"""What ``serve`` decides before it listens: the binding check, the workers' settings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from grounded_answer import load_settings
from grounded_answer.errors import ConfigError
from grounded_answer.serve import check_binding
from grounded_answer.serve._run import SETTINGS_ENV, dump_settings, is_loopback, log_config


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.0.0.5", False),
        ("example.internal", False),
    ],
)
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_beyond_loopback_needs_keys_or_insecure(tmp_path: Path) -> None:
    exposed = load_settings(serve={"host": "0.0.0.0"})
    with pytest.raises(ConfigError, match="beyond loopback"):
        check_binding(exposed, insecure=False)
    check_binding(exposed, insecure=True)
    check_binding(load_settings(serve={"host": "0.0.0.0", "api_keys": ["k" * 16]}), insecure=False)
    check_binding(load_settings(), insecure=False)
    with pytest.raises(ConfigError, match="16 to 256"):
        check_binding(load_settings(serve={"api_keys": ["short"]}), insecure=True)


def test_the_workers_get_the_resolved_settings_secrets_included(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = load_settings(
        index={"cache_dir": str(tmp_path / "c")},
        llm={"backend": "openai", "api_key": "sk-secret", "cache_url": "postgresql://u:pw@h/d"},
        serve={
            "port": 9123,
            "workers": 3,
            "api_keys": ["key-0123456789abcdef"],
            "corpora": {"x": str(tmp_path / "x.yaml")},
        },
    )
    text = dump_settings(settings)
    assert "sk-secret" in text and "**********" not in text
    monkeypatch.setenv("GROUNDED_ANSWER_SERVE__PORT", "1")  # the parent's flags win
    again = load_settings(**json.loads(text))
    assert again == settings
    assert again.serve.api_keys[0].get_secret_value() == "key-0123456789abcdef"
    assert SETTINGS_ENV.startswith("GROUNDED_ANSWER_")


def test_access_lines_go_to_stdout_as_bare_json() -> None:
    config = log_config()
    handler = config["loggers"]["grounded_answer.serve.access"]["handlers"][0]
    assert config["handlers"][handler]["stream"] == "ext://sys.stdout"
    assert config["formatters"][config["handlers"][handler]["formatter"]]["format"] == "%(message)s"

"""Settings for an answer written by the scripted chat server (no judge, no cache)."""

from __future__ import annotations

from pathlib import Path

from grounded_answer import Settings, load_settings


def scripted_settings(tmp_path: Path, url: str) -> Settings:
    """Every request reaches the server once; the judge is tested on its own."""
    return load_settings(
        index={"cache_dir": str(tmp_path / "cache")},
        llm={
            "backend": "openai",
            "base_url": url,
            "api_key": "test",
            "model": "test-model",
            "timeout": 5.0,
            "max_retries": 0,
            "cache": False,
            "restate_question": False,
        },
        judge={"enabled": "off"},
    )

"""Settings for an answer written by the scripted chat server (no judge, no cache by default)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from grounded_answer import Settings, load_settings


def scripted_settings(
    tmp_path: Path,
    url: str,
    *,
    judge: dict[str, Any] | None = None,
    answer: dict[str, Any] | None = None,
    **llm: Any,
) -> Settings:
    """Every request reaches the server once; the judge is off unless a test sets it.

    ``llm`` overrides the client settings (no cache, no restatement, 5 s by default).
    """
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
            **llm,
        },
        answer=answer or {},
        judge=judge if judge is not None else {"enabled": "off"},
    )

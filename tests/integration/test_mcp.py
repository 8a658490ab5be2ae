"""``grounded-answer mcp`` driven by the official SDK's own client over stdio."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from grounded_answer import Answer
from grounded_answer.grounding.links import find_links, link_key

from ..support.paths import SEED

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SEED_TEXT = SEED.read_text(encoding="utf-8")
SRC = Path(__file__).resolve().parents[2] / "src"


def with_session(tmp_path: Path, test: Callable[[ClientSession], Awaitable[Any]]) -> Any:
    """Run ``test`` against a fresh ``grounded-answer mcp`` (stub backend), then stop it."""
    env = {
        **os.environ,
        "GROUNDED_ANSWER_INDEX__CACHE_DIR": str(tmp_path / "cache"),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")])),
    }
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "grounded_answer.cli", "mcp"],
        env=env,
        cwd=str(tmp_path),
    )

    async def run() -> Any:
        with (tmp_path / "mcp.err").open("w") as errlog:
            async with (
                stdio_client(params, errlog=errlog) as (read, write),
                ClientSession(read, write) as session,
            ):
                await session.initialize()
                return await test(session)

    return asyncio.run(run())


def test_the_tool_answers_the_seed_and_refuses_bad_bundles_with_typed_errors(
    tmp_path: Path,
) -> None:
    async def scenario(session: ClientSession) -> dict[str, Any]:
        tools = (await session.list_tools()).tools
        results: dict[str, Any] = {"tools": tools}
        results["seed"] = await session.call_tool("explain_bundle", {"bundle": SEED_TEXT})
        results["malformed"] = await session.call_tool(
            "explain_bundle", {"bundle": "no question here\nModel: x\n"}
        )
        results["backend"] = await session.call_tool(
            "explain_bundle", {"bundle": SEED_TEXT, "backend": "openai"}
        )
        results["question"] = await session.call_tool(
            "explain_bundle", {"bundle": SEED_TEXT, "question": "   "}
        )
        results["huge"] = await session.call_tool(
            "explain_bundle", {"bundle": SEED_TEXT + "x" * (1 << 20)}
        )
        results["wrong_type"] = await session.call_tool("explain_bundle", {"bundle": 42})
        results["again"] = await session.call_tool(
            "explain_bundle", {"bundle": SEED_TEXT, "question": "Can AI upscale my photo?"}
        )
        return results

    results = with_session(tmp_path, scenario)
    [tool] = results["tools"]
    assert tool.name == "explain_bundle"
    assert set(tool.input_schema["properties"]) == {"bundle", "question", "backend"}
    assert tool.input_schema["required"] == ["bundle"]
    assert {"task", "workflow", "references", "provenance"} <= set(tool.output_schema["properties"])

    seed = results["seed"]
    assert seed.is_error is False
    answer = Answer.model_validate(seed.structured_content)
    assert answer.answerable and answer.workflow and answer.references
    assert answer.provenance.corpus == "bundle"
    [text] = seed.content
    assert text.type == "text" and text.text == answer.to_markdown()
    bundle_links = {link_key(found.text) for found in find_links(SEED_TEXT)}
    assert {found.key for found in find_links(text.text)} <= bundle_links

    for name, words in (
        ("malformed", "BundleParseError: bundle:1:"),
        ("backend", "ConfigError: backend 'openai' is not offered"),
        ("question", "QuestionError:"),
        ("huge", "RequestTooLarge:"),
        ("wrong_type", "bundle"),
    ):
        result = results[name]
        assert result.is_error is True, name
        [message] = result.content
        assert words in message.text, (name, message.text)
        assert "Traceback" not in message.text and 'File "' not in message.text
    # The server lived on after every error: a later call still answers.
    again = results["again"]
    assert again.is_error is False
    assert again.structured_content["question"] == "Can AI upscale my photo?"
    assert "Traceback" not in (tmp_path / "mcp.err").read_text()

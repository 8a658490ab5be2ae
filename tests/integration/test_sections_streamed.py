"""Sections sent while the answer is written: each checked first, the final answer decides.

The scripted server streams its replies in small chunks, as a local model does; the
pipeline's listener sees a ``section`` the moment its slot is complete and passes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from grounded_answer import Answer, explain
from grounded_answer.grounding.links import find_links

from ..support.fakes import HashEmbedder
from ..support.paths import BUNDLES, SEED
from ..support.translator import reply
from .chat_server import ChatServer, answer_with
from .scripted import scripted_settings

pytestmark = pytest.mark.integration

EVIL = "https://evil.example.com/x"
Events = list[tuple[str, dict[str, Any]]]


settings_for = scripted_settings


def run(tmp_path: Path, bundle: Path, answer: Any) -> tuple[Answer, Events]:
    events: Events = []
    with ChatServer(default=answer_with(answer)) as server:
        result = explain(
            bundle=bundle,
            settings=settings_for(tmp_path, server.url),
            embedder=HashEmbedder(),
            on_event=lambda e, d: events.append((e, d)),
        )
        assert all(body.get("stream") for body in server.requests)
    return result, events


def sections(events: Events) -> list[dict[str, Any]]:
    return [data for event, data in events if event == "section"]


def test_a_guided_answer_sends_the_task_first_then_what_the_model_left(tmp_path: Path) -> None:
    statement = "Image deblurring: you want the blur gone, and S1 removes it."
    answer, events = run(tmp_path, SEED, lambda body: json.dumps({"task": statement}))
    sent = sections(events)
    assert sent and sent[0]["kind"] == "task" and sent[0]["data"]["statement"] == statement
    kinds = [s["kind"] for s in sent]
    assert kinds.count("task") == 1 and "step" in kinds and "reference" in kinds
    # What was sent is what the answer holds.
    assert answer.task.statement == statement
    step = next(s for s in sent if s["kind"] == "step")
    assert answer.workflow is not None
    assert step["data"] == answer.workflow.steps[0].model_dump(mode="json")


def test_a_slot_that_fails_its_checks_is_never_sent(tmp_path: Path) -> None:
    answer, events = run(
        tmp_path, SEED, lambda body: json.dumps({"task": f"Image deblurring, see {EVIL}."})
    )
    for data in sections(events):
        assert "evil.example.com" not in json.dumps(data)
        assert not [m for m in find_links(json.dumps(data)) if "evil" in m.text]
    assert "evil" not in answer.task.statement


def test_a_slot_that_echoes_the_instructions_is_never_sent(tmp_path: Path) -> None:
    echoed: list[str] = []

    def echo(body: Any) -> str:
        echoed.append(" ".join(body["messages"][0]["content"].split()[5:45]))
        return json.dumps({"task": "Image deblurring. " + echoed[-1]})

    answer, events = run(tmp_path, SEED, echo)
    assert echoed
    for data in sections(events):
        assert echoed[0] not in json.dumps(data, ensure_ascii=False)
    assert echoed[0] not in answer.task.statement
    assert [e for e in answer.validation.dropped if e.startswith("task")]


def test_a_translation_sends_each_line_as_it_proves_itself(tmp_path: Path) -> None:
    bundle = BUNDLES / "d06_voice_messages_pt_to_korean.txt"
    answer, events = run(tmp_path, bundle, lambda body: reply(body, "ko"))
    sent = sections(events)
    kinds = [s["kind"] for s in sent]
    assert kinds[0] in ("reference", "task") and "step" in kinds
    task = next(s for s in sent if s["kind"] == "task")
    assert "단어" in task["data"]["statement"]
    assert answer.task.statement == task["data"]["statement"]
    # Sections arrive one by one, not in one burst at the end.
    assert len(sent) >= 4

"""Guided slots: the schema a model gets, the checks on its reply, and the merged draft."""

from __future__ import annotations

import json

import pytest

from grounded_answer.planning import Relevance
from grounded_answer.writing.guided import (
    guided_schema,
    merge_guided,
    salvage_guided,
    validate_guided,
)
from grounded_answer.writing.offline import draft_tails

from ..support.drafting import Drafting, drafting
from ..support.paths import BUNDLES

EVIL = "https://evil.example.com/x"


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Drafting:
    return drafting(
        BUNDLES / "d06_voice_messages_pt_to_korean.txt", tmp_path_factory.mktemp("cache")
    )


def test_the_schema_fixes_every_list_length_and_requires_only_the_task(made: Drafting) -> None:
    schema = guided_schema(made.baseline, made.plan)
    steps = len(made.baseline.workflow.steps) if made.baseline.workflow else 0
    properties = schema["properties"]
    assert schema["required"] == ["task"]
    assert properties["steps"]["minItems"] == properties["steps"]["maxItems"] == steps
    count = len(made.baseline.references)
    assert properties["why"]["minItems"] == properties["why"]["maxItems"] == count
    borderline = [s.label for s in made.plan.sources if s.relevance is Relevance.BORDERLINE]
    if borderline:
        assert properties["keep"]["items"]["properties"]["source_id"]["enum"] == borderline
    assert "answerable" not in properties
    assert "answerable" in guided_schema(made.baseline, made.plan, model_verdict=True)["properties"]


def test_a_reply_that_drops_the_task_name_or_miscounts_is_refused_with_the_reasons(
    made: Drafting,
) -> None:
    guided, errors = validate_guided(
        json.dumps({"task": "It works.", "why": ["x"]}), made.baseline, made.plan, made.grounding
    )
    assert guided is None
    assert any(e.startswith("task: name the task") for e in errors)
    assert any(e.startswith("why: write exactly") for e in errors)


def test_a_link_in_a_slot_is_an_error_to_repair(made: Drafting) -> None:
    statement = f"{made.baseline.task.statement} See {EVIL}."
    guided, errors = validate_guided(
        json.dumps({"task": statement}), made.baseline, made.plan, made.grounding
    )
    assert guided is None and any("evil.example.com" in e or "link" in e for e in errors)


def test_salvage_keeps_each_good_slot_and_reports_each_bad_one(made: Drafting) -> None:
    steps = len(made.baseline.workflow.steps) if made.baseline.workflow else 0
    reply = {
        "task": f"Bad {EVIL}",
        "steps": [{"input": "sound", "action": "S1 writes it down", "output": "words"}] * steps,
    }
    guided, dropped = salvage_guided(json.dumps(reply), made.baseline, made.plan, made.grounding)
    assert guided.task == made.baseline.task.statement
    assert dropped and dropped[0].startswith("task:")
    assert guided.steps[0].action == "S1 writes it down"


def test_a_slot_left_out_keeps_the_offline_sentence_and_tails_come_back(made: Drafting) -> None:
    context = made.context
    tails = draft_tails(context)
    statement = made.baseline.task.statement.replace("you have", "you hold")
    guided, errors = validate_guided(
        json.dumps({"task": statement}), made.baseline, made.plan, made.grounding
    )
    assert guided is not None and errors == []
    draft = merge_guided(guided, made.baseline, made.plan, made.grounding, tails)
    assert draft.task.statement == statement
    assert [r.source_id for r in draft.references] == [
        r.source_id for r in made.baseline.references
    ]
    quoted = [why for why in tails.why if why]
    assert all(any(q[:40] in r.why for r in draft.references) for q in quoted)

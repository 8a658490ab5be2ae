"""Guided writing through the real openai client against a scripted server on 127.0.0.1.

The plan fixes sources, steps and verdict; the server plays a small model that writes the
prose slots, badly or well, and the tests check what reached the answer and what was sent.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from grounded_answer import Settings, explain
from grounded_answer.backends.base import CompletionRequest
from grounded_answer.backends.cache import cached
from grounded_answer.backends.openai import OpenAIBackend
from grounded_answer.config import LLMSettings
from grounded_answer.grounding.links import find_links, link_key
from grounded_answer.planning import Relevance, script_matches
from grounded_answer.sources.bundle import Bundle, parse_bundle
from grounded_answer.writing.prompts import ChatMessage, PromptContext

from ..support.fakes import HashEmbedder
from ..support.paths import SEED
from ..support.translator import reply
from .chat_server import ChatServer, answer_with, ok
from .scripted import scripted_settings

pytestmark = pytest.mark.integration

EVIL = "https://evil.example.com/x"


def settings_for(
    tmp_path: Path, url: str, *, answer: dict[str, Any] | None = None, **llm: Any
) -> Settings:
    # The judge is off: tests/integration/test_judge.py
    return scripted_settings(
        tmp_path, url, answer=answer, **{"timeout": 2.0, "restate_question": True, **llm}
    )


def slots_for(body: Any, **change: Any) -> str:
    """A correct guided reply for the schema in the request: one slot per planned item."""
    props = body["response_format"]["json_schema"]["schema"]["properties"]
    steps = props.get("steps", {}).get("minItems", 0)
    why = props.get("why", {}).get("minItems", 0)
    reply: dict[str, Any] = {
        "task": "You want a sharp photo; S1 does image deblurring: it removes blur.",
        "steps": [
            {"input": "your photo", "action": "S1 sharpens it", "output": "a sharp photo"}
            for _ in range(steps)
        ],
        "why": [f"Source number {n + 1} supports the answer." for n in range(why)],
        "note": "",
    }
    if "keep" in props:
        reply["keep"] = []
    reply.update(change)
    return json.dumps({k: v for k, v in reply.items() if k in props})


def foreign(answer: Any) -> list[str]:
    allowed = {link_key(link) for link in answer.allowed_links}
    rendered = answer.to_json() + answer.to_markdown()
    return [m.text for m in find_links(rendered) if m.key not in allowed]


def test_guided_slots_fill_the_plan(tmp_path: Path, seed_bundle: Bundle) -> None:
    with ChatServer([answer_with(slots_for)]) as server:
        answer = explain(
            bundle=seed_bundle, settings=settings_for(tmp_path, server.url), embedder=HashEmbedder()
        )
    assert answer.validation.mode == "guided" and answer.validation.valid_first_try
    assert answer.task.statement.startswith("You want a sharp photo")


def test_a_rewrite_must_keep_naming_the_task(tmp_path: Path, seed_bundle: Bundle) -> None:
    def vague(body: Any) -> str:
        return slots_for(body, task="Yes, AI can do that for you with the model S1.")

    with ChatServer([answer_with(vague), answer_with(slots_for)]) as server:
        answer = explain(
            bundle=seed_bundle, settings=settings_for(tmp_path, server.url), embedder=HashEmbedder()
        )
        repair = server.requests[1]["messages"][-1]["content"]
    assert "name the task" in repair and "deblurring" in repair
    assert "image deblurring" in answer.task.statement.lower()
    assert answer.validation.attempts == 2
    assert answer.plan is not None and answer.workflow is not None
    assert [s.source_id for s in answer.workflow.steps] == [
        answer.plan.source(s.label).source_id for s in answer.plan.steps
    ]
    assert answer.workflow.steps[0].action == "S1 sharpens it"
    cited = [s.source_id for s in answer.plan.cited]
    assert [r.source_id for r in answer.references] == cited
    assert answer.references[0].why == "Source number 1 supports the answer."
    sent = server.requests[0]
    schema = sent["response_format"]["json_schema"]["schema"]
    assert (
        schema["properties"]["why"]["minItems"]
        == len(cited)
        == schema["properties"]["why"]["maxItems"]
    )
    assert "source_id" not in json.dumps(schema["properties"].get("steps", {}))
    assert "answerable" not in schema["properties"]  # the plan decides
    assert schema["required"] == ["task"]  # a slot left out keeps the plan writer's text
    user = sent["messages"][1]["content"]
    assert "Task statement to rewrite in plain English" in user and "steps[0]" in user


def two_deblurrers() -> Bundle:
    """The seed with a second deblurring model: one step, with an alternative."""
    return parse_bundle(
        SEED.read_text(encoding="utf-8").replace(
            "GitHub: https://github.com/kky7/MSSNet",
            "GitHub: https://github.com/kky7/MSSNet\n\nModel: Deblur-NAFNet-GoPro\n"
            "Paper: https://arxiv.org/abs/2204.04676",
        )
    )


def test_slots_left_out_keep_the_plan_writers_text_and_its_tails(tmp_path: Path) -> None:
    def task_only(body: Any) -> str:
        return json.dumps({"task": "You enlarged a photo; S1 does image deblurring."})

    bundle = two_deblurrers()
    with ChatServer([answer_with(task_only)]) as server:
        answer = explain(
            bundle=bundle, settings=settings_for(tmp_path, server.url), embedder=HashEmbedder()
        )
        user = server.requests[0]["messages"][1]["content"]
    offline = explain(
        bundle=bundle,
        settings=settings_for(tmp_path, "http://127.0.0.1:9/v1", backend="stub"),
        embedder=HashEmbedder(),
    )
    assert answer.validation.valid_first_try
    assert answer.task.statement == "You enlarged a photo; S1 does image deblurring."
    # Everything else is the offline writer's, tails included, in the same order ...
    assert answer.workflow is not None and offline.workflow is not None
    assert answer.workflow.model_dump(exclude={"steps"}) == offline.workflow.model_dump(
        exclude={"steps"}
    )
    assert [s.model_dump() for s in answer.workflow.steps] == [
        s.model_dump() for s in offline.workflow.steps
    ]
    assert "Alternatives: " in answer.workflow.steps[0].action
    assert [r.why for r in answer.references] == [r.why for r in offline.references]
    # ... but the model was shown neither the quotes nor the alternatives.
    quoted = [
        r.why.split(". ", 1)[1]
        for r in offline.references
        if r.why.startswith("It ") and r.why.count(". ")
    ]
    assert quoted and all(q not in user for q in quoted)
    assert "Alternatives: " not in user


def test_a_quote_that_echoes_the_guided_prompt_is_left_out_not_blamed_on_the_model(
    tmp_path: Path,
) -> None:
    # A summary sharing a run of words with the guided system prompt passed the offline
    # checks but not the guided ones: it is cut (and reported), never an error to repair.
    # The title names the model's task, so the plan cites the paper and quotes its summary.
    bundle = parse_bundle(
        SEED.read_text(encoding="utf-8").replace(
            "### Related Papers:\n",
            "### Related Papers:\nModel: Real-World Image Deblurring "
            "Networks\nPaper: http://arxiv.org/pdf/2401.00001v1.pdf\nSummary: Our image deblurring "
            "network is a careful AI scientist who explains AI models to non-experts.\n\n",
            1,
        )
    )
    for policy in ("drop", "strict"):
        with ChatServer([answer_with(slots_for), answer_with(slots_for)]) as server:
            settings = settings_for(tmp_path, server.url, answer={"policy": policy})
            answer = explain(bundle=bundle, settings=settings, embedder=HashEmbedder())
        assert answer.validation.attempts == 1, policy
        assert answer.references and not any(
            "careful AI scientist" in r.why for r in answer.references
        )
        assert any(
            "left out" in line and "repeats instructions" in line
            for line in answer.validation.dropped
        ), (answer.validation.dropped, answer.validation.withheld)


def test_bad_slots_are_repaired_then_replaced_by_the_plan_writer(
    tmp_path: Path, seed_bundle: Bundle
) -> None:
    def leaky(body: Any) -> str:
        return slots_for(body, task=f"See {EVIL} for more (S9).")

    with ChatServer([answer_with(leaky), answer_with(leaky)]) as server:
        settings = settings_for(tmp_path, server.url, answer={"max_repairs": 1})
        answer = explain(bundle=seed_bundle, settings=settings, embedder=HashEmbedder())
        repair = server.requests[1]["messages"][-1]["content"]
    assert "task" in repair and "links are not allowed" in repair
    assert foreign(answer) == [] and EVIL not in answer.to_json()
    assert "evil" not in answer.to_markdown()  # reports keep it, defanged, in JSON only
    assert any(d.startswith("task:") for d in answer.validation.dropped)
    # The other slots were fine and kept; the task is the offline writer's sentence.
    assert answer.references[0].why == "Source number 1 supports the answer."
    assert "S9" not in answer.task.statement


def test_a_model_cannot_decline_what_the_plan_answers(tmp_path: Path, seed_bundle: Bundle) -> None:
    with ChatServer([answer_with(slots_for)]) as server:
        answer = explain(
            "Can AI make my blurry photo sharp?",
            bundle=seed_bundle,
            settings=settings_for(tmp_path, server.url),
            embedder=HashEmbedder(),
        )
    assert answer.answerable and answer.workflow


def test_model_verdict_setting_lets_the_model_overrule_on_the_record(
    tmp_path: Path, seed_bundle: Bundle
) -> None:
    def declines(body: Any) -> str:
        assert "answerable" in body["response_format"]["json_schema"]["schema"]["properties"]
        return slots_for(body, answerable=False, note="The sources do not say enough.")

    with ChatServer([answer_with(declines)]) as server:
        settings = settings_for(tmp_path, server.url, answer={"verdict": "model"})
        answer = explain(bundle=seed_bundle, settings=settings, embedder=HashEmbedder())
    assert not answer.answerable and answer.workflow is None
    assert any("overruled" in line for line in answer.validation.plan)


KOREAN = "오래된 저해상도 사진을 크게 확대해도 선명하게 만들 수 있나요?"
FRENCH = "Peut-on agrandir une vieille photo floue et la rendre nette ?"


def korean_bundle(question: str = KOREAN) -> Bundle:
    text = SEED.read_text(encoding="utf-8")
    start = text.index('"') + 1
    return parse_bundle(text[:start] + question + text[text.index('"', start) :])


def test_a_question_in_french_is_restated_too(tmp_path: Path) -> None:
    # The embedding model reads Latin script but barely any French: retrieval and the
    # plan use the English restatement, and the answer is still written in French.
    def translate(body: Any) -> str:
        return reply(body, "fr")

    script = [
        ok(json.dumps({"english": "Can an old blurry photo be enlarged and made sharp?"})),
        answer_with(translate),
    ]
    with ChatServer(script) as server:
        answer = explain(
            bundle=korean_bundle(FRENCH),
            settings=settings_for(tmp_path, server.url),
            embedder=HashEmbedder(),
        )
        restate = server.requests[0]["messages"][0]["content"]
    assert FRENCH in restate
    assert answer.plan is not None and answer.plan.question.language == "fr"
    assert answer.plan.question.restated == "Can an old blurry photo be enlarged and made sharp?"
    # The translation lost the task's English name: it follows, for the reader to look up.
    statement = answer.task.statement
    assert "mot" in statement and "(S1)" in statement
    assert statement.endswith("(image deblurring)")
    assert "task" in answer.validation.translation.translated  # type: ignore[union-attr]
    assert answer.provenance.usage.calls == 2


def test_a_translation_that_keeps_the_task_name_gets_nothing_added(tmp_path: Path) -> None:
    def translate(body: Any) -> str:
        # A translator that keeps the English term ("image deblurring") in its sentence.
        return reply(body, "fr", keep=("image", "deblurring"))

    script = [
        ok(json.dumps({"english": "Can a blurry photo be made sharp?"})),
        answer_with(translate),
    ]
    with ChatServer(script) as server:
        answer = explain(
            bundle=korean_bundle(FRENCH),
            settings=settings_for(tmp_path, server.url),
            embedder=HashEmbedder(),
        )
    assert "image deblurring" in answer.task.statement.lower()
    assert not answer.task.statement.endswith("(image deblurring)")


def test_unreadable_question_is_restated_then_the_answer_is_translated(tmp_path: Path) -> None:
    def translate(body: Any) -> str:
        assert "response_format" not in body  # plain text: small models copy under schemas

        def with_a_link(lines: list[tuple[str, str]]) -> list[tuple[str, str]]:
            tag, text = lines[1]
            lines[1] = (tag, f"{text} {EVIL}")  # a bad line stays English and is reported
            return lines

        return reply(body, "ko", with_a_link)

    script = [
        ok(json.dumps({"english": "Can an old low-resolution photo be enlarged and made sharp?"})),
        answer_with(translate),
    ]
    with ChatServer(script) as server:
        answer = explain(
            bundle=korean_bundle(),
            settings=settings_for(tmp_path, server.url),
            embedder=HashEmbedder(),
        )
    assert answer.provenance.question_restated is not None
    assert "enlarged" in answer.provenance.question_restated
    restate = server.requests[0]["messages"][0]["content"]
    assert KOREAN in restate
    assert answer.plan is not None and answer.plan.question.language == "ko"
    assert answer.plan.question.restated is not None
    assert answer.validation.language == "ko"
    assert "단어" in answer.task.statement
    assert answer.task.statement.endswith("(image super-resolution, image deblurring)")
    assert answer.validation.untranslated  # the line with a link stayed in English
    assert foreign(answer) == []
    # Restate, then one translation of the plan writer's draft: no English rewrite first.
    assert answer.provenance.usage.calls == 2
    assert answer.validation.attempts == 1


def test_the_same_request_twice_costs_one_call(tmp_path: Path, seed_bundle: Bundle) -> None:
    with ChatServer([answer_with(slots_for)]) as server:
        settings = settings_for(tmp_path, server.url, cache=True)
        first = explain(bundle=seed_bundle, settings=settings, embedder=HashEmbedder())
        second = explain(bundle=seed_bundle, settings=settings, embedder=HashEmbedder())
        assert len(server.requests) == 1
    assert first.task == second.task
    assert second.provenance.usage.cached_calls == 1
    assert first.provenance.usage.cached_calls == 0


def test_the_cache_is_shared_by_backends_on_one_file(tmp_path: Path) -> None:
    request = CompletionRequest(
        messages=[ChatMessage(role="user", content="hello")],
        json_schema=None,
        context=PromptContext(question="q", sources=[], passages=[], weak_match=False),
    )
    with ChatServer(["first answer"]) as server:
        llm = LLMSettings(
            backend="openai", base_url=server.url, api_key="t", model="m", max_retries=0
        )
        one = cached(OpenAIBackend(llm), tmp_path, llm)
        two = cached(OpenAIBackend(llm), tmp_path, llm)  # another process would do the same
        assert one.complete(request).text == "first answer"
        again = two.complete(request)
        assert again.text == "first answer" and again.cached
        other = llm.model_copy(update={"temperature": 0.7})
        with pytest.raises(Exception, match="script exhausted"):
            cached(OpenAIBackend(other), tmp_path, other).complete(request)  # a new key


def test_ruled_out_sources_never_reach_the_guided_prompt(
    tmp_path: Path, seed_bundle: Bundle
) -> None:
    with ChatServer([answer_with(slots_for)]) as server:
        answer = explain(
            bundle=seed_bundle, settings=settings_for(tmp_path, server.url), embedder=HashEmbedder()
        )
        user = server.requests[0]["messages"][1]["content"]
    assert answer.plan is not None
    for source in answer.plan.sources:
        shown = f"[{source.label}]" in user
        assert shown == (source.relevance is not Relevance.NOT_RELEVANT)


def test_a_declined_answer_is_not_put_to_the_model(tmp_path: Path, seed_bundle: Bundle) -> None:
    # The plan declines (nothing reaches the threshold). Asked to restate the question, a
    # small model described what it guessed the recommended model does; a decline has
    # nothing to explain, so the offline writer's words stand and no call is made.
    def describes(body: Any) -> str:
        return json.dumps({"task": "The model is trained on a large dataset of stocks."})

    with ChatServer([answer_with(describes)]) as server:
        settings = settings_for(tmp_path, server.url)
        settings = settings.model_copy(
            update={"retrieval": settings.retrieval.model_copy(update={"min_score": 0.99})}
        )
        answer = explain(
            "Which stocks should I buy this year?",
            bundle=seed_bundle,
            settings=settings,
            embedder=HashEmbedder(),
        )
        asked = len(server.requests)
    assert not answer.answerable and answer.workflow is None
    assert asked == 0
    assert "trained" not in answer.task.statement
    assert answer.task.statement.startswith("The user asks: Which stocks")
    assert answer.note and "do not cover" in answer.note
    assert answer.validation.valid_first_try and answer.validation.attempts == 0


@pytest.mark.parametrize(
    ("text", "language", "matches"),
    [
        ("混ざった音源からボーカルを分ける", "ja", True),
        ("低解像度画像", "ja", True),  # a noun phrase may be all Han
        ("音频源分割你有混合录音和想要分离的音轨", "ja", False),  # Chinese is not Japanese
        ("音频源分割你有混合录音和想要分离的音轨", "zh", True),
        ("混ざった音源からボーカルを分ける", "zh", False),
        ("오래된 사진을 선명하게 (S1)", "ko", True),
        ("The recommended model (S1) separates the vocals", "ko", False),
        ("Le modèle sépare les voix", "fr", None),  # Latin script: decided by langid elsewhere
    ],
)
def test_script_matches_tells_japanese_from_chinese(
    text: str, language: str, matches: bool | None
) -> None:
    assert script_matches(text, language) is matches

"""Writing the answer: the prompt's material, then ask, check and repair, guided or free.

Whatever a backend writes goes through the grounding validators
(:mod:`grounded_answer.grounding.draft`); a failing answer is re-asked with its exact
errors, up to ``answer.max_repairs`` times; then policy ``strict`` refuses the answer and
policy ``drop`` keeps what is grounded. Guided writing (the plan's structure, the model's
prose) and translation are one call each on top of the offline writer's draft.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from pydantic import ValidationError

from ..answer import ValidationReport
from ..backends.base import Completion, CompletionRequest
from ..errors import Attempt, BackendResponseError, UngroundedAnswerError
from ..grounding.draft import (
    AnswerDraft,
    GroundingContext,
    check_draft,
    describe_error,
)
from ..grounding.injection import QUESTION_WITHHELD
from ..grounding.links import defang
from ..planning import EvidencePlan, language_name
from ..retrieval import Hit
from ..sources.corpus import Source
from ..writing.guided import (
    GuidedDraft,
    check_tails,
    guided_schema,
    merge_guided,
    salvage_guided,
    validate_guided,
)
from ..writing.offline import draft_tails, offline_draft
from ..writing.prompts import ChatMessage, PromptContext, PromptPassage, PromptSource
from ..writing.translate import apply_translation, translation_lines
from ._preview import Preview
from ._run import Run

__all__ = ["CHECKS", "prompt_context", "write", "write_guided"]

CHECKS = [
    "output is a JSON object matching the answer schema",
    "every cited source id is one of the provided sources",
    "no URL, domain, arXiv id or GitHub path outside the sources' link fields, in any text",
    "an answerable answer has task, workflow and references; an unanswerable one says why",
    "the evidence plan's verdict holds, every recommended model runs a workflow step and is "
    "cited, and no source the plan ruled out is cited",
]


def prompt_context(
    run: Run, hits: list[Hit], plan: EvidencePlan
) -> tuple[PromptContext, dict[str, Source]]:
    """The prompt's material and the alias map, from the sources the plan keeps in play.

    Sentences addressed to the model are taken out (and recorded by :meth:`Run.withhold`).
    """
    corpus = run.sources
    shown = plan.in_prompt if plan.verdict.answerable else plan.sources
    alias_to_source = {p.label: corpus.get(p.source_id) for p in shown}
    alias_of = {source.id: alias for alias, source in alias_to_source.items()}
    score = {p.source_id: p.evidence.question_score for p in plan.sources}

    safe = run.withhold
    context = PromptContext(
        # A question that was nothing but instructions is not sent, not even as a fallback.
        question=safe(run.question, "question") or QUESTION_WITHHELD,
        sources=[
            PromptSource(
                alias=p.label,
                source_id=p.source_id,
                role=p.role.value,
                title=p.title,
                summary=safe(alias_to_source[p.label].summary, f"summary of {p.source_id}"),
                score=score[p.source_id],
            )
            for p in shown
        ],
        passages=[
            PromptPassage(
                alias=alias_of[h.source_id],
                score=h.score,
                text=safe(h.text, f"passage {h.passage_id}"),
            )
            for h in hits
            if h.source_id in alias_of
        ],
        weak_match=not plan.verdict.answerable,
        plan=plan,
    )
    return context, alias_to_source


def write(
    run: Run,
    messages: list[ChatMessage],
    context: PromptContext,
    schema: dict[str, Any],
    *,
    check: Callable[[str], tuple[AnswerDraft | None, list[str]]],
    salvage: Callable[[str], tuple[AnswerDraft | None, list[str]]],
    on_text: Callable[[str], None] | None = None,
) -> tuple[AnswerDraft, ValidationReport]:
    """Ask, check, re-ask with the exact errors; then strict raises, drop salvages.

    ``on_text`` sees each attempt's text as it arrives (sections shown while it is written).
    """
    backend, prompts, settings = run.backend, run.prompts, run.settings
    attempts: list[Attempt] = []
    repaired: list[str] = []
    completion: Completion | None = None
    for number in range(1, settings.answer.max_repairs + 2):
        request = CompletionRequest(
            messages=messages,
            json_schema=schema,
            context=context,
            attempt=number,
            errors=list(attempts[-1].errors) if attempts else [],
            on_text=on_text,
        )
        completion = backend.complete(request)
        run.usage.add(completion)
        draft, errors = check(completion.text)
        if completion.finish_reason == "length":
            errors = [
                f"output was cut off at max_tokens ({settings.llm.max_tokens}); "
                "write a shorter answer",
                *errors,
            ]
            draft = None if errors[1:] else draft
        if draft is not None:
            repaired.extend(e for attempt in attempts for e in attempt.errors)
            return draft, ValidationReport(
                checks=CHECKS,
                attempts=number,
                repaired=_unique(repaired),
                policy=settings.answer.policy,
                valid_first_try=number == 1,
            )
        attempts.append(Attempt(output=completion.text, errors=tuple(errors)))
        messages = [
            *messages,
            ChatMessage(role="assistant", content=completion.text[:20_000]),
            prompts.repair(context, errors),
        ]
    if settings.answer.policy == "strict" or completion is None:
        raise _ungrounded(
            f"the {backend.name} backend's answer broke the grounding rules", attempts
        )
    salvaged, dropped = salvage(completion.text)
    if salvaged is None:
        raise _ungrounded(
            f"nothing grounded could be kept from the {backend.name} backend's answer", attempts
        )
    return salvaged, ValidationReport(
        checks=CHECKS,
        attempts=len(attempts),
        dropped=dropped,
        unresolved=list(attempts[-1].errors),
        policy=settings.answer.policy,
        valid_first_try=False,
    )


def write_guided(
    run: Run,
    context: PromptContext,
    plan: EvidencePlan,
    grounding: GroundingContext,
    language: str,
    preview: Preview | None = None,
) -> tuple[AnswerDraft, ValidationReport]:
    """The plan's structure with the model's prose (see :mod:`grounded_answer.writing.guided`).

    In English the model rewords the offline draft's slots, shown without their tails
    (quoted summary sentences, a step's alternatives), which go back in after, so the
    model never pays to copy them. In another language the offline draft is translated
    line by line in one plain-text call: under a JSON schema small models copy English
    rather than translate, and a rewrite before translating doubled the cost for no gain
    in wording (borderline sources are then not put to the model and stay out, as the plan
    leaves them). Only ``answer.verdict = "model"`` asks for an English rewrite first, for
    the model's verdict. The translation call is then the answer's one attempt.

    A declined answer is not reworded at all: with nothing to explain, a model asked to
    restate the question described what it guessed the model does instead, claims no
    source makes (1.5B model, test split).
    """
    settings = run.settings
    own_verdict = settings.answer.verdict == "model"
    if (language != "en" or not plan.verdict.answerable) and not own_verdict:
        draft = check_draft(offline_draft(context, language_note=False), grounding)
        # The translation is the one call; a declined answer in English makes none.
        report = ValidationReport(
            checks=CHECKS,
            attempts=int(language != "en"),
            policy=settings.answer.policy,
            valid_first_try=True,
        )
        if language == "en":
            return draft, report
    else:
        draft, report = _reword(run, context, plan, grounding, preview)
        if language == "en":
            return draft, report
    if preview is not None:
        preview.grounding = grounding
    lines = translation_lines(draft, plan, language)

    def translated(again: bool) -> str:
        if not lines:
            return ""
        try:
            completion = run.backend.complete(
                CompletionRequest(
                    messages=run.prompts.translate(
                        [line.sent for line in lines], language_name(language), again
                    ),
                    json_schema=None,
                    context=context,
                    on_text=preview.translation(draft, lines, language) if preview else None,
                )
            )
        except BackendResponseError:
            # An empty or unreadable reply (a model quirk, not a server down): every line
            # stays English and is reported as missing; the answer itself stands.
            return ""
        run.usage.add(completion)
        return completion.text

    reply = translated(again=False)
    english = draft
    draft, translation = apply_translation(english, reply, lines, grounding, language, plan)
    calls = report.attempts
    if translation.wrong_language:
        # The whole reply came back in another language: asked once more, the model made
        # a translator by a system message, checked line by line as the first; kept if
        # it did better.
        calls += 1
        second = apply_translation(
            english, translated(again=True), lines, grounding, language, plan
        )
        if len(second[1].translated) > len(translation.translated):
            draft, translation = second  # else the first reply's reasons stand
    return draft, report.model_copy(
        update={
            "attempts": calls,
            "untranslated": translation.untranslated,
            "translation": translation,
        }
    )


def _reword(
    run: Run,
    context: PromptContext,
    plan: EvidencePlan,
    grounding: GroundingContext,
    preview: Preview | None = None,
) -> tuple[AnswerDraft, ValidationReport]:
    """The model rewords the offline draft's prose slots in English, under the plan's schema."""
    baseline = check_draft(offline_draft(context, language_note=False, tails=False), grounding)
    messages = run.prompts.guided(context, baseline.model_dump(), "English")
    grounding = replace(grounding, instructions=(messages[0].content,))
    tails, cut = check_tails(draft_tails(context), baseline, grounding)
    schema = guided_schema(baseline, plan, model_verdict=run.settings.answer.verdict == "model")

    def merged(guided: GuidedDraft) -> tuple[AnswerDraft | None, list[str]]:
        try:
            return merge_guided(guided, baseline, plan, grounding, tails), []
        except ValidationError as exc:  # the slots pass alone but not as one answer
            return None, [describe_error(e) for e in exc.errors(include_url=False)]

    def check(text: str) -> tuple[AnswerDraft | None, list[str]]:
        guided, errors = validate_guided(text, baseline, plan, grounding)
        return merged(guided) if guided is not None else (None, errors)

    def salvage(text: str) -> tuple[AnswerDraft | None, list[str]]:
        guided, dropped = salvage_guided(text, baseline, plan, grounding)
        draft, errors = merged(guided)
        return draft, dropped + errors

    if preview is not None:
        preview.baseline, preview.grounding = baseline, grounding
    draft, report = write(
        run,
        messages,
        context,
        schema,
        check=check,
        salvage=salvage,
        on_text=preview.guided(tails) if preview else None,
    )
    return draft, report.model_copy(update={"dropped": [*report.dropped, *cut]}) if cut else report


def _ungrounded(message: str, attempts: list[Attempt]) -> UngroundedAnswerError:
    last = attempts[-1].errors if attempts else ()
    # The errors quote the offending links; the message shows them defanged.
    detail = defang("; ".join(last[:3])) + (" ..." if len(last) > 3 else "")
    return UngroundedAnswerError(message, attempts=attempts, detail=detail)


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))

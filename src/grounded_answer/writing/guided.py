"""Guided writing: the plan fixes the structure, a language model writes only the prose.

Small local models are poor judges of structure (which sources to cite, how many steps,
whether the question is covered at all) and fair at rewording a sentence. So in guided
mode the evidence plan decides everything structural, the offline writer
(:mod:`grounded_answer.writing.offline`) drafts one plain sentence per slot from it, and the
model is offered those slots to reword: the task statement (required: it is the slot that
needs language), each planned step's input, action and output, one reason per planned
reference, a keep/drop vote on each *borderline* source, and a note. A slot it leaves out
keeps the offline sentence. Source ids, the number and order of steps and the verdict
never come from the model, and its schema fixes the number of every list, so a short
answer cannot drop a recommended model.

Every slot is checked by the same validators as a free answer (links, source ids, echoed
instructions, lengths), and the task statement must still name the plan's task. A slot
that stays bad after the repairs is replaced by the offline writer's sentence and
reported. An answer in another language is the offline draft translated line by line
(:mod:`.translate`).
"""

from __future__ import annotations

from typing import Annotated, Any

import pydantic_core
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from ..grounding.draft import (
    ACTION_CHARS,
    ACTION_SLOT,
    IO_CHARS,
    MAX_REFERENCES,
    NOTE_SLOT,
    STATEMENT_CHARS,
    TASK_SLOT,
    WHY_CHARS,
    WHY_SLOT,
    AnswerDraft,
    DraftReference,
    GroundingContext,
    Prose,
    describe_error,
    shorten,
    strip_fences,
)
from ..planning import EvidencePlan, Relevance
from .offline import DraftTails, with_tails

__all__ = [
    "GuidedDraft",
    "GuidedStep",
    "check_tails",
    "guided_schema",
    "merge_guided",
    "salvage_guided",
    "task_names",
    "validate_guided",
]


class GuidedStep(BaseModel):
    """The prose of one planned step."""

    model_config = ConfigDict(extra="forbid")

    input: Prose = Field(min_length=1, max_length=IO_CHARS)
    action: Prose = Field(min_length=1, max_length=ACTION_CHARS)
    output: Prose = Field(min_length=1, max_length=IO_CHARS)


class GuidedDraft(BaseModel):
    """What a guided model writes: prose slots only."""

    model_config = ConfigDict(extra="forbid")

    task: Prose = Field(min_length=1, max_length=STATEMENT_CHARS)
    steps: list[GuidedStep] = Field(default_factory=list)
    why: list[Annotated[Prose, Field(min_length=1, max_length=WHY_CHARS)]] = Field(
        default_factory=list
    )
    #: Borderline sources the writer chose to cite, each with why (a reference's shape).
    keep: list[DraftReference] = Field(default_factory=list)
    note: Prose = Field(default="", max_length=STATEMENT_CHARS)
    answerable: bool | None = None


def guided_schema(
    baseline: AnswerDraft, plan: EvidencePlan, *, model_verdict: bool = False
) -> dict[str, Any]:
    """The JSON schema of the slots for this plan: every list has its exact length."""
    text = {"type": "string", "minLength": 1}
    steps = len(baseline.workflow.steps) if baseline.workflow else 0
    properties: dict[str, Any] = {"task": {**text, "maxLength": STATEMENT_CHARS}}
    if steps:
        properties["steps"] = {
            "type": "array",
            "minItems": steps,
            "maxItems": steps,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["input", "action", "output"],
                "properties": {
                    "input": {**text, "maxLength": IO_CHARS},
                    "action": {**text, "maxLength": ACTION_CHARS},
                    "output": {**text, "maxLength": IO_CHARS},
                },
            },
        }
    if baseline.references:
        count = len(baseline.references)
        properties["why"] = {
            "type": "array",
            "minItems": count,
            "maxItems": count,
            "items": {**text, "maxLength": WHY_CHARS},
        }
    borderline = _borderline(plan)
    room = MAX_REFERENCES - len(baseline.references)
    if borderline and plan.verdict.answerable and room > 0:
        properties["keep"] = {
            "type": "array",
            "maxItems": min(len(borderline), room),
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["source_id", "why"],
                "properties": {
                    "source_id": {"type": "string", "enum": borderline},
                    "why": {**text, "maxLength": WHY_CHARS},
                },
            },
        }
    properties["note"] = {"type": "string", "maxLength": STATEMENT_CHARS}
    if model_verdict:
        properties["answerable"] = {"type": "boolean"}
    # Only the task statement (and a verdict the model may give) must be written: a slot
    # left out keeps the offline writer's sentence, so a model pays only for what it
    # rewords, not for copying sentences it would not change.
    required = [key for key in ("task", "answerable") if key in properties]
    return {
        "type": "object",
        "additionalProperties": False,
        "required": required,
        "properties": properties,
    }


def validate_guided(
    text: str,
    baseline: AnswerDraft,
    plan: EvidencePlan,
    grounding: GroundingContext,
) -> tuple[GuidedDraft | None, list[str]]:
    """Parse and check the slots; return them, or None and every error found."""
    try:
        guided = GuidedDraft.model_validate_json(strip_fences(text), context=grounding)
    except ValidationError as exc:
        return None, [describe_error(error) for error in exc.errors(include_url=False)]
    errors = []
    steps = len(baseline.workflow.steps) if baseline.workflow else 0
    if guided.steps and len(guided.steps) != steps:
        errors.append(f"steps: write exactly {steps} step(s), one per planned step, in order")
    if guided.why and len(guided.why) != len(baseline.references):
        errors.append(
            f"why: write exactly {len(baseline.references)} sentence(s), one per "
            "planned reference, in order"
        )
    named = task_names(baseline, plan)
    if named and not any(name in guided.task.lower() for name in named):
        errors.append(f"task: name the task, as the draft does ({' or '.join(sorted(named))})")
    borderline = _borderline(plan)
    errors.extend(
        f"keep: {k.source_id} is not a borderline source; keep only "
        f"{', '.join(borderline) or 'none'}"
        for k in guided.keep
        if k.source_id not in borderline
    )
    return (None, errors) if errors else (guided, [])


def salvage_guided(
    text: str,
    baseline: AnswerDraft,
    plan: EvidencePlan,
    grounding: GroundingContext,
) -> tuple[GuidedDraft, list[str]]:
    """Keep every slot that passes on its own; the offline writer's sentence replaces the rest."""
    dropped: list[str] = []
    try:
        data = pydantic_core.from_json(strip_fences(text), allow_partial=True)
    except ValueError:
        data = None
    data = data if isinstance(data, dict) else {}
    fallback = _from_baseline(baseline)

    def slot(value: Any, adapter: TypeAdapter[Any], where: str, default: Any) -> Any:
        try:
            return adapter.validate_python(value, context=grounding)
        except ValidationError as exc:
            dropped.append(
                f"{where}: {describe_error(exc.errors(include_url=False)[0])}; the "
                "offline writer's text was used"
            )
            return default

    task = slot(data.get("task"), TASK_SLOT, "task", fallback.task)
    named = task_names(baseline, plan)
    if named and task is not fallback.task and not any(n in task.lower() for n in named):
        dropped.append("task: did not name the task; the offline writer's text was used")
        task = fallback.task
    steps = [
        slot(_item(data.get("steps"), n), _STEP, f"steps[{n}]", step)
        for n, step in enumerate(fallback.steps)
    ]
    why = [
        slot(_item(data.get("why"), n), WHY_SLOT, f"why[{n}]", reason)
        for n, reason in enumerate(fallback.why)
    ]
    borderline = set(_borderline(plan))
    keep = []
    for n, item in enumerate(data.get("keep") or [] if isinstance(data.get("keep"), list) else []):
        kept = slot(item, _KEEP, f"keep[{n}]", None)
        if kept is not None and kept.source_id in borderline:
            keep.append(kept)
    note = slot(data.get("note", ""), NOTE_SLOT, "note", fallback.note)
    # Every slot was validated on its own above (with the grounding context).
    return GuidedDraft.model_construct(
        task=task, steps=steps, why=why, keep=keep, note=note, answerable=None
    ), dropped


def merge_guided(
    guided: GuidedDraft,
    baseline: AnswerDraft,
    plan: EvidencePlan,
    grounding: GroundingContext,
    tails: DraftTails | None = None,
) -> AnswerDraft:
    """The full draft: the plan's structure (from the baseline) with the model's prose.

    A slot the model left out keeps the offline writer's sentence. ``tails`` are what the
    offline writer adds after a slot's sentence (a quoted summary sentence, a step's
    alternatives); the model was shown the draft without them, and they go back after
    its sentence. Check them with :func:`check_tails` first.
    """
    data = baseline.model_dump()
    data["task"]["statement"] = guided.task
    # An empty note is a note left out: a decline keeps the offline writer's reason.
    data["note"] = guided.note or baseline.note
    fallback = _from_baseline(baseline)
    steps, whys = guided.steps or fallback.steps, guided.why or fallback.why
    actions, said = (tails.actions, tails.why) if tails else ([], [])
    if baseline.workflow:
        data["workflow"]["steps"] = [
            {
                **step,
                **prose.model_dump(),
                "action": shorten(
                    with_tails(prose.action, *(_item(actions, n) or ())), ACTION_CHARS
                ),
            }
            for n, (step, prose) in enumerate(zip(data["workflow"]["steps"], steps, strict=True))
        ]
        if guided.steps:
            data["workflow"]["input"] = guided.steps[0].input
            data["workflow"]["output"] = guided.steps[-1].output
    data["references"] = [
        {**ref, "why": shorten(with_tails(why, _item(said, n) or ""), WHY_CHARS)}
        for n, (ref, why) in enumerate(zip(data["references"], whys, strict=True))
    ]
    cited = {ref["source_id"] for ref in data["references"]}
    room = MAX_REFERENCES - len(data["references"])
    data["references"] += [
        {"source_id": k.source_id, "why": k.why} for k in guided.keep if k.source_id not in cited
    ][: max(room, 0)]
    if guided.answerable is not None:
        data["answerable"] = guided.answerable
    return AnswerDraft.model_validate(data, context=grounding)


def check_tails(
    tails: DraftTails, baseline: AnswerDraft, grounding: GroundingContext
) -> tuple[DraftTails, list[str]]:
    """The tails that pass the grounding rules after their slot's sentence, and what was cut.

    The offline draft was checked without the guided prompt's instructions; a quoted
    sentence that happens to echo them, or breaks another rule, is left out here rather
    than sent to the model as an error it never wrote and cannot fix.
    """
    cut: list[str] = []
    steps = baseline.workflow.steps if baseline.workflow else []

    def keep(
        adapter: TypeAdapter[str], limit: int, sentence: str, parts: tuple[str, ...], where: str
    ) -> tuple[str, ...]:
        try:
            adapter.validate_python(shorten(with_tails(sentence, *parts), limit), context=grounding)
        except ValidationError as exc:
            cut.append(
                f"{where}: the sentence quoted from its source was left out: "
                f"{describe_error(exc.errors(include_url=False)[0])}"
            )
            return tuple("" for _ in parts)
        return parts

    actions = [
        keep(ACTION_SLOT, ACTION_CHARS, step.action, parts, f"steps[{n}].action")
        for n, (step, parts) in enumerate(zip(steps, tails.actions, strict=False))
    ]
    why = [
        keep(WHY_SLOT, WHY_CHARS, ref.why, (quote,), f"why[{n}]")[0]
        for n, (ref, quote) in enumerate(zip(baseline.references, tails.why, strict=False))
    ]
    return DraftTails(actions=[(a[0], a[1]) for a in actions], why=why), cut


def _from_baseline(baseline: AnswerDraft) -> GuidedDraft:
    steps = baseline.workflow.steps if baseline.workflow else []
    return GuidedDraft.model_construct(
        task=baseline.task.statement,
        steps=[
            GuidedStep.model_construct(input=s.input, action=s.action, output=s.output)
            for s in steps
        ],
        why=[r.why for r in baseline.references],
        keep=[],
        note=baseline.note,
        answerable=None,
    )


def task_names(baseline: AnswerDraft, plan: EvidencePlan) -> set[str]:
    """The plan's task names that the offline statement uses: a rewrite must keep one."""
    statement = baseline.task.statement.lower()
    return {t.name.lower() for t in plan.tasks if t.name.lower() in statement}


def _borderline(plan: EvidencePlan) -> list[str]:
    return [s.label for s in plan.sources if s.relevance is Relevance.BORDERLINE]


def _item(value: Any, n: int) -> Any:
    return value[n] if isinstance(value, list) and n < len(value) else None


_STEP: TypeAdapter[GuidedStep] = TypeAdapter(GuidedStep)
_KEEP: TypeAdapter[DraftReference] = TypeAdapter(DraftReference)

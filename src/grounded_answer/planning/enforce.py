"""Holding a written answer to its plan, whatever the backend wrote.

The plan decides whether the question is answerable; every recommended model runs a step
of the workflow and is cited; no source the plan ruled out is cited. What is restored
comes from the plan's own sentences and is validated like the backend's output, and every
restoration is named, so the validation report says what the backend got wrong.
"""

from __future__ import annotations

from ..grounding.draft import (
    ACTION_CHARS,
    WHY_CHARS,
    AnswerDraft,
    GroundingContext,
    shorten,
)
from .models import EvidencePlan, PlannedSource, Relevance

__all__ = ["hold_to_plan"]


def hold_to_plan(
    draft: AnswerDraft,
    plan: EvidencePlan,
    grounding: GroundingContext,
    *,
    model_verdict: bool = False,
) -> tuple[AnswerDraft, list[str]]:
    """The draft with the plan's invariants restored, and what had to be restored.

    Whatever the backend wrote, the plan decides whether the question is answerable,
    every recommended model runs a step of the workflow and is cited, and no source the
    plan ruled out is cited. What is added comes from the plan's own sentences and is
    validated like the backend's output.
    """
    notes: list[str] = []
    data = draft.model_dump()
    if (
        model_verdict
        and draft.answerable != plan.verdict.answerable
        and (not draft.answerable or draft.workflow)
    ):
        # answer.verdict = "model": a strong model may overrule the plan, on the record.
        notes.append(
            f"the model overruled the plan's verdict: "
            f"{'answerable' if draft.answerable else 'not answerable'}"
        )
        if not draft.answerable:
            data.update(
                workflow=None,
                references=[],
                note=draft.note or "The model judged the sources insufficient.",
            )
            data["task"]["source_ids"] = []
            return AnswerDraft.model_validate(data, context=grounding), notes
        plan = plan.model_copy(
            update={"verdict": plan.verdict.model_copy(update={"answerable": True})}
        )
    if not plan.verdict.answerable:
        if draft.answerable:
            notes.append("the backend's verdict was replaced by the plan's: not answerable")
        data.update(
            answerable=False, workflow=None, references=[], note=draft.note or plan.verdict.reason
        )
        data["task"]["source_ids"] = []
        return AnswerDraft.model_validate(data, context=grounding), notes
    if not draft.answerable:
        notes.append(
            "the backend declined a question the plan judged answerable; the "
            "plan's workflow and references were used"
        )
        data.update(workflow=None, references=[])
    labels = {s.label: s for s in plan.sources}
    workflow = data["workflow"]
    steps: list[dict[str, str]] = workflow["steps"] if workflow else []
    present = {step["source_id"] for step in steps}
    for step in plan.steps:
        if not {step.label, *step.alternatives} & present:
            notes.append(
                f"{step.label} (a recommended model) was missing from the "
                "workflow and was added from the plan"
            )
            steps.append(
                {
                    "source_id": step.label,
                    "input": step.input,
                    "action": shorten(step.action, ACTION_CHARS),
                    "output": step.output,
                }
            )
    order = {
        label: n
        for n, planned_step in enumerate(plan.steps)
        for label in (planned_step.label, *planned_step.alternatives)
    }
    steps.sort(key=lambda drafted: order.get(drafted["source_id"], len(order)))
    if steps and not workflow:
        data["workflow"] = {
            "input": steps[0]["input"],
            "steps": steps,
            "output": steps[-1]["output"],
        }
    references = [
        r
        for r in data["references"]
        if labels[r["source_id"]].relevance is not Relevance.NOT_RELEVANT
    ]
    if len(references) < len(data["references"]):
        notes.append("citations of sources the plan found not relevant were removed")
    cited = {r["source_id"] for r in references}
    for planned in plan.cited:
        if planned.relevance is Relevance.RECOMMENDED and planned.label not in cited:
            notes.append(
                f"{planned.label} (a recommended model) was missing from the "
                "references and was added from the plan"
            )
            references.append(_planned_reference(planned))
    if not references and plan.cited:
        references.append(_planned_reference(plan.cited[0]))
    data.update(answerable=True, references=references)
    return AnswerDraft.model_validate(data, context=grounding), notes


def _planned_reference(planned: PlannedSource) -> dict[str, str]:
    """A reference written from the plan's reason: "Is the recommended model; …"."""
    return {
        "source_id": planned.label,
        "why": shorten(planned.reason[:1].upper() + planned.reason[1:] + ".", WHY_CHARS),
    }

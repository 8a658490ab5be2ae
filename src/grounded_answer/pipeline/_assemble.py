"""The Answer, assembled from a validated draft, the source records and the run's record."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from ..answer import (
    Answer,
    Provenance,
    Reference,
    Task,
    ValidationReport,
    Workflow,
    WorkflowStep,
)
from ..errors import UngroundedAnswerError
from ..grounding.draft import ALIAS_RE, AnswerDraft, describe_error
from ..grounding.links import defang, link_key, scrub_links
from ..planning import EvidencePlan
from ..sources.corpus import Source

__all__ = ["Sections", "assemble_answer"]


def assemble_answer(
    question: str,
    draft: AnswerDraft,
    alias_to_source: dict[str, Source],
    ranked: list[tuple[Source, float]],
    report: ValidationReport,
    provenance: Provenance,
    plan: EvidencePlan,
) -> Answer:
    """The Answer users get: the draft's aliases resolved to source records.

    Titles and links come from the records, never from the draft; every alias the answer
    mentions anywhere gets a reference, so no marker dangles.
    """
    allowed = sorted({link for s in alias_to_source.values() for link in s.links})
    sections = Sections(alias_to_source, ranked, plan)
    workflow = (
        Workflow(
            input=draft.workflow.input, steps=sections.steps(draft), output=draft.workflow.output
        )
        if draft.workflow
        else None
    )
    references = sections.references(draft)
    report = report.model_copy(
        update={
            "repaired": [defang(e) for e in report.repaired],
            "dropped": [defang(e) for e in report.dropped],
            "unresolved": [defang(e) for e in report.unresolved],
        }
    )
    fields: dict[str, Any] = dict(
        question=defang(question),
        answerable=draft.answerable,
        task=Task(
            statement=draft.task.statement,
            source_ids=sections.task(draft).source_ids,
        ),
        workflow=workflow,
        references=references,
        note=draft.note,
        allowed_links=allowed,
        validation=report,
        provenance=provenance,
        plan=plan,
    )
    try:
        return Answer(**fields)
    except ValidationError as exc:
        # Every text was cleaned upstream; a link that still got through is made inert
        # here and reported, so it can neither reach the user nor fail the answer.
        where = describe_error(exc.errors(include_url=False)[0])
    keys = frozenset(link_key(link) for link in allowed)
    data = Answer.model_construct(**fields).model_dump(mode="json")
    data = _inert(data, keys)
    data["validation"]["dropped"] = [
        *data["validation"]["dropped"],
        f"a link outside the sources was made inert ({where})",
    ]
    data["allowed_links"] = allowed
    try:
        return Answer.model_validate(data)
    except ValidationError as exc:
        raise UngroundedAnswerError(
            "the answer held a link outside its sources that could not be made inert; it "
            "was not shown",
            attempts=[],
            detail=defang(describe_error(exc.errors(include_url=False)[0])),
        ) from None


def _inert(value: Any, keys: frozenset[str]) -> Any:
    """Every string in ``value`` with the links outside ``keys`` taken out."""
    if isinstance(value, str):
        return scrub_links(value, keys)[0]
    if isinstance(value, dict):
        return {key: _inert(item, keys) for key, item in value.items()}
    if isinstance(value, list):
        return [_inert(item, keys) for item in value]
    return value


class Sections:
    """The answer's sections built from a draft: titles and links from the records.

    Used for the Answer itself and for the sections a stream shows while the rest is
    still being written, so both are made the same way.
    """

    def __init__(
        self,
        alias_to_source: dict[str, Source],
        ranked: list[tuple[Source, float]],
        plan: EvidencePlan,
    ) -> None:
        self.sources = alias_to_source
        self.score = {source.id: value for source, value in ranked}
        # Titles come from records, which may be hostile: the plan's are quarantined and
        # scrubbed of links; prose was validated already.
        self.title_of = {p.source_id: p.title for p in plan.sources}
        self.alternatives = {step.label: step.alternatives for step in plan.steps}

    def task(self, draft: AnswerDraft) -> Task:
        """Section 1."""
        return Task(
            statement=draft.task.statement,
            source_ids=[
                self.sources[a].id
                for a in dict.fromkeys(draft.task.source_ids)
                if a in self.sources
            ],
        )

    def steps(self, draft: AnswerDraft) -> list[WorkflowStep]:
        """Section 2's steps."""
        if not draft.workflow:
            return []
        return [
            WorkflowStep(
                id=f"step{n}",
                source_id=self.sources[step.source_id].id,
                model=self.title_of[self.sources[step.source_id].id],
                input=step.input,
                action=step.action,
                output=step.output,
                alternatives=[
                    self.sources[a].id
                    for a in self.alternatives.get(step.source_id, [])
                    if a in self.sources
                ],
            )
            for n, step in enumerate(draft.workflow.steps, start=1)
        ]

    def references(self, draft: AnswerDraft) -> list[Reference]:
        """Section 3: every alias the answer mentions anywhere, so no marker dangles."""
        why = {ref.source_id: ref.why for ref in reversed(draft.references)}
        cited = list(dict.fromkeys(ref.source_id for ref in draft.references))
        texts = [draft.task.statement, draft.note]
        if draft.workflow:
            texts += [draft.workflow.input, draft.workflow.output]
            texts += [
                f"{s.input} {s.action} {s.output} {s.source_id}" for s in draft.workflow.steps
            ]
        mentioned = [
            *draft.task.source_ids,
            *(m.group(0) for t in texts for m in ALIAS_RE.finditer(t)),
        ]
        for alias in mentioned:
            if alias in self.sources and alias not in cited:
                cited.append(alias)
                why.setdefault(alias, "Cited in the answer.")
        return [
            Reference(
                label=alias,
                source_id=self.sources[alias].id,
                title=self.title_of[self.sources[alias].id],
                role=self.sources[alias].role,
                url=self.sources[alias].links[0],
                paper_url=self.sources[alias].paper_url,
                github_url=self.sources[alias].github_url,
                why=why[alias],
                score=self.score.get(self.sources[alias].id),
            )
            for alias in cited
        ]

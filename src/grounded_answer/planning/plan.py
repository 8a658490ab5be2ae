"""The evidence plan: which sources are in play and why, the verdict, the workflow skeleton.

It is computed once per question, deterministically, from the sources and retrieval,
before any backend writes a word, and every backend writes from it: the stub turns it into
prose, a language model gets it in its prompt and is held to its invariants
(:mod:`.enforce`). With a language model configured, the model then reads each source and
judges it (:mod:`.judge`), and the plan keeps its invariants whatever the model says.

Invariants, whatever ``retrieval.k`` is:

- every recommended model is in the plan, the prompt, the workflow and the references;
- a related paper is never a step of the workflow, nor presented as a recommended model;
- steps run in the order their data flows (a model that reads text runs after the one
  that turns speech or an image into text).

How each related paper is judged is :mod:`.relevance`; the plan's types are :mod:`.models`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Literal

from ..sources.corpus import Role, Source
from ..sources.tasks import TaskHint, expand_name, name_prefix_words, tasks_in_order
from .language import read_question
from .models import (
    Evidence,
    EvidencePlan,
    PlannedSource,
    PlannedStep,
    QuestionReading,
    Relevance,
    TaskCandidate,
    Verdict,
)
from .relevance import (
    agreement_of,
    evidence_for,
    judge_paper,
    named_relation,
    ruled,
    title_says,
)

__all__ = ["PARTIAL_READING", "make_plan"]

# A question in Latin script that is not English is read only in part by the embedding
# model: its similarity threshold is scaled by this factor.
PARTIAL_READING = 0.5


def make_plan(
    question: str,
    sources: Sequence[Source],
    question_scores: Mapping[str, float],
    model_scores: Mapping[str, float] | None,
    *,
    min_score: float,
    titles: Mapping[str, str] | None = None,
    restated: str | None = None,
) -> EvidencePlan:
    """The evidence plan for ``question`` over the sources in play.

    Args:
        question: The question as the user asked it.
        sources: The sources in play, in corpus order.
        question_scores: Best cosine of each source to the question (missing = not retrieved).
        model_scores: Best cosine of each source to any recommended model's passages, or
            None when those vectors are not at hand (a large store).
        min_score: The cosine below which an English question is not covered.
        titles: Display titles (made safe by the caller) by source id; default the records'.
        restated: The question restated in English by a language model, when the embedding
            model could not read it; the scores were computed for this text.

    """
    reading = read_question(question)
    if restated:
        reading = reading.model_copy(update={"restated": restated})
    titles = titles or {}
    models = [s for s in sources if s.role is Role.MODEL]
    papers = [s for s in sources if s.role is not Role.MODEL]
    question_tasks = tasks_in_order(restated or question)
    model_tasks = {s.id: _model_tasks(s) for s in models}
    all_model_tasks = {hint for hints in model_tasks.values() for hint in hints}
    if models and not all_model_tasks:
        # No model's name says its task: the platform recommended it for this question,
        # so the task the question describes stands in for it.
        all_model_tasks = set(question_tasks[:2])
    else:
        # The question's first task leads (what the user did: enlarging, beside the model's
        # deblurring), unless it is far from anything the models do and a later one is
        # close: "colour in the liver on the CT" is segmentation that names a colour, not
        # colourisation (a restated Korean question, 1.5B model).
        families = {hint.family for hint in all_model_tasks if hint.family}

        def close(hint: TaskHint) -> bool:
            return hint in all_model_tasks or hint.family in families

        if question_tasks and not close(question_tasks[0]):
            question_tasks = tuple(sorted(question_tasks, key=lambda h: not close(h)))
    best_paper = max((question_scores.get(p.id, -1.0) for p in papers), default=-1.0)
    # What the names of models of unknown task say, for papers whose titles say it too.
    # Also when the name says more than the task the table reads in it: "ChangeDet" is
    # change detection, not any object detection; "TextDet" finds text.
    name_says = {
        s.id: words
        for s in models
        for words in [_name_says(s)]
        if words and not (model_tasks[s.id] and title_says(model_tasks[s.id][0].name, words))
    }
    said = [(titles.get(s.id, s.title), name_says[s.id]) for s in models if s.id in name_says]

    judged: list[tuple[Source, Relevance, str, Evidence]] = []
    for model in models:
        hints = model_tasks[model.id]
        judged.append(
            (
                model,
                Relevance.RECOMMENDED,
                f"is the recommended model; it does {hints[0].name}"
                if hints
                else "is the platform's recommended model",
                ruled(
                    evidence_for(model, question_scores, None, reading, hints, "same task"),
                    "recommended",
                ),
            )
        )
    for paper in papers:
        tasks = tasks_in_order(expand_name(paper.title)) or tasks_in_order(paper.summary)
        said_by_name = named_relation(paper, tasks, models, all_model_tasks, titles)
        if said_by_name is not None:
            evidence = evidence_for(
                paper,
                question_scores,
                model_scores.get(paper.id) if model_scores else None,
                reading,
                tasks,
                agreement_of(tasks[:2], all_model_tasks, question_tasks),
            )
            rule = (
                "built on"
                if said_by_name.startswith("is what")
                else "architecture"
                if said_by_name.startswith("introduced")
                else "name part"
            )
            judged.append((paper, Relevance.RELEVANT, said_by_name, ruled(evidence, rule)))
            continue
        judged.append(
            judge_paper(
                paper,
                question_scores,
                model_scores,
                reading,
                question_tasks,
                all_model_tasks,
                bool(models),
                best_paper,
                said,
            )
        )

    order = {
        Relevance.RECOMMENDED: 0,
        Relevance.RELEVANT: 1,
        Relevance.BORDERLINE: 2,
        Relevance.NOT_RELEVANT: 3,
    }
    position = {s.id: n for n, s in enumerate(sources)}

    def rank(item: tuple[Source, Relevance, str, Evidence]) -> tuple[int, float, int]:
        # Models in the platform's order; papers by how close they are, closest first.
        source, relevance, _, evidence = item
        closeness = (
            0.0
            if relevance is Relevance.RECOMMENDED
            else -(evidence.model_score or evidence.question_score or 0.0)
        )
        return order[relevance], closeness, position[source.id]

    judged.sort(key=rank)
    planned = [
        PlannedSource(
            label=f"S{n}",
            source_id=source.id,
            title=titles.get(source.id, source.title),
            role=source.role,
            relevance=relevance,
            reason=reason,
            evidence=evidence.model_copy(update={"name_says": name_says[source.id]})
            if source.id in name_says
            else evidence,
        )
        for n, (source, relevance, reason, evidence) in enumerate(judged, start=1)
    ]
    verdict = _verdict(reading, planned, question_scores, min_score)
    label_of = {p.source_id: p.label for p in planned}
    candidates = _candidates(question_tasks, models, model_tasks, planned, papers)
    # Without a recommended model in play (a corpus of papers), the best relevant source
    # is the one step, as before there was a plan.
    best = planned[0] if planned and planned[0].relevance is not Relevance.NOT_RELEVANT else None
    leading = models or [s for s in sources if best is not None and s.id == best.source_id]
    tasks_of = model_tasks if models else {s.id: _model_tasks(s) for s in leading}
    skeleton = _skeleton(leading, tasks_of, label_of, candidates)
    plan = EvidencePlan(
        question=reading,
        verdict=verdict,
        tasks=candidates,
        sources=planned,
        steps=skeleton if verdict.answerable else [],
    )
    plan._skeleton = skeleton  # a judge that finds the question covered draws these steps
    return plan


def _verdict(
    reading: QuestionReading,
    planned: list[PlannedSource],
    question_scores: Mapping[str, float],
    min_score: float,
) -> Verdict:
    if not planned:
        return Verdict(
            answerable=False, basis="no sources", reason="No source was provided for this question."
        )
    best = max(question_scores.values(), default=-1.0)
    models = [p for p in planned if p.relevance is Relevance.RECOMMENDED]
    if reading.restated and best >= min_score:
        return Verdict(
            answerable=True,
            basis="similarity",
            reason=(
                f"The question, restated in English for the embedding model, matches the best "
                f"source with similarity {best:.2f}."
            ),
        )
    if not reading.readable:
        # A weak match of a restatement may be the restatement's fault (a small model's
        # English), so only a strong match counts; otherwise the recommendation decides.
        if models:
            return Verdict(
                answerable=True,
                basis="recommendation",
                reason=(
                    f"The question is written in {reading.script} script, which the embedding "
                    "model cannot read, so similarity scores were not used; the answer follows "
                    "the platform's recommendation and the sources' own text."
                ),
            )
        return Verdict(
            answerable=False,
            basis="recommendation",
            reason=(
                f"The question is written in {reading.script} script, which the embedding model "
                "cannot read, and no recommended model was provided to answer from."
            ),
        )
    threshold = min_score if reading.english else min_score * PARTIAL_READING
    language = (
        ""
        if reading.english
        else f" (the question is not in English, so a lower threshold of {threshold:.2f} applies)"
    )
    if best >= threshold:
        return Verdict(
            answerable=True,
            basis="similarity",
            reason=(f"The best source matches the question with similarity {best:.2f}{language}."),
        )
    return Verdict(
        answerable=False,
        basis="similarity",
        reason=(
            f"The provided sources do not cover this question: the best match has similarity "
            f"{best:.2f}, below {threshold:.2f}{language}."
        ),
    )


def _candidates(
    question_tasks: tuple[TaskHint, ...],
    models: list[Source],
    model_tasks: Mapping[str, tuple[TaskHint, ...]],
    planned: list[PlannedSource],
    papers: list[Source],
) -> list[TaskCandidate]:
    found: dict[tuple[str, str], TaskCandidate] = {}

    def add(hint: TaskHint, origin: Literal["question", "model", "papers"], ids: list[str]) -> None:
        key = (hint.name, origin)
        if key in found:
            found[key].source_ids.extend(i for i in ids if i not in found[key].source_ids)
        else:
            found[key] = TaskCandidate(
                name=hint.name,
                origin=origin,
                source_ids=list(ids),
                input=hint.input,
                output=hint.output,
                action=hint.action,
            )

    for hint in question_tasks[:2]:
        add(hint, "question", [])
    for model in models:
        for hint in model_tasks[model.id][:1]:
            add(hint, "model", [model.id])
    if not any(model_tasks[m.id] for m in models):
        # An opaque model name: its task is what the relevant papers are about.
        relevant = {p.source_id for p in planned if p.relevance is Relevance.RELEVANT}
        for paper in papers:
            if paper.id in relevant:
                for hint in (
                    tasks_in_order(expand_name(paper.title))[:1]
                    or tasks_in_order(paper.summary)[:1]
                ):
                    add(hint, "papers", [paper.id])
    return list(found.values())


def _skeleton(
    models: list[Source],
    model_tasks: Mapping[str, tuple[TaskHint, ...]],
    label_of: Mapping[str, str],
    candidates: list[TaskCandidate],
) -> list[PlannedStep]:
    fallback = next((c for c in candidates if c.origin == "papers"), None) or next(
        (c for c in candidates if c.origin == "question"), None
    )
    # One step per distinct task; models that share a task are alternatives for it, so
    # the graph never chains two deblurring models.
    groups: dict[str, list[Source]] = {}
    hint_of: dict[str, TaskHint | None] = {}
    for model in models:
        hints = model_tasks[model.id]
        key = hints[0].name if hints else (fallback.name if fallback else model.id)
        groups.setdefault(key, []).append(model)
        hint_of.setdefault(key, hints[0] if hints else None)
    ordered = _flow_order(list(groups), hint_of)
    steps: list[PlannedStep] = []
    current = None
    for key in ordered:
        main, *others = groups[key]
        hint = hint_of[key]
        if hint is not None:
            task, given, action, output = hint.name, hint.input, hint.action, hint.output
        elif fallback is not None:
            task, given, action, output = (
                fallback.name,
                fallback.input,
                fallback.action,
                fallback.output,
            )
        else:
            task, given, action, output = (
                None,
                "the user's data",
                "processes it",
                "the model's output",
            )
        steps.append(
            PlannedStep(
                label=label_of[main.id],
                source_id=main.id,
                task=task,
                input=current or given,
                action=action,
                output=output,
                alternatives=[label_of[o.id] for o in others],
            )
        )
        current = output
    return steps


def _flow_order(keys: list[str], hint_of: Mapping[str, TaskHint | None]) -> list[str]:
    """Order tasks so each one runs after the task that turns other data into its input.

    Translation (text to text) waits for OCR (image to text); two image-to-image tasks
    keep the order the platform gave.
    """
    remaining = list(keys)
    ordered: list[str] = []
    while remaining:

        def waits(key: str) -> bool:
            hint = hint_of[key]
            return hint is not None and any(
                other is not None and other.gives == hint.takes and other.takes != other.gives
                for other in (hint_of[k] for k in remaining if k != key)
            )

        pick = next((k for k in remaining if not waits(k)), remaining[0])
        ordered.append(pick)
        remaining.remove(pick)
    return ordered


def _model_tasks(model: Source) -> tuple[TaskHint, ...]:
    """The one task a model performs, as far as its sources tell.

    The platform's name says most (Deblur-, ASR-); a summary overrules an ambiguous name
    ("VSR-" is lip reading in one catalogue, video super-resolution in another); a
    repository name comes last, since product names hide letters that read as tasks
    ("TripoSR").
    """
    named = tasks_in_order(expand_name(model.title))[:1]
    described = tasks_in_order(model.summary)[:1]
    if described and named and named[0] not in tasks_in_order(model.summary):
        return described
    repo = model.github_url.rstrip("/").rsplit("/", 1)[-1] if model.github_url else ""
    return named or described or tasks_in_order(expand_name(repo))[:1]


def _name_says(model: Source) -> str:
    """The words of a model name's task prefix, unless they are its product's name.

    "HTDemucs-v4" starts with the product, not a task: a part of the prefix that its own
    repository or paper link spells ("demucs") marks it as a product name.
    """
    words = name_prefix_words(model.title)
    links = " ".join(link.lower() for link in model.links)
    parts = re.findall(r"[a-z]{4,}", words.lower())
    return "" if not words or any(part in links for part in parts) else words


# Words that add nothing to what a name says ("automatic speech recognition" is speech
# recognition).

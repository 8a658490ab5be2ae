"""The evidence plan: which sources are in play and why, the verdict, the workflow skeleton.

It is computed once per question, deterministically, from the sources and retrieval,
before any backend writes a word, and every backend writes from it: the stub turns it into
prose, a language model gets it in its prompt and is held to its invariants. It is also
part of the :class:`~grounded_answer.answer.Answer`, so a platform can show why a paper
was or was not cited.

Invariants, whatever ``retrieval.k`` is:

- every recommended model is in the plan, the prompt, the workflow and the references;
- a related paper is never a step of the workflow, nor presented as a recommended model;
- steps run in the order their data flows (a model that reads text runs after the one
  that turns speech or an image into text).

Relevance is judged per source, not per passage, from three kinds of evidence, each
recorded with the judgement:

1. *Task agreement*: the tasks a paper's title names (:mod:`grounded_answer.task_table`)
   against the recommended models' tasks and the task the question describes. The same
   task is strong evidence; another task on the same kind of data is weak; another kind
   of data (an audio paper for an image model) rules a paper out.
2. *Model affinity*: the best cosine between the paper's passages and the recommended
   models' passages. It needs no question, so it still works when the question is in a
   language the embedding model cannot read, and it is what decides when a title names
   no task.
3. *Question similarity*: the best cosine between the paper and the question, shown as
   evidence and used alone only when there is no recommended model to compare with.

The thresholds were tuned on ``benchmarks/bundles/dev`` only; ``test`` is the held-out
split that README reports.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from enum import StrEnum
from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from .corpus import Role, Source
from .task_table import (
    TaskHint,
    architecture_of,
    expand_name,
    name_prefix_words,
    tasks_in_order,
)

__all__ = [
    "LANGUAGE_NAMES",
    "Evidence",
    "EvidencePlan",
    "PlannedSource",
    "PlannedStep",
    "QuestionReading",
    "Relevance",
    "TaskCandidate",
    "Verdict",
    "make_plan",
    "read_question",
]

# A paper whose title names no task is relevant when its passages are this close to a
# recommended model's (cosine), or this close and about a task the summary shares with
# the models or the question; borderline above the lower mark.
AFFINITY_RELEVANT = 0.45
AFFINITY_TASK = 0.30
AFFINITY_BORDERLINE = 0.33
# A paper this close to the question (cosine) is about what the question asks, whatever
# the recommended model's task: the tracker for "then follow each car from frame to
# frame" when the model is a detector.
QUESTION_CLOSE = 0.45
# Without recommended models to compare with (a corpus whose retrieval found none), a
# paper is relevant when it scores within this margin of the best paper.
QUESTION_MARGIN = 0.12
# A question in Latin script that is not English is read only in part by the embedding
# model: its similarity threshold is scaled by this factor.
PARTIAL_READING = 0.5

Agreement = Literal["same task", "question's task", "same family", "same data", "other data",
                    "unknown"]


class Relevance(StrEnum):
    """How a source bears on the answer."""

    RECOMMENDED = "recommended"
    RELEVANT = "relevant"
    BORDERLINE = "borderline"
    NOT_RELEVANT = "not_relevant"


class Evidence(BaseModel):
    """The measurements a relevance judgement rests on."""

    model_config = ConfigDict(frozen=True)

    question_score: float | None = Field(
        default=None, description="Best cosine between the source and the question; None "
        "when the question could not be read by the embedding model."
    )
    model_score: float | None = Field(
        default=None, description="Best cosine between the source and a recommended model "
        "(None for the models themselves, or when no model is in play)."
    )
    tasks: list[str] = Field(default_factory=list, description="Tasks the source names.")
    name_says: str = Field(
        default="", description="For a recommended model: what the first part of its name "
        "spells out ('LowLight-' -> 'low light'), when the task table knows no task for it "
        "or a less specific one ('ChangeDet-' -> 'change detection', read as object "
        "detection)."
    )
    agreement: Agreement = Field(
        default="unknown", description="How those tasks relate to the recommended models'."
    )


class PlannedSource(BaseModel):
    """One source in play, with the plan's judgement of it."""

    model_config = ConfigDict(frozen=True)

    label: str = Field(description="The marker answers use for it: S1, S2, ...")
    source_id: str
    title: str
    role: Role
    relevance: Relevance
    reason: str = Field(description="One line a user can follow.")
    evidence: Evidence

    @property
    def cited(self) -> bool:
        """Whether a grounded answer cites it (recommended or relevant)."""
        return self.relevance in (Relevance.RECOMMENDED, Relevance.RELEVANT)


class QuestionReading(BaseModel):
    """What the embedding model can make of the question's language."""

    model_config = ConfigDict(frozen=True)

    script: str = Field(description="The Unicode script of most of its letters.")
    language: str = Field(default="en", description="ISO 639-1 code of its language.")
    english: bool = Field(description="Latin script with the function words of English.")
    readable: bool = Field(
        description="False when the embedding model cannot read the script, so cosine "
        "similarity to the question says nothing."
    )
    restated: str | None = Field(
        default=None, description="The English restatement retrieval used instead, if any."
    )


class Verdict(BaseModel):
    """Whether the sources cover the question, and on what grounds."""

    model_config = ConfigDict(frozen=True)

    answerable: bool
    reason: str
    basis: Literal["similarity", "recommendation", "no sources"]


class TaskCandidate(BaseModel):
    """A task the question or the sources point to."""

    model_config = ConfigDict(frozen=True)

    name: str
    origin: Literal["question", "model", "papers"]
    source_ids: list[str] = Field(default_factory=list)
    input: str
    output: str
    action: str


class PlannedStep(BaseModel):
    """A node of the workflow skeleton: one recommended model (with its alternatives)."""

    model_config = ConfigDict(frozen=True)

    label: str
    source_id: str
    task: str | None = Field(description="The step's task, when its sources name one.")
    input: str
    action: str
    output: str
    alternatives: list[str] = Field(
        default_factory=list, description="Labels of recommended models for the same task."
    )


class EvidencePlan(BaseModel):
    """Sources in play with reasons, the verdict, task candidates and the workflow skeleton."""

    model_config = ConfigDict(frozen=True)

    question: QuestionReading
    verdict: Verdict
    tasks: list[TaskCandidate]
    sources: list[PlannedSource]
    steps: list[PlannedStep]

    def source(self, label: str) -> PlannedSource:
        """The planned source with this label."""
        return next(s for s in self.sources if s.label == label)

    @property
    def cited(self) -> list[PlannedSource]:
        """Sources an answer cites: the recommended models, then the relevant papers."""
        return [s for s in self.sources if s.cited] if self.verdict.answerable else []

    @property
    def in_prompt(self) -> list[PlannedSource]:
        """Sources a backend sees: everything but what the plan ruled out."""
        return [s for s in self.sources if s.relevance is not Relevance.NOT_RELEVANT]

    def why_line(self) -> str:
        """One line for users: why these sources, and why not the others."""
        if not self.verdict.answerable:
            return self.verdict.reason
        parts = [f"{s.label} {s.reason}" for s in self.cited]
        left = [s for s in self.sources if not s.cited]
        line = "; ".join(parts) + "."
        if left:
            line += " Not cited: " + "; ".join(f"{s.title} ({s.reason})" for s in left) + "."
        return line


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
    best_paper = max((question_scores.get(p.id, -1.0) for p in papers), default=-1.0)
    # What the names of models of unknown task say, for papers whose titles say it too.
    # Also when the name says more than the task the table reads in it: "ChangeDet" is
    # change detection, not any object detection; "TextDet" finds text.
    name_says = {s.id: words for s in models for words in [_name_says(s)]
                 if words and not (model_tasks[s.id] and _title_says(model_tasks[s.id][0].name,
                                                                     words))}
    said = [(titles.get(s.id, s.title), name_says[s.id]) for s in models if s.id in name_says]

    judged: list[tuple[Source, Relevance, str, Evidence]] = []
    for model in models:
        hints = model_tasks[model.id]
        judged.append((model, Relevance.RECOMMENDED,
                       f"is the recommended model; it does {hints[0].name}" if hints else
                       "is the platform's recommended model",
                       _evidence(model, question_scores, None, reading, hints, "same task")))
    for paper in papers:
        tasks = tasks_in_order(expand_name(paper.title)) or tasks_in_order(paper.summary)
        said_by_name = _named_relation(paper, tasks, models, all_model_tasks, titles)
        if said_by_name is not None:
            evidence = _evidence(paper, question_scores, model_scores.get(paper.id)
                                 if model_scores else None, reading, tasks,
                                 _agreement(tasks[:2], all_model_tasks, question_tasks))
            judged.append((paper, Relevance.RELEVANT, said_by_name, evidence))
            continue
        judged.append(_judge_paper(paper, question_scores, model_scores, reading,
                                   question_tasks, all_model_tasks, bool(models), best_paper,
                                   said))

    order = {Relevance.RECOMMENDED: 0, Relevance.RELEVANT: 1, Relevance.BORDERLINE: 2,
             Relevance.NOT_RELEVANT: 3}
    position = {s.id: n for n, s in enumerate(sources)}

    def rank(item: tuple[Source, Relevance, str, Evidence]) -> tuple[int, float, int]:
        # Models in the platform's order; papers by how close they are, closest first.
        source, relevance, _, evidence = item
        closeness = 0.0 if relevance is Relevance.RECOMMENDED else -(
            evidence.model_score or evidence.question_score or 0.0)
        return order[relevance], closeness, position[source.id]

    judged.sort(key=rank)
    planned = [
        PlannedSource(label=f"S{n}", source_id=source.id,
                      title=titles.get(source.id, source.title), role=source.role,
                      relevance=relevance, reason=reason,
                      evidence=evidence.model_copy(update={"name_says": name_says[source.id]})
                      if source.id in name_says else evidence)
        for n, (source, relevance, reason, evidence) in enumerate(judged, start=1)
    ]
    verdict = _verdict(reading, planned, question_scores, min_score)
    label_of = {p.source_id: p.label for p in planned}
    candidates = _candidates(question_tasks, models, model_tasks, planned, papers)
    # Without a recommended model in play (a corpus of papers), the best relevant source
    # is the one step, as before there was a plan.
    best = planned[0] if planned and planned[0].relevance is not Relevance.NOT_RELEVANT \
        else None
    leading = models or [s for s in sources if best is not None and s.id == best.source_id]
    tasks_of = model_tasks if models else {s.id: _model_tasks(s) for s in leading}
    steps = _skeleton(leading, tasks_of, label_of, candidates) if verdict.answerable else []
    return EvidencePlan(question=reading, verdict=verdict, tasks=candidates, sources=planned,
                        steps=steps)


def _named_relation(
    paper: Source,
    tasks: Sequence[TaskHint],
    models: Sequence[Source],
    model_tasks: set[TaskHint],
    titles: Mapping[str, str],
) -> str | None:
    """Why a paper is relevant by what it is, not by scores: the reason, or None.

    ``tasks`` are the paper's (its title's, else its summary's).

    The model's name names the paper's method ("BLIP2-OPT" and "OPT: ..."); the paper
    introduced an architecture for the data the model reads (the Transformer, ResNet); or
    the paper names a part of the model's name (its backbone or training data: "BERT",
    "SIDD").
    """
    base = _built_on(paper, models)
    if base is not None:
        return f"is what {titles.get(base.id, base.title)} is built on (its name says so)"
    arch = architecture_of(paper.title)
    reads = {h.takes for h in model_tasks} & (arch.reads if arch else frozenset())
    if arch is not None and models and reads:
        return (f"introduced the {arch.name}, an architecture {'/'.join(sorted(reads))} "
                "models like the recommended one are built on")
    mention = _named_in(paper, models)
    if mention is not None and _agreement(tasks[:2], model_tasks, ()) != "other data":
        # A name in passing ("like BERT") does not make an image paper about text.
        model, name = mention
        return (f"names {name}, which {titles.get(model.id, model.title)}'s name says it is "
                "built on or trained on")
    return None


def _judge_paper(
    paper: Source,
    question_scores: Mapping[str, float],
    model_scores: Mapping[str, float] | None,
    reading: QuestionReading,
    question_tasks: tuple[TaskHint, ...],
    model_tasks: set[TaskHint],
    have_models: bool,
    best_paper: float,
    said: Sequence[tuple[str, str]] = (),
) -> tuple[Source, Relevance, str, Evidence]:
    title_tasks = tasks_in_order(expand_name(paper.title))
    summary_tasks = tasks_in_order(paper.summary)
    affinity = model_scores.get(paper.id) if model_scores is not None else None
    agreement = _agreement(title_tasks or summary_tasks[:2], model_tasks, question_tasks)
    evidence = _evidence(paper, question_scores, affinity, reading, title_tasks or summary_tasks,
                         agreement)
    named = title_tasks[0].name if title_tasks else ""
    if not have_models or affinity is None:
        score = question_scores.get(paper.id)
        if score is not None and score >= best_paper - QUESTION_MARGIN and (
            agreement in ("same task", "question's task", "unknown")
        ):
            return paper, Relevance.RELEVANT, "is among the closest matches to the question", \
                evidence
        return paper, Relevance.BORDERLINE, "matches the question less closely", evidence
    # The question's own task counts when it is a close kin of the models' (the user
    # enlarged a photo, the model deblurs one); a word like "noise" in a question about
    # image generation must not pull in a denoising paper.
    families = {h.family for h in model_tasks}
    kin = {h for h in question_tasks if h.family in families or not model_tasks}
    shared = set(title_tasks) & (model_tasks | kin)
    if shared:
        name = next(h.name for h in title_tasks if h in shared)
        whose = "the recommended model's task" if any(h in model_tasks for h in shared) \
            else "what the question describes"
        return paper, Relevance.RELEVANT, f"is on {name}, {whose}", evidence
    for model_title, words in said:
        if _title_says(paper.title, words):
            # The table knows no task here, but the paper's title says what the model's
            # name says ("LowLight-" and "... for Low-Light Enhancement").
            return paper, Relevance.RELEVANT, f"names {words}, what {model_title}'s name " \
                "says it is for", evidence
    if agreement == "other data":
        kinds = "/".join(sorted({m for h in title_tasks or summary_tasks[:2]
                                 for m in h.modalities}))
        return paper, Relevance.NOT_RELEVANT, f"is about {named or 'other'} ({kinds} data), " \
            "not the data the recommended model works on", evidence
    if reading.language == "en" and (evidence.question_score or 0.0) >= QUESTION_CLOSE:
        # Only for a question read as asked: a model's English restatement is plainer and
        # scores higher against everything (it pulled a music generator into karaoke).
        return paper, Relevance.RELEVANT, "is close to what the question asks about", evidence
    if title_tasks:
        mark = Relevance.BORDERLINE if affinity >= AFFINITY_BORDERLINE else \
            Relevance.NOT_RELEVANT
        return paper, mark, f"is about {named}, a different task", evidence
    on_task = [h for h in summary_tasks if h in model_tasks | kin]
    if affinity >= AFFINITY_RELEVANT or (on_task and affinity >= AFFINITY_TASK):
        if not on_task:
            return paper, Relevance.RELEVANT, "is close in content to the recommended " \
                "model", evidence
        decisive = on_task[0]
        # The decisive task first, so a writer quotes the sentence that names it.
        evidence = evidence.model_copy(update={"tasks": list(dict.fromkeys(
            [decisive.name, *evidence.tasks]))})
        whose = "" if decisive in model_tasks else ", what the question describes"
        return paper, Relevance.RELEVANT, f"is related work on {decisive.name}{whose}", \
            evidence
    if affinity >= AFFINITY_BORDERLINE:
        return paper, Relevance.BORDERLINE, "is only loosely related to the recommended " \
            "model", evidence
    return paper, Relevance.NOT_RELEVANT, "is not about the recommended model's task", evidence


def _agreement(
    tasks: Sequence[TaskHint], model_tasks: set[TaskHint], question_tasks: Sequence[TaskHint]
) -> Agreement:
    if not tasks or not model_tasks:
        return "unknown"
    if set(tasks) & model_tasks:
        return "same task"
    if set(tasks) & set(question_tasks):
        return "question's task"
    if {h.family for h in tasks} & {h.family for h in model_tasks}:
        return "same family"
    model_data = {m for h in model_tasks for m in h.modalities}
    if {m for h in tasks for m in h.modalities} & model_data:
        return "same data"
    return "other data"


def _evidence(
    source: Source,
    question_scores: Mapping[str, float],
    affinity: float | None,
    reading: QuestionReading,
    tasks: Sequence[TaskHint],
    agreement: Agreement,
) -> Evidence:
    score = question_scores.get(source.id)
    return Evidence(
        question_score=round(score, 4) if score is not None and (
            reading.readable or reading.restated) else None,
        model_score=round(affinity, 4) if affinity is not None else None,
        tasks=list(dict.fromkeys(h.name for h in tasks)),
        agreement=agreement,
    )


def _verdict(
    reading: QuestionReading,
    planned: list[PlannedSource],
    question_scores: Mapping[str, float],
    min_score: float,
) -> Verdict:
    if not planned:
        return Verdict(answerable=False, basis="no sources",
                       reason="No source was provided for this question.")
    best = max(question_scores.values(), default=-1.0)
    models = [p for p in planned if p.relevance is Relevance.RECOMMENDED]
    if reading.restated and best >= min_score:
        return Verdict(answerable=True, basis="similarity", reason=(
            f"The question, restated in English for the embedding model, matches the best "
            f"source with similarity {best:.2f}."))
    if not reading.readable:
        # A weak match of a restatement may be the restatement's fault (a small model's
        # English), so only a strong match counts; otherwise the recommendation decides.
        if models:
            return Verdict(answerable=True, basis="recommendation", reason=(
                f"The question is written in {reading.script} script, which the embedding "
                "model cannot read, so similarity scores were not used; the answer follows "
                "the platform's recommendation and the sources' own text."))
        return Verdict(answerable=False, basis="recommendation", reason=(
            f"The question is written in {reading.script} script, which the embedding model "
            "cannot read, and no recommended model was provided to answer from."))
    threshold = min_score if reading.english else min_score * PARTIAL_READING
    language = "" if reading.english else " (the question is not in English, so a lower " \
        f"threshold of {threshold:.2f} applies)"
    if best >= threshold:
        return Verdict(answerable=True, basis="similarity", reason=(
            f"The best source matches the question with similarity {best:.2f}{language}."))
    return Verdict(answerable=False, basis="similarity", reason=(
        f"The provided sources do not cover this question: the best match has similarity "
        f"{best:.2f}, below {threshold:.2f}{language}."))


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
            found[key] = TaskCandidate(name=hint.name, origin=origin, source_ids=list(ids),
                                       input=hint.input, output=hint.output, action=hint.action)

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
                for hint in tasks_in_order(expand_name(paper.title))[:1] or \
                        tasks_in_order(paper.summary)[:1]:
                    add(hint, "papers", [paper.id])
    return list(found.values())


def _skeleton(
    models: list[Source],
    model_tasks: Mapping[str, tuple[TaskHint, ...]],
    label_of: Mapping[str, str],
    candidates: list[TaskCandidate],
) -> list[PlannedStep]:
    fallback = next((c for c in candidates if c.origin == "papers"), None) or next(
        (c for c in candidates if c.origin == "question"), None)
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
            task, given, action, output = (fallback.name, fallback.input, fallback.action,
                                           fallback.output)
        else:
            task, given, action, output = (None, "the user's data", "processes it",
                                           "the model's output")
        steps.append(PlannedStep(
            label=label_of[main.id], source_id=main.id, task=task,
            input=current or given, action=action, output=output,
            alternatives=[label_of[o.id] for o in others],
        ))
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
_FUNCTION_WORDS = frozenset({"to", "of", "and", "for", "the", "a", "an", "in", "on", "with",
                             "automatic"})


def _title_says(title: str, words: str) -> bool:
    """Whether ``title`` contains every content word of ``words`` (by its first 5 letters)."""
    wanted = [w[:5] for w in re.findall(r"[a-z0-9]+", words.lower())
              if w not in _FUNCTION_WORDS]
    have = re.findall(r"[a-z0-9]+", title.lower())
    return bool(wanted) and all(any(h.startswith(w) for h in have) for w in wanted)


def _built_on(paper: Source, models: Sequence[Source]) -> Source | None:
    """The recommended model whose name names this paper's method ("BLIP2-OPT" and "OPT")."""
    head = paper.title.split(":", 1)[0] if ":" in paper.title else ""
    if not head or len(head) > 24 or len(head.split()) > 3:
        return None
    key = re.sub(r"[^a-z0-9]", "", re.sub(r"(\d)\.0\b", r"\1", head.lower()))
    return next((model for model in models if _name_part(key, model)), None)


def _named_in(paper: Source, models: Sequence[Source]) -> tuple[Source, str] | None:
    """A method or benchmark name in the paper's text that is part of a model's name.

    Platform names are built from the method, its backbone and its training data
    ("Senti-BERT-wwm-ext-zh", "Denoise-Restormer-SIDD"), so a paper that names one of
    them ("BERT", "SIDD") is about what the model is made of or measured on.
    """
    for name in dict.fromkeys(_METHOD_NAME.findall(f"{paper.title} {paper.summary}")):
        if name.upper().removesuffix("S") in _GENERIC_NAMES:  # "CNNs" as "CNN"
            continue
        key = name.lower()
        for model in models:
            if _name_part(key, model):
                return model, name
    return None


def _name_part(key: str, model: Source) -> bool:
    """Whether ``key`` is one of the parts of the model's name, or ends or starts one."""
    if len(key) < 3:
        return False
    return any(t == key or (len(key) >= 4 and (t.startswith(key) or t.endswith(key)))
               for t in _name_tokens(model.title))


@lru_cache(maxsize=1024)
def _name_tokens(title: str) -> frozenset[str]:
    return frozenset(re.sub(r"[^a-z0-9]", "", t.lower())
                     for t in re.split(r"[\s_\-/.:]+", title) if t)


# A method's name: a word with a capital letter or digit after its first letter
# ("ViT", "HuBERT", "YOLOX", "SIDD"), three characters or more.
_METHOD_NAME = re.compile(r"\b(?=[A-Za-z0-9]*[A-Z][A-Za-z0-9]*[A-Z0-9])[A-Za-z][A-Za-z0-9]{2,}\b")
# Acronyms of kinds of network or data, not of one method: naming them says nothing.
_GENERIC_NAMES = frozenset({"CNN", "GAN", "RNN", "LSTM", "GPU", "CPU", "TPU", "SOTA", "API",
                            "MIDI", "PDF", "RGB", "HDR", "MLP", "VAE", "NLP", "ASR", "TTS",
                            "OCR", "COCO", "IMAGENET"})


_ENGLISH = frozenset((
    "a", "an", "the", "and", "or", "but", "if", "of", "to", "in", "on", "at", "by", "for",
    "from", "with", "about", "as", "is", "are", "was", "were", "be", "been", "am", "do",
    "does", "did", "can", "could", "would", "should", "will", "shall", "may", "might",
    "must", "have", "has", "had", "i", "you", "he", "she", "it", "we", "they", "me", "my",
    "your", "our", "their", "this", "that", "these", "those", "what", "which", "who",
    "whom", "whose", "how", "why", "when", "where", "there", "here", "not", "no", "yes",
    "so", "than", "then", "too", "very", "just", "also", "any", "some", "all", "more",
    "most", "into", "out", "up", "down", "over", "only", "own", "same", "such", "get",
    "make", "want", "need",
))


@lru_cache(maxsize=1024)
def read_question(question: str) -> QuestionReading:
    """The script of the question, and whether the embedding model can read it."""
    counts: dict[str, int] = {}
    for char in question:
        if char.isalpha():
            script = unicodedata.name(char, "UNKNOWN").split(" ", 1)[0]
            script = {"CJK": "Han", "HIRAGANA": "Japanese kana", "KATAKANA": "Japanese kana"}\
                .get(script, script.capitalize())
            counts[script] = counts.get(script, 0) + 1
    if not counts:
        return QuestionReading(script="Latin", english=True, readable=True)
    script = max(counts, key=lambda name: counts[name])
    if counts.get("Japanese kana") and script == "Han":
        script = "Japanese kana"
    words = re.findall(r"[a-z']+", question.lower())
    english = script == "Latin" and bool(words) and (
        sum(w in _ENGLISH for w in words) / len(words) >= 0.15
    )
    language = "en" if english else _SCRIPT_LANGUAGE.get(script) or _identify(question)
    return QuestionReading(script=script, language=language, english=english,
                           readable=script == "Latin")


_SCRIPT_LANGUAGE = {"Hangul": "ko", "Japanese kana": "ja", "Thai": "th", "Hebrew": "he",
                    "Greek": "el", "Armenian": "hy", "Georgian": "ka"}

#: Names of the languages answers are most often asked in, for prompts: in English, and
#: in the language's own script where it has one (a 0.5B model asked for "Japanese"
#: wrote Chinese).
LANGUAGE_NAMES = {
    "en": "English", "ko": "Korean (한국어)", "ja": "Japanese (日本語, with kana)",
    "zh": "Chinese (简体中文)",
    "es": "Spanish", "de": "German", "fr": "French", "pt": "Portuguese", "it": "Italian",
    "nl": "Dutch", "vi": "Vietnamese", "ru": "Russian (русский)",
    "uk": "Ukrainian (українська)", "pl": "Polish",
    "tr": "Turkish", "ar": "Arabic", "hi": "Hindi", "id": "Indonesian", "th": "Thai",
    "he": "Hebrew", "el": "Greek", "sv": "Swedish", "cs": "Czech", "fa": "Persian",
}


def _identify(text: str) -> str:
    # Only questions that are not plainly English get here, so English ones never pay
    # for loading the identifier's model (about half a second, once per process).
    import py3langid

    code: str = py3langid.classify(text)[0]
    return code

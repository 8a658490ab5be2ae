"""The evidence plan's types: what a plan says about each source, the verdict, the steps.

The plan is part of the :class:`~grounded_answer.answer.Answer`, so a platform can show why
a paper was or was not cited; these models are its public shape. They hold data only: the
plan is made by :mod:`.plan`, relevance judged by :mod:`.relevance`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from ..sources.corpus import Role

__all__ = [
    "Agreement",
    "Evidence",
    "EvidencePlan",
    "Judgement",
    "PlannedSource",
    "PlannedStep",
    "QuestionReading",
    "Relevance",
    "TaskCandidate",
    "Verdict",
]

Agreement = Literal[
    "same task", "question's task", "same family", "same data", "other data", "unknown"
]


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
        default=None,
        description="Best cosine between the source and the question; None "
        "when the question could not be read by the embedding model.",
    )
    model_score: float | None = Field(
        default=None,
        description="Best cosine between the source and a recommended model "
        "(None for the models themselves, or when no model is in play).",
    )
    tasks: list[str] = Field(default_factory=list, description="Tasks the source names.")
    name_says: str = Field(
        default="",
        description="For a recommended model: what the first part of its name "
        "spells out ('LowLight-' -> 'low light'), when the task table knows no task for it "
        "or a less specific one ('ChangeDet-' -> 'change detection', read as object "
        "detection).",
    )
    agreement: Agreement = Field(
        default="unknown", description="How those tasks relate to the recommended models'."
    )
    rule: str = Field(
        default="",
        description="Which of the plan's rules decided: 'recommended', 'built on', "
        "'architecture', 'name part', 'same task', 'name says', 'other data', 'close to the "
        "question', 'different task', 'related work', 'close in content', 'loosely related', "
        "'off the task', 'closest to the question', 'less close'.",
    )


class Judgement(BaseModel):
    """What a language model said about a source after reading it, and what was decided."""

    model_config = ConfigDict(frozen=True)

    score: float = Field(
        ge=0.0,
        le=1.0,
        description="P(yes): how likely the model thought "
        "an expert would cite the source (its reading, not a calibrated "
        "probability: only the order within one bundle carries signal).",
    )
    rank: int = Field(ge=1, description="1 for the source the model rated highest.")
    method: Literal["logprobs", "label"] = Field(
        description="'logprobs': from the first token's probabilities; 'label': from the "
        "word the model wrote, when the server gave no probabilities."
    )
    decided_by: Literal["plan", "model"] = Field(
        description="Whose judgement the answer follows for this source."
    )
    reason: str = Field(description="One line a user can follow.")


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
    judgement: Judgement | None = Field(
        default=None,
        description="The language model's reading of the source, when one is "
        "configured and judged it.",
    )

    @property
    def said(self) -> str:
        """The reason a user reads: the judgement's when a model read the source."""
        return self.judgement.reason if self.judgement else self.reason

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
    basis: Literal["similarity", "recommendation", "no sources", "model"]
    score: float | None = Field(
        default=None,
        description="The language model's P(yes) that the question asks for what the "
        "recommended models do, whenever a model read the question (``basis`` says who "
        "decided: the plan's decline stands whatever the score); None when none read it.",
    )


class TaskCandidate(BaseModel):
    """A task the question or the sources point to."""

    model_config = ConfigDict(frozen=True)

    name: str
    origin: Literal["question", "model", "papers", "reader"] = Field(
        description="Where the task was read: in the question, a model's name or summary, "
        "the related papers, or by the language model that read the question ('reader')."
    )
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
    _skeleton: list[PlannedStep] = PrivateAttr(default_factory=list)

    def skeleton(self) -> list[PlannedStep]:
        """The workflow's steps, made even when the plan declined (a judge may overrule it)."""
        return self.steps or self._skeleton

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
        parts = [f"{s.label} {s.said}" for s in self.cited]
        left = [s for s in self.sources if not s.cited]
        line = "; ".join(parts) + "."
        if left:
            line += " Not cited: " + "; ".join(f"{s.title} ({s.said})" for s in left) + "."
        return line

"""The Answer users get: three sections, a validation report, provenance, and the plan.

This module is data: the answer's parts and their checks. An :class:`Answer` carries the
links it was allowed to use, and its own validator checks every string in it against
them, so an Answer that holds a foreign link cannot be built, whoever builds it. The
``to_markdown`` / ``to_html`` / ``to_mermaid`` methods are conveniences over
:mod:`grounded_answer.render`, which knows the Answer only as a type, so rendering sits
below the data in the import graph and the graph has no circle.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .grounding.links import find_links, link_key, scrub_links
from .planning.models import EvidencePlan
from .render import answer_html, answer_markdown, workflow_mermaid
from .retrieval.retrieve import Hit
from .sources.corpus import Role
from .writing.translate import TranslationReport

__all__ = [
    "Answer",
    "Provenance",
    "Reference",
    "Task",
    "Usage",
    "ValidationReport",
    "Workflow",
    "WorkflowStep",
]


class Task(BaseModel):
    """Section 1: what the user is trying to do, and the sources that say so."""

    model_config = ConfigDict(frozen=True)

    statement: str
    source_ids: list[str] = Field(default_factory=list)


class WorkflowStep(BaseModel):
    """A model node: what goes in, what the model does, what comes out."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(description="Node id in the graph: step1, step2, ...")
    source_id: str = Field(description="The recommended model (source id) this step runs.")
    model: str = Field(description="The model's name, from its source record.")
    input: str
    action: str
    output: str
    alternatives: list[str] = Field(
        default_factory=list,
        description="Other recommended models (source ids) for the same task: the plan "
        "groups them into this step instead of chaining them.",
    )


class Workflow(BaseModel):
    """Section 2: input -> model step(s) -> output, as a node pipeline."""

    model_config = ConfigDict(frozen=True)

    input: str
    steps: list[WorkflowStep]
    output: str

    def to_graph(self) -> dict[str, Any]:
        """Nodes and edges that a workflow tool can import (input, one node per step, output)."""
        nodes: list[dict[str, Any]] = [{"id": "input", "type": "input", "label": self.input}]
        nodes += [
            {
                "id": s.id,
                "type": "model",
                "label": s.model,
                "source_id": s.source_id,
                "action": s.action,
                "alternatives": s.alternatives,
            }
            for s in self.steps
        ]
        nodes.append({"id": "output", "type": "output", "label": self.output})
        edges = [
            {
                "from": nodes[i]["id"],
                "to": nodes[i + 1]["id"],
                "label": self.steps[i].input if i < len(self.steps) else self.steps[-1].output,
            }
            for i in range(len(nodes) - 1)
        ]
        return {"nodes": nodes, "edges": edges}

    def to_mermaid(self) -> str:
        """A Mermaid flowchart of :meth:`to_graph` (see :mod:`grounded_answer.render.markdown`)."""
        return workflow_mermaid(self)


class Reference(BaseModel):
    """Section 3: a source that supports the answer, with links from its record."""

    model_config = ConfigDict(frozen=True)

    label: str = Field(description="The marker the answer's text uses for it: S1, S2, ...")
    source_id: str
    title: str
    role: Role
    url: str = Field(description="The primary link: the paper if any, else the code.")
    paper_url: str | None = None
    github_url: str | None = None
    why: str
    score: float | None = Field(default=None, description="Best retrieval score, if retrieved.")


class ValidationReport(BaseModel):
    """What the grounding checks found, repaired and dropped."""

    model_config = ConfigDict(frozen=True)

    checks: list[str] = Field(description="The checks applied to the model output.")
    attempts: int = Field(
        description="Model calls that wrote the answer's prose (1 = no "
        "repair needed; for an answer translated from the offline draft, "
        "the translation call)."
    )
    repaired: list[str] = Field(
        default_factory=list, description="Errors the model fixed when re-asked."
    )
    dropped: list[str] = Field(
        default_factory=list, description="Content removed under policy 'drop'."
    )
    unresolved: list[str] = Field(
        default_factory=list,
        description="Errors of the last attempt when no attempt passed and policy 'drop' "
        "kept what was grounded.",
    )
    withheld: list[str] = Field(
        default_factory=list,
        description="Where a sentence addressed to the model (a possible prompt injection) "
        "was kept out of the prompt.",
    )
    sources_dropped: list[str] = Field(
        default_factory=list,
        description="Sources left out when the bundle or corpus was read because a link "
        "field was unsafe (sources.invalid_links = 'drop'): where, and why.",
    )
    policy: str
    valid_first_try: bool
    plan: list[str] = Field(
        default_factory=list,
        description="The evidence plan's verdict, then anything restored to hold the answer "
        "to the plan (a recommended model added, a ruled-out citation removed).",
    )
    mode: str = Field(
        default="free",
        description="'guided' (the model wrote prose slots "
        "into the plan) or 'free' (the whole answer).",
    )
    language: str = Field(default="en", description="The language the prose was asked in.")
    untranslated: list[str] = Field(
        default_factory=list,
        description="Slots left in English because their translation "
        "was missing, out of place, changed what it must keep, too long, in another script "
        "or broke a grounding rule (translation.kept says which and why).",
    )
    translation: TranslationReport | None = Field(
        default=None,
        description="For an answer in another language: what each line of "
        "the translation call became.",
    )


class Spent(Protocol):
    """What one backend call reports about its cost (a backend's ``Completion`` has it)."""

    @property
    def cached(self) -> bool: ...
    @property
    def seconds(self) -> float: ...
    @property
    def prompt_tokens(self) -> int | None: ...
    @property
    def completion_tokens(self) -> int | None: ...


class Usage(BaseModel):
    """What the backend spent on this answer, over every attempt."""

    calls: int = 0
    cached_calls: int = Field(default=0, description="Calls answered from the response cache.")
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    seconds: float = Field(default=0.0, description="Time inside backend calls.")

    def add(self, completion: Spent) -> None:
        """Count one completion."""
        self.calls += 1
        self.cached_calls += completion.cached
        self.seconds = round(self.seconds + completion.seconds, 4)
        if completion.prompt_tokens is not None:
            self.prompt_tokens = (self.prompt_tokens or 0) + completion.prompt_tokens
        if completion.completion_tokens is not None:
            self.completion_tokens = (self.completion_tokens or 0) + completion.completion_tokens


class Provenance(BaseModel):
    """Where the answer came from: backend, corpus, retrieval, timings."""

    model_config = ConfigDict(frozen=True)

    backend: str
    model: str
    offline: bool = Field(description="True when no LLM server was involved.")
    corpus: str
    corpus_fingerprint: str
    embedding_model: str
    embedding_note: str | None = Field(
        default=None,
        description="Why the slower sentence-transformers encoder answered "
        "instead of the fast ONNX path, when it did.",
    )
    question_restated: str | None = Field(
        default=None,
        description="The question as the language model restated it in English "
        "for retrieval, when the embedding model could not read the original.",
    )
    index_status: str
    retrieved: list[Hit]
    timings: dict[str, float] = Field(description="Seconds per stage.")
    usage: Usage = Field(default_factory=Usage, description="Backend calls and tokens.")


class Answer(BaseModel):
    """A grounded answer: task, workflow, references, and how it was made and checked."""

    model_config = ConfigDict(frozen=True)

    question: str = Field(description="The question, with any link in it made inert.")
    answerable: bool
    task: Task
    workflow: Workflow | None
    references: list[Reference]
    note: str = Field(default="", description="Why the sources fall short, when they do.")
    allowed_links: list[str] = Field(
        description="The only links this answer may contain: the source records' link fields."
    )
    validation: ValidationReport
    provenance: Provenance
    plan: EvidencePlan | None = Field(
        default=None,
        description="The evidence plan the answer was written from: every source in play "
        "with its relevance and reason, the verdict, task candidates, the workflow skeleton.",
    )

    @model_validator(mode="after")
    def _no_foreign_links(self) -> Answer:
        # Every string anywhere in the answer (question, prose, titles, reports, retrieved
        # passages) is checked, so no field can smuggle a link past a renderer.
        allowed = {link_key(link) for link in self.allowed_links}
        data = self.model_dump(mode="json", exclude={"allowed_links"})
        for where, text in _strings(data, ""):
            for found in find_links(text):
                if found.key not in allowed:
                    raise ValueError(f"foreign link {found.text!r} in {where}")
        return self

    def to_json(self, *, indent: int | None = 2) -> str:
        """The whole answer as JSON, with the workflow's node graph included."""
        data = self.model_dump(mode="json")
        if self.workflow:
            data["workflow"]["graph"] = self.workflow.to_graph()
        return self._last_guard(json.dumps(data, indent=indent, ensure_ascii=False))

    def to_html(self) -> str:
        """A standalone HTML page: the sections, the workflow graph, no script."""
        return answer_html(self)

    def to_markdown(self) -> str:
        """The three numbered sections, as the platform's prompt asks for them."""
        return self._last_guard(answer_markdown(self))

    def _last_guard(self, rendered: str) -> str:
        # The fields were validated; this catches a rendering bug (a cut or joined link)
        # before it reaches a user, whatever the cause.
        return scrub_links(rendered, {link_key(link) for link in self.allowed_links})[0]


def _strings(value: Any, where: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, f"{where}.{key}" if where else str(key))
    elif isinstance(value, list):
        for n, item in enumerate(value):
            yield from _strings(item, f"{where}[{n}]")

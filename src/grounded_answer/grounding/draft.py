"""What the model is asked to write, and the checks that make it grounded.

The model never writes a title or a URL on purpose: it cites sources by alias (``S1``,
``S2``, ...) and the library renders titles and links from the source records. The
checks are pydantic validators that receive the allowed aliases and links through
validation context (``model_validate_json(..., context=GroundingContext(...))``), so one
schema serves every corpus and nothing global is mutated. Any URL, bare domain, arXiv id
or github.com path written in prose is checked as well.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from functools import cache, lru_cache
from typing import Annotated, Any, cast

import pydantic_core
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    model_validator,
)

from .injection import echoes, quarantine
from .links import cut_outside_links, find_links, scrub_links

__all__ = [
    "ACTION_SLOT",
    "ALIAS_RE",
    "IO_SLOT",
    "NOTE_SLOT",
    "TASK_SLOT",
    "WHY_SLOT",
    "AnswerDraft",
    "DraftReference",
    "DraftStep",
    "DraftTask",
    "DraftWorkflow",
    "GroundingContext",
    "Prose",
    "SourceRef",
    "check_draft",
    "describe_error",
    "draft_json_schema",
    "salvage_draft",
    "shorten",
    "strip_fences",
    "validate_draft",
]

ALIAS_RE = re.compile(r"\bS(\d{1,3})\b")
MAX_STEPS = 6
MAX_REFERENCES = 12
# One or two sentences each: tight bounds keep small models from copying whole summaries
# into the answer and running past max_tokens.
STATEMENT_CHARS = 400
IO_CHARS = 150
ACTION_CHARS = 300
WHY_CHARS = 300


@dataclass(frozen=True)
class GroundingContext:
    """The aliases and link keys an answer may use; passed as pydantic validation context."""

    aliases: frozenset[str]
    link_keys: frozenset[str]
    step_aliases: frozenset[str] | None = None
    withheld: tuple[str, ...] = field(default=(), compare=False)
    instructions: tuple[str, ...] = field(default=(), compare=False)
    # The question as the model saw it: restating it is not echoing the instructions.
    question: str = field(default="", compare=False)


def _context(info: ValidationInfo) -> GroundingContext:
    context = info.context
    if not isinstance(context, GroundingContext):
        raise ValueError("validation needs a GroundingContext (the allowed sources)")
    return context


def _check_alias(value: str, info: ValidationInfo) -> str:
    context = _context(info)
    value = value.strip().strip("[]")
    if value not in context.aliases:
        allowed = ", ".join(sorted(context.aliases, key=lambda a: int(a[1:])))
        raise ValueError(f"unknown source id {value!r}; cite only {allowed}")
    return value


def _check_prose(value: str, info: ValidationInfo) -> str:
    context = _context(info)
    # Quoted as a reader sees them: repr() of an obfuscated spelling would turn its
    # invisible characters into escapes that hide the link from the report's defanging.
    foreign = [m.plain or m.text for m in find_links(value) if m.key not in context.link_keys]
    if foreign:
        raise ValueError(
            "links are not allowed in text (cite source ids instead): "
            + ", ".join(repr(f) for f in foreign[:5])
        )
    unknown = sorted({f"S{n}" for n in ALIAS_RE.findall(value)} - context.aliases)
    if unknown:
        raise ValueError(f"unknown source id(s) {', '.join(unknown)} mentioned in text")
    if _repeats_withheld(value, context.withheld) or echoes(
        value, context.instructions, besides=context.question
    ):
        raise ValueError(
            "text repeats instructions (from the prompt, or planted in a source or the "
            "question); explain the sources instead"
        )
    return value


def _repeats_withheld(value: str, withheld: tuple[str, ...]) -> bool:
    words = " ".join(re.findall(r"\w+", value.lower()))
    for sentence in withheld:
        planted = " ".join(re.findall(r"\w+", sentence.lower()))
        if len(planted.split()) >= 3 and planted in words:
            return True
    return False


SourceRef = Annotated[str, AfterValidator(_check_alias)]
Prose = Annotated[str, AfterValidator(_check_prose)]


class DraftTask(BaseModel):
    """Section 1: what the user is trying to do."""

    model_config = ConfigDict(extra="forbid")

    statement: Prose = Field(min_length=1, max_length=STATEMENT_CHARS)
    source_ids: list[SourceRef] = Field(default_factory=list, max_length=MAX_REFERENCES)


def _check_step_alias(value: str, info: ValidationInfo) -> str:
    value = _check_alias(value, info)
    allowed = _context(info).step_aliases
    if allowed and value not in allowed:
        models = ", ".join(sorted(allowed, key=lambda a: int(a[1:])))
        raise ValueError(
            f"{value} is not a recommended model; a workflow step runs one of {models}"
        )
    return value


StepRef = Annotated[str, AfterValidator(_check_step_alias)]


class DraftStep(BaseModel):
    """One node of the workflow: a model applied to an input."""

    model_config = ConfigDict(extra="forbid")

    source_id: StepRef
    input: Prose = Field(min_length=1, max_length=IO_CHARS)
    action: Prose = Field(min_length=1, max_length=ACTION_CHARS)
    output: Prose = Field(min_length=1, max_length=IO_CHARS)


class DraftWorkflow(BaseModel):
    """Section 2: input -> model step(s) -> output."""

    model_config = ConfigDict(extra="forbid")

    input: Prose = Field(min_length=1, max_length=IO_CHARS)
    steps: list[DraftStep] = Field(min_length=1, max_length=MAX_STEPS)
    output: Prose = Field(min_length=1, max_length=IO_CHARS)


class DraftReference(BaseModel):
    """Section 3: a cited source and why it supports the answer."""

    model_config = ConfigDict(extra="forbid")

    source_id: SourceRef
    why: Prose = Field(min_length=1, max_length=WHY_CHARS)


class AnswerDraft(BaseModel):
    """The model's answer in terms of source aliases; links are added by the library."""

    model_config = ConfigDict(extra="forbid")

    # Field order is generation order for grammar-constrained models: the verdict comes
    # last, after the model has written down what the sources offer.
    task: DraftTask
    workflow: DraftWorkflow | None = None
    references: list[DraftReference] = Field(default_factory=list, max_length=MAX_REFERENCES)
    note: Prose = Field(default="", max_length=STATEMENT_CHARS)
    answerable: bool

    @model_validator(mode="after")
    def _sections_present(self) -> AnswerDraft:
        if self.answerable:
            missing = [
                name
                for name, present in (("workflow", self.workflow), ("references", self.references))
                if not present
            ]
            if missing:
                raise ValueError(
                    f"missing section(s) {', '.join(missing)}: an answerable question needs "
                    "a workflow and at least one reference"
                )
        elif not self.note.strip():
            raise ValueError("answerable is false: 'note' must say why the sources fall short")
        return self


def validate_draft(text: str, context: GroundingContext) -> tuple[AnswerDraft | None, list[str]]:
    """Parse and check model output; return the draft, or None and every error found."""
    cleaned = strip_fences(text)
    try:
        return AnswerDraft.model_validate_json(cleaned, context=context), []
    except ValidationError as exc:
        return None, [describe_error(error) for error in exc.errors(include_url=False)]


def salvage_draft(text: str, context: GroundingContext) -> tuple[AnswerDraft | None, list[str]]:
    """Keep what is grounded in a bad draft and report what had to go (policy ``drop``).

    Foreign links in prose are replaced, references and steps citing unknown sources are
    removed, unknown ids in prose are cut. Returns None when the output is not a JSON
    object with at least a task statement: there is nothing safe to keep.
    """
    dropped: list[str] = []
    try:
        # Output cut off at max_tokens is still worth salvaging: parse what arrived.
        data = pydantic_core.from_json(strip_fences(text), allow_partial=True)
    except ValueError:
        return None, ["output is not valid JSON"]
    if not isinstance(data, dict):
        return None, ["output is not a JSON object"]

    def prose(value: Any, where: str, limit: int) -> str:
        if not isinstance(value, str):
            return ""
        cleaned, removed = scrub_links(value, context.link_keys)
        dropped.extend(f"{where}: link {link!r}" for link in removed)

        def unknown(match: re.Match[str]) -> str:
            if match.group(0) in context.aliases:
                return match.group(0)
            dropped.append(f"{where}: unknown source id {match.group(0)!r}")
            return "[unknown source]"

        cleaned = cut_outside_links(ALIAS_RE.sub(unknown, cleaned), limit)
        if _repeats_withheld(cleaned, context.withheld) or echoes(
            cleaned, context.instructions, besides=context.question
        ):
            # Cut the sentences that carry instructions; if some still echo, drop it all.
            cleaned = quarantine(cleaned)[0]
            dropped.append(f"{where}: text that repeats instructions")
            if _repeats_withheld(cleaned, context.withheld) or echoes(
                cleaned, context.instructions, besides=context.question
            ):
                return ""
        return cleaned

    def alias(value: Any, where: str) -> str | None:
        if isinstance(value, str) and value.strip().strip("[]") in context.aliases:
            return value.strip().strip("[]")
        dropped.append(f"{where}: unknown source id {value!r}")
        return None

    task: dict[str, Any] = data["task"] if isinstance(data.get("task"), dict) else {}
    statement = prose(task.get("statement"), "task.statement", STATEMENT_CHARS)
    if not statement.strip():
        return None, [*dropped, "no task statement"]
    ids = [alias(v, "task.source_ids") for v in _as_list(task.get("source_ids"))]
    answerable = bool(data.get("answerable", False))
    draft_task = DraftTask.model_construct(statement=statement, source_ids=[i for i in ids if i])
    note = prose(data.get("note"), "note", STATEMENT_CHARS)
    references: list[DraftReference] = []
    for n, ref in enumerate(_as_list(data.get("references"))[:MAX_REFERENCES]):
        ref = ref if isinstance(ref, dict) else {}
        source = alias(ref.get("source_id"), f"references[{n}]")
        if source:
            why = prose(ref.get("why"), f"references[{n}].why", WHY_CHARS) or "Cited by the model."
            references.append(DraftReference.model_construct(source_id=source, why=why))
    workflow: DraftWorkflow | None = None
    flow: dict[str, Any] | None = (
        data["workflow"] if isinstance(data.get("workflow"), dict) else None
    )
    if flow:
        steps: list[DraftStep] = []
        for n, step in enumerate(_as_list(flow.get("steps"))[:MAX_STEPS]):
            step = step if isinstance(step, dict) else {}
            source = alias(step.get("source_id"), f"workflow.steps[{n}]")
            if source and context.step_aliases and source not in context.step_aliases:
                dropped.append(f"workflow.steps[{n}]: {source} is not a recommended model")
                source = None
            if source:
                where = f"workflow.steps[{n}]"
                steps.append(
                    DraftStep.model_construct(
                        source_id=source,
                        input=prose(step.get("input"), f"{where}.input", IO_CHARS) or "-",
                        output=prose(step.get("output"), f"{where}.output", IO_CHARS) or "-",
                        action=prose(step.get("action"), f"{where}.action", ACTION_CHARS) or "-",
                    )
                )
        if steps:
            workflow = DraftWorkflow.model_construct(
                input=prose(flow.get("input"), "workflow.input", IO_CHARS) or "-",
                steps=steps,
                output=prose(flow.get("output"), "workflow.output", IO_CHARS) or "-",
            )
    if workflow and not references:
        # The sources a workflow step uses support the answer by construction.
        for used in workflow.steps:
            if used.source_id not in {r.source_id for r in references}:
                references.append(
                    DraftReference.model_construct(
                        source_id=used.source_id, why="Used in the workflow."
                    )
                )
    if answerable and not (workflow and references):
        dropped.append("answerable dropped to false: workflow or references missing")
        answerable = False
    if not answerable and not note.strip():
        note = "The model's answer could not be fully grounded in the sources."
    salvaged = AnswerDraft.model_construct(
        task=draft_task,
        workflow=workflow,
        references=references,
        note=note,
        answerable=answerable,
    )
    try:
        return check_draft(salvaged, context), dropped
    except ValidationError as exc:  # pragma: no cover - salvage builds valid drafts
        return None, [*dropped, *(describe_error(e) for e in exc.errors(include_url=False))]


def check_draft(draft: AnswerDraft, context: GroundingContext) -> AnswerDraft:
    """A draft built in code (salvage, the offline stub), validated as model output is.

    Code builds drafts with ``model_construct``, which checks nothing, so that the models
    stay the one statement of the answer's shape; this runs every validator on the result
    with ``context``, exactly as :func:`validate_draft` does for the model's JSON.

    Raises:
        pydantic.ValidationError: the draft is not grounded in ``context``.

    """
    return AnswerDraft.model_validate(draft.model_dump(), context=context)


def draft_json_schema(aliases: list[str], step_aliases: list[str] | None = None) -> dict[str, Any]:
    """The draft's JSON schema with the allowed aliases as an enum.

    Grammar-constrained servers then cannot even emit an unknown id (nor run a paper as
    a workflow step, when ``step_aliases`` names the recommended models), and bounded
    lengths keep small models from rambling past ``max_tokens``. The caller owns the
    returned dict: it is parsed from a cached JSON text, so editing it changes nothing
    for the next caller.
    """
    return cast(
        dict[str, Any],
        json.loads(_schema_text(tuple(aliases), tuple(step_aliases) if step_aliases else None)),
    )


@lru_cache(maxsize=64)
def _schema_text(aliases: tuple[str, ...], step_aliases: tuple[str, ...] | None) -> str:
    # Bundles reuse the same few alias lists; building the schema is the costly part.
    schema = copy.deepcopy(_base_schema())
    for title, definition in schema.get("$defs", {}).items():
        props = definition.get("properties", {})
        for name, prop in props.items():
            if name == "source_id":
                prop["enum"] = (
                    list(step_aliases or aliases) if title == "DraftStep" else list(aliases)
                )
            elif name == "source_ids":
                prop["items"] = {"type": "string", "enum": list(aliases)}
            elif name == "references":
                prop["maxItems"] = min(len(aliases), MAX_REFERENCES)
            elif name == "steps" and step_aliases:
                # One step per recommended model at most: small models otherwise repeat one.
                prop["maxItems"] = len(step_aliases)
    # Strict structured output wants every property required and no extras.
    for node in [schema, *schema.get("$defs", {}).values()]:
        if "properties" in node:
            node["required"] = list(node["properties"])
            node["additionalProperties"] = False
            for prop in node["properties"].values():
                prop.pop("default", None)
    return json.dumps(schema)


@cache
def _base_schema() -> dict[str, Any]:
    # Generating the schema costs milliseconds; it never changes within a process.
    return AnswerDraft.model_json_schema()


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def shorten(text: str, limit: int) -> str:
    """``text`` with its whitespace collapsed, cut at a word to fit ``limit`` (with "…")."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"


def strip_fences(text: str) -> str:
    """Model output without a Markdown code fence around it."""
    # By hand: the pattern this replaces, ``^```(?:json)?\s*(.*?)\s*```$``, was quadratic
    # on an opening fence followed by a long run of spaces and no closing fence.
    stripped = text.strip()
    if len(stripped) >= 6 and stripped.startswith("```") and stripped.endswith("```"):
        inner = stripped[3:-3]
        return inner.removeprefix("json").strip() if inner.startswith("json") else inner.strip()
    return stripped


def describe_error(error: Any) -> str:
    """One line for a pydantic error: where, then what (repair prompts quote it)."""
    where = ".".join(str(part) for part in error["loc"]) or "answer"
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "json_invalid":
        return f"output is not valid JSON ({error.get('ctx', {}).get('error', message)})"
    if error["type"] == "extra_forbidden":
        return f"{where}: unknown field (allowed fields are in the schema)"
    return f"{where}: {message}"


# One prose slot checked on its own (guided slots, translated lines), by kind.
TASK_SLOT: TypeAdapter[str] = TypeAdapter(
    Annotated[Prose, Field(min_length=1, max_length=STATEMENT_CHARS)]
)
WHY_SLOT: TypeAdapter[str] = TypeAdapter(
    Annotated[Prose, Field(min_length=1, max_length=WHY_CHARS)]
)
NOTE_SLOT: TypeAdapter[str] = TypeAdapter(Annotated[Prose, Field(max_length=STATEMENT_CHARS)])
IO_SLOT: TypeAdapter[str] = TypeAdapter(Annotated[Prose, Field(min_length=1, max_length=IO_CHARS)])
ACTION_SLOT: TypeAdapter[str] = TypeAdapter(
    Annotated[Prose, Field(min_length=1, max_length=ACTION_CHARS)]
)

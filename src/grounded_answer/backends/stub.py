"""The offline backend: a deterministic, grounded answer with no language model.

It is the default, so it has to be useful on its own: the task is named from the
recommended models' names and the retrieved passages (``Deblur-...`` -> image
deblurring), the workflow is built from the recommended models, and related papers are
cited when retrieval ranks them close to the best match. Every sentence is assembled from
the source records and the task table in :mod:`grounded_answer.tasks`, so it cannot cite
anything else. Tests script it: outputs given in ``script`` are returned first, in order,
and every request is recorded, like pydantic-ai's ``TestModel``.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Sequence

from ..config import LLMSettings
from ..draft import ACTION_CHARS, ALIAS_RE, IO_CHARS, STATEMENT_CHARS, WHY_CHARS
from ..links import scrub_links
from ..prompts import PromptContext, PromptSource
from ..tasks import TaskHint, expand_name, guess_tasks
from .base import Completion, CompletionRequest

__all__ = ["StubBackend", "stub_draft"]

Scripted = str | Callable[[CompletionRequest], str]

# A related paper is cited when its best passage scores within this margin of the best
# paper, and above the answerability threshold the pipeline applied.
PAPER_MARGIN = 0.12
# Natural order of tasks in a pipeline: lower runs first.
_STAGE = {
    "speech recognition": 0, "optical character recognition": 0, "image deblurring": 0,
    "image denoising": 0, "document understanding": 1, "machine translation": 2,
    "text summarization": 3, "text-to-speech": 4,
}


class StubBackend:
    """Offline, deterministic, scriptable."""

    name = "stub"
    offline = True

    def __init__(
        self, settings: LLMSettings | None = None, *, script: Sequence[Scripted] = ()
    ) -> None:
        self.model = "grounded-answer-stub"
        self.script = list(script)
        self.requests: list[CompletionRequest] = []
        self._lock = threading.Lock()

    def complete(self, request: CompletionRequest) -> Completion:
        """The next scripted output, else the offline answer for the request's context."""
        with self._lock:
            self.requests.append(request)
            scripted = self.script.pop(0) if self.script else None
        if scripted is None:
            text = json.dumps(stub_draft(request.context), ensure_ascii=False)
        else:
            text = scripted(request) if callable(scripted) else scripted
        return Completion(text=text, finish_reason="stop", model=self.model)


def stub_draft(context: PromptContext) -> dict[str, object]:
    """The offline answer as a draft dict (aliases, no links)."""
    aliases = set(context.aliases)

    def clean(text: str) -> str:
        # Source text is untrusted: no links, no alias-like tokens it did not earn.
        scrubbed, _ = scrub_links(text, (), replacement="")
        scrubbed = ALIAS_RE.sub(lambda m: m.group(0) if m.group(0) in aliases else "", scrubbed)
        return " ".join(scrubbed.split())

    if context.weak_match or not context.sources:
        best = context.sources[0] if context.sources else None
        closest = (
            f" The closest source, {clean(best.title)}, matches it only weakly"
            f" (similarity {best.score:.2f})." if best and best.score is not None else ""
        )
        return {
            "answerable": False,
            "task": {
                "statement": _cut("The user asks: " + clean(context.question), STATEMENT_CHARS),
                "source_ids": [],
            },
            "workflow": None,
            "references": [],
            "note": _cut("The provided sources do not cover this question, so no workflow "
                         "is given." + closest, STATEMENT_CHARS),
        }

    models = [s for s in context.sources if s.role == "model"]
    papers = [s for s in context.sources if s.role != "model"]
    hints = {s.alias: _hint_for(s) for s in context.sources}
    leading = models or context.sources[:1]
    task = next((hints[s.alias] for s in leading if hints[s.alias]), None) or _task_from_text(
        context
    )
    cited_papers = _relevant_papers(papers, models, task)

    model_ids = [s.alias for s in models]
    if task:
        names = ", ".join(f"{clean(s.title)} ({s.alias})" for s in leading)
        statement = (
            f"{task.name.capitalize()}: the user has {task.input} and wants {task.output}. "
            f"The recommended model{'s' if len(leading) > 1 else ''} {names} "
            f"{'are' if len(leading) > 1 else 'is'} built for this."
        )
    else:
        statement = "The user wants to apply " + ", ".join(
            f"{clean(s.title)} ({s.alias})" for s in leading) + " to their data."
    steps = _steps(leading, hints, task, clean)
    workflow = {
        "input": _cut((task.input if task else "the user's data").capitalize(), IO_CHARS),
        "steps": steps,
        "output": _cut(steps[-1]["output"], IO_CHARS),
    }
    step_of = {step["source_id"]: n for n, step in enumerate(steps, start=1)}
    references = []
    for model in models:
        hint = hints[model.alias] or task
        for_task = hint.name if hint else "this task"
        why = (f"Recommended model for {for_task}; it runs step {step_of[model.alias]} of the "
               "workflow." if model.alias in step_of
               else f"Recommended alternative model for {for_task}.")
        references.append({"source_id": model.alias, "why": why})
    for paper in cited_papers:
        evidence = _best_passage(context, paper.alias, clean)
        why = f"Related work ({_similarity(paper)})" + (f": {evidence}" if evidence else ".")
        references.append({"source_id": paper.alias, "why": _cut(why, WHY_CHARS)})
    if not references:
        references = [{"source_id": s.alias, "why": "Closest provided source."} for s in leading]
    return {
        "answerable": True,
        "task": {
            "statement": _cut(statement, STATEMENT_CHARS),
            "source_ids": model_ids or [s.alias for s in leading],
        },
        "workflow": workflow,
        "references": references,
        "note": "",
    }


def _hint_for(source: PromptSource) -> TaskHint | None:
    hints = guess_tasks(expand_name(source.title))
    if not hints and source.role == "model":
        hints = guess_tasks(source.summary)
    return hints[0] if hints else None


def _task_from_text(context: PromptContext) -> TaskHint | None:
    text = " ".join([context.question, *(p.text for p in context.passages[:3])])
    hints = guess_tasks(text)
    return hints[0] if hints else None


def _relevant_papers(
    papers: list[PromptSource], models: list[PromptSource], task: TaskHint | None
) -> list[PromptSource]:
    scored = [p for p in papers if p.score is not None]
    if not scored:
        return []
    best = max(p.score or 0.0 for p in scored)
    cited = [p for p in scored if (p.score or 0.0) >= best - PAPER_MARGIN]
    if models:
        # With recommended models, a paper supports the answer only when it is about one
        # of their tasks: a paper that merely shares words with the question (an image
        # quality paper for a deblurring question) is a distractor, however close.
        tasks = {hint for m in models for hint in guess_tasks(expand_name(m.title))}
        if task:
            tasks.add(task)
        cited = [p for p in cited if tasks & set(guess_tasks(p.title + " " + p.summary))]
    return sorted(cited, key=lambda p: -(p.score or 0.0))


def _steps(
    leading: list[PromptSource],
    hints: dict[str, TaskHint | None],
    task: TaskHint | None,
    clean: Callable[[str], str],
) -> list[dict[str, str]]:
    # One step per distinct task; models that share a task are alternatives for that
    # step, named in its action, so the graph never chains two deblurring models.
    groups: dict[str, list[PromptSource]] = {}
    for source in leading:
        hint = hints[source.alias] or task
        groups.setdefault(hint.name if hint else source.alias, []).append(source)
    ordered = sorted(groups.items(), key=lambda item: _STAGE.get(item[0], 1))
    steps: list[dict[str, str]] = []
    current_input = task.input if task else "the user's data"
    for _, sources in ordered:
        main = sources[0]
        hint = hints[main.alias] or task
        action = f"{clean(main.title)} ({main.alias}) {hint.action if hint else 'processes it'}"
        summary_line = _first_sentence(clean(main.summary))
        if summary_line:
            action += f". {summary_line}"
        if len(sources) > 1:
            action += ". Alternatives: " + ", ".join(
                f"{clean(s.title)} ({s.alias})" for s in sources[1:])
        output = hint.output if hint else "the model's output"
        steps.append({
            "source_id": main.alias,
            "input": _cut(current_input, IO_CHARS),
            "action": _cut(action, ACTION_CHARS),
            "output": _cut(output, IO_CHARS),
        })
        current_input = output
    return steps


def _best_passage(context: PromptContext, alias: str, clean: Callable[[str], str]) -> str:
    for passage in context.passages:
        if passage.alias == alias:
            text = passage.text.split(": ", 1)[-1]
            return _first_sentence(clean(text), limit=300)
    return ""


def _similarity(source: PromptSource) -> str:
    return f"similarity {source.score:.2f}" if source.score is not None else "retrieved"


def _first_sentence(text: str, limit: int = 220) -> str:
    sentence = re.split(r"(?<=[.!?])\s+", text.strip(), maxsplit=1)[0] if text.strip() else ""
    return _cut(sentence, limit)


def _cut(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"

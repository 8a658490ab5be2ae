"""The judge stage: the language model reads each related source and the question's coverage.

One short call per source, all behind one shared system message (the question and what
the recommended models do), so a server with a prompt cache (llama.cpp's ``cache_prompt``)
reads that prefix once and each judgement costs only its source's tokens. Each call asks
for one token and its log-probabilities; every call goes through the response cache like
any other. The decisions are :func:`grounded_answer.planning.judge.apply_judgements`'.
"""

from __future__ import annotations

import re

from ..backends.base import CompletionRequest
from ..errors import BackendResponseError, ConfigError
from ..grounding.draft import ALIAS_RE, shorten
from ..grounding.injection import QUESTION_WITHHELD
from ..planning import EvidencePlan, Relevance
from ..planning.judge import JudgeRule, Reading, apply_judgements, score_reply
from ..writing.prompts import ChatMessage, PromptContext
from ._run import Run

__all__ = ["described_models", "judge_plan", "judging"]


def judging(run: Run) -> bool:
    """Whether this run's plan is read by the model (``judge.enabled``)."""
    mode = run.settings.judge.enabled
    if mode == "on" and run.backend.offline:
        raise ConfigError(
            "judge.enabled is 'on' but the backend is the offline stub; "
            "configure a language model (llm.backend) or use 'auto'"
        )
    return mode == "on" or (mode == "auto" and not run.backend.offline)


def judge_plan(run: Run, plan: EvidencePlan) -> EvidencePlan:
    """The plan after the model has read every related source (and the coverage)."""
    if not plan.sources or not judging(run):
        return plan
    options = run.settings.judge
    by_id = {source.id: source for source in run.sources.sources}
    limit = options.summary_chars
    question = run.withhold(run.question, "question") or QUESTION_WITHHELD
    models, described = described_models(run, plan)
    coverage = None
    readings: dict[str, Reading] = {}
    with run.timed("judge"):
        # Coverage is judged from what the models do, never from their names: when no
        # recommended model has a known task or a summary, there is nothing to read and the
        # plan keeps the verdict (a model with only a name scored 0.62 against 0.64 on a
        # question squarely about it).
        if options.coverage and described:
            coverage = _ask(run, run.prompts.judge(question, models, None))
            if coverage is not None:
                run.emit("coverage", {"score": round(coverage.score, 4), "method": coverage.method})
        named = (
            _name_task(run, run.prompts.judge(question, models, "task")) if options.task else None
        )
        if named:
            run.emit("task_named", {"name": named})
        for planned in plan.sources:
            # A paper the plan ruled out is not read: half the grade scale below the cut,
            # no reading lifts it (measured on dev: the same citations for half the calls).
            if planned.relevance in (Relevance.RECOMMENDED, Relevance.NOT_RELEVANT):
                continue
            summary = run.withhold(
                by_id[planned.source_id].summary, f"summary of {planned.source_id}"
            )
            reading = _ask(
                run,
                run.prompts.judge(
                    question, models, {"title": planned.title, "summary": shorten(summary, limit)}
                ),
            )
            if reading is None:
                continue
            readings[planned.label] = reading
            run.emit(
                "judgement",
                {
                    "source_id": planned.source_id,
                    "title": planned.title,
                    "score": round(reading.score, 4),
                    "method": reading.method,
                },
            )
    rule = JudgeRule(
        weight=options.weight, cite_at=options.cite_at, coverage_min=options.coverage_min
    )
    return apply_judgements(plan, readings, coverage, rule, named)


def described_models(run: Run, plan: EvidencePlan) -> tuple[list[dict[str, str]], bool]:
    """What each recommended model does, as the judge reads it, and whether any is described.

    A model is described by its step's task (or the task its name says) and its summary,
    never by its name alone. ``False`` when no model has either: the judge then has only
    names to read, and coverage is not asked.
    """
    by_id = {source.id: source for source in run.sources.sources}
    steps = {label: step for step in plan.skeleton() for label in (step.label, *step.alternatives)}
    models = []
    described = False
    for planned in plan.sources:
        if planned.relevance is Relevance.RECOMMENDED:
            step = steps.get(planned.label)
            task = (step.task if step else None) or planned.evidence.name_says
            summary = run.withhold(
                by_id[planned.source_id].summary, f"summary of {planned.source_id}"
            )
            described = described or bool(task or summary.strip())
            # The name is offered to templates that want it; the packaged ones leave it out.
            models.append(
                {
                    "task": task or "a task the platform did not describe",
                    "summary": shorten(summary, run.settings.judge.summary_chars),
                    "name": planned.title,
                }
            )
    return models, described


def _ask(run: Run, messages: list[ChatMessage]) -> Reading | None:
    """One yes/no judgement; None when the reply says neither (the plan then decides)."""
    context = PromptContext(question=run.question, sources=[], passages=[], weak_match=False)
    try:
        completion = run.backend.complete(
            CompletionRequest(
                messages=messages,
                json_schema=None,
                context=context,
                max_tokens=1,
                top_logprobs=run.settings.judge.top_logprobs,
            )
        )
    except BackendResponseError:
        return None  # an empty or refused one-token reply: no reading, not a failure
    run.usage.add(completion)
    choices = [(c.token, c.logprob) for c in completion.top_logprobs or []]
    return score_reply(completion.text, choices)


def _name_task(run: Run, messages: list[ChatMessage]) -> str | None:
    """The task as the model names it, cleaned like all its text; None when unusable."""
    context = PromptContext(question=run.question, sources=[], passages=[], weak_match=False)
    try:
        completion = run.backend.complete(
            CompletionRequest(messages=messages, json_schema=None, context=context, max_tokens=16)
        )
    except BackendResponseError:
        return None
    run.usage.add(completion)
    line = completion.text.strip().splitlines()[0] if completion.text.strip() else ""
    name = run.clean(line.strip(" \t\"'`*.:-"), "the task the model named")
    words = name.split()
    if (
        not 1 <= len(words) <= 8
        or len(name) > 80
        or not re.search(r"[A-Za-z]", name)
        or "[" in name
        or ALIAS_RE.search(name)  # "Galaxy S10 ...": reads as a source id the answer cites
    ):
        return None
    return name[:1].lower() + name[1:] if not name[:2].isupper() else name

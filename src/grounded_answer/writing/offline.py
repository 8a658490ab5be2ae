"""The offline writer: an answer draft written from the evidence plan alone.

It is the stub backend's answer, and the draft a language model rewords in guided mode
(:mod:`grounded_answer.writing.guided`). Every sentence is assembled from the plan, the source
records and the task table, so it cannot cite anything else; it is built, not validated,
and goes through the same checks as any model's output.

A slot's sentence can carry *tails*: a sentence quoted from a source's summary, and for a
step the recommended models that are alternatives for it. Guided writing shows a model
the sentences without their tails and puts the tails back after its own sentence
(:func:`with_tails`), so a model never pays to copy source text.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from ..grounding.draft import (
    ACTION_CHARS,
    ALIAS_RE,
    IO_CHARS,
    STATEMENT_CHARS,
    WHY_CHARS,
    AnswerDraft,
    DraftReference,
    DraftStep,
    DraftTask,
    DraftWorkflow,
    shorten,
)
from ..grounding.links import scrub_links
from ..planning import EvidencePlan, PlannedStep, Relevance
from ..sources.tasks import guess_tasks
from .prompts import PromptContext, PromptSource

__all__ = ["DraftTails", "draft_tails", "offline_draft", "with_tails"]

# A sentence ends at . ! ? before a capital letter: "(e.g. semantic" and "etc.) to" go on.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[])")


def offline_draft(
    context: PromptContext, *, language_note: bool = True, tails: bool = True
) -> AnswerDraft:
    """The offline answer as a draft (aliases, no links), written from the plan only.

    The draft is built, not validated: it goes through the same checks as any model's
    output (:func:`~grounded_answer.grounding.draft.check_draft`, or its JSON through
    :func:`~grounded_answer.grounding.draft.validate_draft`), so the stub earns no trust.

    ``language_note`` adds that the answer is in English when the question is not; guided
    writing turns it off, since the language model then writes in the question's language.
    ``tails=False`` leaves out what follows a slot's own sentence (see
    :func:`draft_tails`): guided writing shows a model only what it should reword.
    """
    clean = _cleaner(context)
    plan = context.plan
    language = (
        ""
        if plan is None or plan.question.english or not language_note
        else " The question is not in English; this offline answer is written in English."
    )
    if plan is None or not plan.verdict.answerable:
        reason = plan.verdict.reason if plan else "No evidence plan was made for this question."
        return AnswerDraft.model_construct(
            answerable=False,
            task=DraftTask.model_construct(
                statement=shorten("The user asks: " + clean(context.question), STATEMENT_CHARS),
                source_ids=[],
            ),
            workflow=None,
            references=[],
            note=shorten(clean(reason) + language, STATEMENT_CHARS),
        )
    shown = {s.alias: s for s in context.sources}
    models = [s for s in plan.sources if s.relevance is Relevance.RECOMMENDED]
    named = _named(plan, clean)
    said = _tails(plan, shown, named, clean) if tails else None
    steps = [_step(step, named, said, n) for n, step in enumerate(plan.steps)]
    step_of = {step.label: n for n, step in enumerate(plan.steps, start=1)}
    step_of.update({alt: step_of[step.label] for step in plan.steps for alt in step.alternatives})
    references: list[DraftReference] = []
    for n, source in enumerate(plan.cited):
        if source.relevance is Relevance.RECOMMENDED:
            task = next(
                (
                    s.task
                    for s in plan.steps
                    if source.label in (s.label, *s.alternatives) and s.task
                ),
                None,
            )
            why = (
                f"Recommended model{f' for {task}' if task else ''}; it runs step "
                f"{step_of[source.label]} of the workflow."
                + (
                    ""
                    if source.label in (s.label for s in plan.steps)
                    else " It is an alternative for that step."
                )
            )
        else:
            # The reference already says "(paper)"; a prefix saying so again was the line
            # a translating model rendered worst ("correlation paper" in Japanese).
            why = f"It {source.reason}."
        references.append(
            DraftReference.model_construct(
                source_id=source.label,
                why=shorten(with_tails(why, said.why[n]) if said else why, WHY_CHARS),
            )
        )
    workflow = (
        DraftWorkflow.model_construct(
            input=shorten(plan.steps[0].input.capitalize(), IO_CHARS),
            steps=steps,
            output=shorten(steps[-1].output, IO_CHARS),
        )
        if steps
        else None
    )
    return AnswerDraft.model_construct(
        answerable=True,
        task=DraftTask.model_construct(
            statement=shorten(
                _with_reading(_statement(plan, named, shown, clean), plan, clean), STATEMENT_CHARS
            ),
            source_ids=[s.label for s in models] or [s.label for s in plan.cited[:1]],
        ),
        workflow=workflow,
        references=references,
        note=language.strip(),
    )


def _statement(
    plan: EvidencePlan,
    named: dict[str, str],
    shown: dict[str, PromptSource],
    clean: Callable[[str], str],
) -> str:
    """What the user is doing, and what the recommended model does when that differs."""
    asked = next((t for t in plan.tasks if t.origin == "question"), None)
    doing = [t for t in plan.tasks if t.origin in ("model", "papers")]
    models = [s for s in plan.sources if s.relevance is Relevance.RECOMMENDED]
    # A name that says more than the task ("ChangeDet-": change detection, read as object
    # detection) is quoted beside the model, so the user reads both.
    names = ", ".join(
        named[s.label][:-1] + f", named for {s.evidence.name_says})"
        if s.evidence.name_says
        else named[s.label]
        for s in models
    )
    plural = len(models) > 1
    # A task the table has never seen is still readable in a platform name's prefix; it
    # says more than a task read from related papers, which may be the table's nearest guess.
    named_for = [
        f"{named[s.label]} is named for {s.evidence.name_says}"
        for s in models
        if s.evidence.name_says
    ]
    closest = next((s for s in plan.cited if s.relevance is Relevance.RELEVANT), None)
    if named_for and not any(t.origin == "model" for t in plan.tasks):
        return (
            f"{'; '.join(named_for)}: that is what the platform recommends "
            f"{'them' if plural else 'it'} for"
            + (f", and the closest related work is {named[closest.label]}." if closest else ".")
        )
    if len({t.name for t in doing}) > 1 and len(plan.steps) > 1:
        chain = "; then ".join(f"{named[step.label]} {step.action}" for step in plan.steps)
        return (
            f"{' then '.join(dict.fromkeys(s.task or '' for s in plan.steps)).capitalize()}:"
            f" you have {plan.steps[0].input} and want {plan.steps[-1].output}. "
            f"The recommended models work as a chain: {chain}."
        )
    if doing and doing[0].origin == "papers":
        # The table knows no task for the model: the papers' task is a reading of its
        # related work, so say so, and name the closest paper in its own words.
        task = doing[0]
        return (
            f"The platform recommends {names} for this. Its related papers are about "
            f"{task.name} (you have {task.input} and want {task.output})"
            + (f"; the closest is {named[closest.label]}." if closest else ".")
        )
    if doing:
        task = doing[0]
        built = (
            f"The recommended model{'s' if plural else ''} {names} "
            f"{'are' if plural else 'is'} built for this: "
            f"{'each one' if plural else 'it'} {task.action}."
        )
        if asked and asked.name not in {t.name for t in doing}:
            # What the user did first (enlarging) is not what the model does (deblurring):
            # say both, so the user sees how the recommendation fits.
            return (
                f"You have {asked.input} and want {asked.output}: that is "
                f"{asked.name}. The recommended model{'s' if plural else ''} {names} "
                f"{'do' if plural else 'does'} {task.name}: "
                f"{'each one' if plural else 'it'} {task.action}, the part of this that the "
                "provided sources cover."
            )
        return f"{task.name.capitalize()}: you have {task.input} and want {task.output}. {built}"
    if asked:
        return (
            f"{asked.name.capitalize()}: you have {asked.input} and want {asked.output}. "
            f"The recommended model{'s' if plural else ''} {names} "
            f"{'are' if plural else 'is'} what the platform suggests for it."
        )
    described = (
        _first_sentence(clean(shown[models[0].label].summary))
        if models and models[0].label in shown
        else ""
    )
    if described:
        return (
            f"The user wants to apply {names or 'the provided sources'} to their data. "
            f"Its sources describe it this way: {described}"
        )
    # No source names the task: the closest related work says what the model is about.
    return f"The user wants to apply {names or 'the provided sources'} to their data" + (
        f"; the closest related work is {named[closest.label]}, which describes what it does."
        if closest
        else "."
    )


def _with_reading(statement: str, plan: EvidencePlan, clean: Callable[[str], str]) -> str:
    """The statement, and the task as the language model read it when it says more.

    The vocabulary cannot name a task it has never seen ("grammar correction"); a model
    that read the question can. Its words come after the plan's, as its reading.
    """
    reader = next((t for t in plan.tasks if t.origin == "reader"), None)
    if reader is None:
        return statement
    words = [w for w in re.findall(r"[a-z0-9]+", reader.name.lower()) if len(w) > 3]
    have = statement.lower()
    if words and all(w[:5] in have for w in words):
        return statement
    return f"{statement.rstrip()} Read by the language model, the task is {clean(reader.name)}."


def _step(step: PlannedStep, named: dict[str, str], said: DraftTails | None, n: int) -> DraftStep:
    action = f"{named[step.label]} {step.action}"
    return DraftStep.model_construct(
        source_id=step.label,
        input=shorten(step.input, IO_CHARS),
        action=shorten(with_tails(action, *said.actions[n]) if said else action, ACTION_CHARS),
        output=shorten(step.output, IO_CHARS),
    )


@dataclass(frozen=True)
class DraftTails:
    """What the offline draft adds after a slot's own sentence, slot by slot."""

    #: For each planned step: the first sentence of its model's summary ("" without one),
    #: then the alternatives for it ("" without any).
    actions: list[tuple[str, str]]
    #: For each cited source, the summary sentence that names its task ("" for a model).
    why: list[str]


def draft_tails(context: PromptContext) -> DraftTails:
    """The tails of the offline draft's slots (see :func:`with_tails`)."""
    plan = context.plan
    if plan is None or not plan.verdict.answerable:
        return DraftTails(actions=[], why=[])
    clean = _cleaner(context)
    return _tails(plan, {s.alias: s for s in context.sources}, _named(plan, clean), clean)


def _tails(
    plan: EvidencePlan,
    shown: dict[str, PromptSource],
    named: dict[str, str],
    clean: Callable[[str], str],
) -> DraftTails:
    def summary(label: str) -> str:
        return clean(shown[label].summary) if label in shown else ""

    return DraftTails(
        actions=[
            (
                _first_sentence(summary(step.label)),
                "Alternatives: " + ", ".join(named[a] for a in step.alternatives)
                if step.alternatives
                else "",
            )
            for step in plan.steps
        ],
        why=[
            ""
            if source.relevance is Relevance.RECOMMENDED
            else _evidence_sentence(summary(source.label), source.evidence.tasks)
            for source in plan.cited
        ],
    )


def with_tails(sentence: str, *tails: str) -> str:
    """``sentence`` followed by its tails (a quoted sentence, the alternatives), if any."""
    parts = [sentence.rstrip().rstrip("."), *(t for t in tails if t)]
    return ". ".join(parts) if len(parts) > 1 else sentence


def _named(plan: EvidencePlan, clean: Callable[[str], str]) -> dict[str, str]:
    """How the draft names each source in play: its (cleaned) title and its label."""
    return {s.label: f"{clean(s.title)} ({s.label})" for s in plan.sources}


def _cleaner(context: PromptContext) -> Callable[[str], str]:
    aliases = set(context.aliases)

    def clean(text: str) -> str:
        # Source text is untrusted: no links, no alias-like tokens it did not earn.
        scrubbed, _ = scrub_links(text, (), replacement="")
        scrubbed = ALIAS_RE.sub(lambda m: m.group(0) if m.group(0) in aliases else "", scrubbed)
        return " ".join(scrubbed.split())

    return clean


def _evidence_sentence(summary: str, tasks: list[str]) -> str:
    """The summary sentence that names the paper's task, else its first sentence."""
    sentences = [s for s in _SENTENCE_END.split(summary.strip()) if s]
    for sentence in sentences:
        if tasks and tasks[0] in {h.name for h in guess_tasks(sentence)}:
            return shorten(sentence, 220)
    return shorten(sentences[0], 220) if sentences else ""


def _first_sentence(text: str, limit: int = 220) -> str:
    sentence = _SENTENCE_END.split(text.strip(), maxsplit=1)[0] if text.strip() else ""
    return shorten(sentence, limit)

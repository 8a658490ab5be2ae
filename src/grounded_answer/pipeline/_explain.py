"""``explain()``: the stages in order, one :class:`~._run.Run` passed down.

sources -> retrieve -> plan -> write -> validate/repair -> hold to the plan -> Answer.
Data flows one way. The only links that can reach the Answer are the link fields of the
source records in play; the model's output is checked against them by the draft
validators, repaired by re-asking with the exact errors, and finally either refused
(policy ``strict``) or stripped of what is not grounded (policy ``drop``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..answer import Answer, Provenance, ValidationReport
from ..backends.base import Backend, make_backend
from ..backends.cache import cached
from ..config import Settings, load_settings
from ..embeddings import Embedder, select_embedder
from ..grounding.draft import (
    GroundingContext,
    check_draft,
    draft_json_schema,
    salvage_draft,
    validate_draft,
)
from ..grounding.injection import QUESTION_WITHHELD, quarantine
from ..grounding.links import defang
from ..planning.enforce import hold_to_plan
from ..sources import Bundle, Corpus, Role
from ..writing.offline import offline_draft
from ..writing.prompts import load_prompts
from ._assemble import Sections, assemble_answer
from ._inputs import check_question, resolve_sources
from ._judge import judge_plan, judging
from ._preview import Preview
from ._retrieve import english_question, plan_evidence, retrieve_passages, retriever_for
from ._run import Run
from ._write import CHECKS, prompt_context, write, write_guided

__all__ = ["aexplain", "explain"]


def explain(
    question: str | None = None,
    *,
    bundle: Bundle | str | Path | None = None,
    corpus: Corpus | str | Path | None = None,
    settings: Settings | None = None,
    backend: Backend | None = None,
    embedder: Embedder | None = None,
    on_event: Callable[[str, dict[str, Any]], None] | None = None,
) -> Answer:
    """Answer ``question`` from the provided sources only.

    Args:
        question: The user's question; defaults to the bundle's (or corpus's example) question.
        bundle: A bundle file or parsed :class:`Bundle`; then only its sources are allowed.
        corpus: A corpus file or :class:`Corpus` (default: ``settings.corpus``, else the
            packaged default corpus). Ignored when ``bundle`` is given.
        settings: Configuration; default :func:`load_settings` (environment, TOML file).
        backend: A backend object to use instead of the configured one (tests, custom code).
        embedder: An embedder to use instead of the configured sentence-transformers model.
        on_event: Called as the run goes (from the calling thread), so a slow local model
            shows progress: ``("plan", plan JSON)`` once the plan is made; with a language
            model, ``("coverage", {...})``, ``("task_named", {...})`` and one
            ``("judgement", {...})`` per source it reads, then ``("plan", ...)`` again with
            the judgements applied; then ``("section", {"kind", "index", "data"})`` for
            the task, each step and each reference as soon as its text is written and
            passes its checks (the model's reply is streamed for this). A listener that
            raises is logged and ignored.

    Raises:
        UserInputError: bad question, bundle, corpus or settings (fix and call again).
        AnswerRunError: the backend failed, or (policy ``strict``) kept breaking the rules.

    """
    started = time.perf_counter()
    settings = settings or load_settings()
    sources, default_question = resolve_sources(bundle, corpus, settings)
    question = check_question(question if question is not None else default_question, settings)
    # Settings errors first: a wrong backend name must not wait for an encoder to load.
    backend = backend or make_backend(settings.llm)
    embedder = embedder or select_embedder(settings)
    run = Run(
        question=question,
        settings=settings,
        sources=sources,
        backend=cached(backend, settings.index.cache_dir, settings.llm),  # if llm.cache
        embedder=embedder,
        prompts=load_prompts(settings.answer.prompts_dir),
        started=started,
        on_event=on_event,
    )
    with run.timed("index"):
        retriever = retriever_for(sources, embedder, settings)

    restated = english_question(run)
    run.timings["embed_query"] = 0.0
    with run.timed("retrieve"):
        hits, ranked = retrieve_passages(retriever, restated or question, settings, run.timings)
    with run.timed("plan"):
        plan = plan_evidence(question, retriever, ranked, settings, run.withhold, restated=restated)
    if run.on_event is not None:  # the plan's JSON is built only for a listener
        run.emit("plan", plan.model_dump(mode="json"))
    if judging(run):
        plan = judge_plan(run, plan)
        if run.on_event is not None:
            run.emit("plan", plan.model_dump(mode="json"))

    context, alias_to_source = prompt_context(run, hits, plan)
    mode = settings.answer.mode
    if mode == "auto":
        mode = "free" if run.backend.offline else "guided"
    language = (
        plan.question.language if settings.answer.language == "auto" else settings.answer.language
    )
    grounding = GroundingContext(
        aliases=frozenset(alias_to_source),
        link_keys=frozenset(k for s in alias_to_source.values() for k in s.link_keys),
        step_aliases=frozenset(a for a, s in alias_to_source.items() if s.role is Role.MODEL)
        or None,
        withheld=tuple(sentence for _, sentence in run.withheld),
        question=context.question,
    )
    with run.timed("generate"):
        if mode == "plan":
            # The model judged; the offline writer writes, with no call (and so in English).
            draft = check_draft(offline_draft(context), grounding)
            report = ValidationReport(
                checks=CHECKS, attempts=0, policy=settings.answer.policy, valid_first_try=True
            )
        elif mode == "guided":
            # With a listener, sections are sent as each is written and checked (_preview).
            preview = (
                Preview(run, Sections(alias_to_source, ranked, plan), plan)
                if run.on_event is not None
                else None
            )
            draft, report = write_guided(run, context, plan, grounding, language, preview)
        else:
            messages = run.prompts.messages(context)
            grounding = replace(grounding, instructions=(messages[0].content,))
            schema = draft_json_schema(
                context.aliases, [s.alias for s in context.sources if s.role == "model"] or None
            )
            draft, report = write(
                run,
                messages,
                context,
                schema,
                check=lambda text: validate_draft(text, grounding),
                salvage=lambda text: salvage_draft(text, grounding),
            )
        draft, held = hold_to_plan(
            draft, plan, grounding, model_verdict=settings.answer.verdict == "model"
        )
        report = report.model_copy(
            update={
                "withheld": [
                    f"{where}: a sentence addressed to the model was withheld from the prompt"
                    for where, _ in run.withheld
                ]
                + (
                    ["question: nothing else was left, so the model was sent a neutral placeholder"]
                    if context.question == QUESTION_WITHHELD
                    else []
                )
                + run.cleaned,
                "plan": [plan.verdict.reason, *held],
                "mode": mode,
                "language": language
                if mode == "guided"
                else "en"
                if run.backend.offline or mode == "plan"
                else language,
            }
        )
        if sources.dropped:
            report = report.model_copy(
                update={"sources_dropped": [defang(d) for d in sources.dropped]}
            )
    run.timings["total"] = time.perf_counter() - run.started
    provenance = Provenance(
        backend=run.backend.name,
        model=run.backend.model,
        offline=run.backend.offline,
        corpus=sources.name,
        corpus_fingerprint=sources.fingerprint,
        embedding_model=embedder.model_id,
        embedding_note=getattr(embedder, "fallback_reason", None),
        question_restated=restated,
        index_status=retriever.index.status,
        # Passages quote source summaries, which may carry links that are not sources,
        # and sentences addressed to the model, which are withheld here as in the prompt.
        retrieved=[
            hit.model_copy(update={"text": quarantine(defang(hit.text))[0]}) for hit in hits
        ],
        timings={name: round(value, 6) for name, value in run.timings.items()},
        usage=run.usage,
    )
    return assemble_answer(question, draft, alias_to_source, ranked, report, provenance, plan)


async def aexplain(
    question: str | None = None,
    *,
    bundle: Bundle | str | Path | None = None,
    corpus: Corpus | str | Path | None = None,
    settings: Settings | None = None,
    backend: Backend | None = None,
    embedder: Embedder | None = None,
    on_event: Callable[[str, dict[str, Any]], None] | None = None,
) -> Answer:
    """:func:`explain` for async applications: runs in a worker thread, never blocks the loop.

    ``on_event`` is called from that worker thread.
    """
    return await asyncio.to_thread(
        explain,
        question,
        bundle=bundle,
        corpus=corpus,
        settings=settings,
        backend=backend,
        embedder=embedder,
        on_event=on_event,
    )

"""``explain()``: question -> retrieve -> prompt -> backend -> validate (repair) -> Answer.

Data flows one way. The only links that can reach the Answer are the link fields of the
source records in play; the model's output is checked against them by the draft
validators, repaired by re-asking with the exact errors, and finally either refused
(policy ``strict``) or stripped of what is not grounded (policy ``drop``).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ._resources import default_corpus_path
from .answer import (
    Answer,
    Provenance,
    Reference,
    Task,
    Usage,
    ValidationReport,
    Workflow,
    WorkflowStep,
)
from .backends.base import Backend, Completion, CompletionRequest, make_backend
from .backends.cache import cached
from .bundle import Bundle, load_bundle
from .config import Settings, load_settings
from .corpus import Corpus, Role, Source, load_corpus
from .embeddings import Embedder, build_embedder, select_embedder
from .errors import Attempt, BundleParseError, CorpusError, QuestionError, UngroundedAnswerError
from .grounding.draft import (
    ACTION_CHARS,
    ALIAS_RE,
    WHY_CHARS,
    AnswerDraft,
    GroundingContext,
    check_draft,
    describe_error,
    draft_json_schema,
    salvage_draft,
    shorten,
    strip_fences,
    validate_draft,
)
from .grounding.injection import QUESTION_WITHHELD, quarantine
from .grounding.links import defang, scrub_links
from .guided import (
    GuidedDraft,
    apply_translation,
    check_tails,
    guided_schema,
    language_name,
    merge_guided,
    salvage_guided,
    translation_lines,
    validate_guided,
)
from .plan import EvidencePlan, PlannedSource, Relevance, make_plan, read_question
from .prompts import (
    ChatMessage,
    PromptContext,
    PromptPassage,
    Prompts,
    PromptSource,
    load_prompts,
)
from .retrieve import Hit, Retriever, get_retriever
from .writer import draft_tails, offline_draft

__all__ = [
    "aexplain",
    "check_question",
    "explain",
    "hold_to_plan",
    "plan_evidence",
    "resolve_sources",
    "restate_question",
    "retrieve_passages",
    "retriever_for",
]

CHECKS = [
    "output is a JSON object matching the answer schema",
    "every cited source id is one of the provided sources",
    "no URL, domain, arXiv id or GitHub path outside the sources' link fields, in any text",
    "an answerable answer has task, workflow and references; an unanswerable one says why",
    "the evidence plan's verdict holds, every recommended model runs a workflow step and is "
    "cited, and no source the plan ruled out is cited",
]


def explain(
    question: str | None = None,
    *,
    bundle: Bundle | str | Path | None = None,
    corpus: Corpus | str | Path | None = None,
    settings: Settings | None = None,
    backend: Backend | None = None,
    embedder: Embedder | None = None,
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
    timings: dict[str, float] = {}
    mark = time.perf_counter()
    retriever = retriever_for(sources, embedder, settings)
    timings["index"] = time.perf_counter() - mark
    usage = Usage()
    backend = cached(backend, settings.index.cache_dir, settings.llm)  # if llm.cache
    prompts = load_prompts(settings.answer.prompts_dir)
    reading = read_question(question)
    restated = None
    # The embedding model reads English: a question in a script it cannot read says
    # nothing to it, and one in French or Spanish only a little (a French question about
    # describing sounds scored 0.10 against an audio-captioning bundle).
    if reading.language != "en" and not backend.offline and settings.llm.restate_question:
        mark = time.perf_counter()
        restated = restate_question(backend, prompts, question, usage)
        timings["restate"] = time.perf_counter() - mark
    mark = time.perf_counter()
    timings["embed_query"] = 0.0
    hits, ranked = retrieve_passages(retriever, restated or question, settings, timings)
    timings["retrieve"] = time.perf_counter() - mark

    mark = time.perf_counter()
    withheld: list[tuple[str, str]] = []
    plan = plan_evidence(question, retriever, ranked, settings, withheld, restated=restated)
    timings["plan"] = time.perf_counter() - mark
    context, alias_to_source = _prompt_context(question, hits, plan, sources, withheld)
    mode = settings.answer.mode
    if mode == "auto":
        mode = "free" if backend.offline else "guided"
    language = plan.question.language if settings.answer.language == "auto" \
        else settings.answer.language
    grounding = GroundingContext(
        aliases=frozenset(alias_to_source),
        link_keys=frozenset(k for s in alias_to_source.values() for k in s.link_keys),
        step_aliases=frozenset(a for a, s in alias_to_source.items() if s.role is Role.MODEL)
        or None,
        withheld=tuple(sentence for _, sentence in withheld),
        question=context.question,
    )
    mark = time.perf_counter()
    if mode == "guided":
        draft, report = _write_guided(backend, prompts, context, plan, grounding, language,
                                      settings, usage)
    else:
        messages = prompts.messages(context)
        grounding = replace(grounding, instructions=(messages[0].content,))
        schema = draft_json_schema(
            context.aliases, [s.alias for s in context.sources if s.role == "model"] or None)
        draft, report = _write(
            backend, prompts, messages, context, schema, settings, usage,
            check=lambda text: validate_draft(text, grounding),
            salvage=lambda text: salvage_draft(text, grounding),
        )
    draft, held = hold_to_plan(draft, plan, grounding,
                               model_verdict=settings.answer.verdict == "model")
    withheld = _unique_pairs(withheld)
    report = report.model_copy(update={
        "withheld": [f"{where}: a sentence addressed to the model was withheld from the prompt"
                     for where, _ in withheld]
        + (["question: nothing else was left, so the model was sent a neutral placeholder"]
           if context.question == QUESTION_WITHHELD else []),
        "plan": [plan.verdict.reason, *held],
        "mode": mode,
        "language": language if mode == "guided" else "en" if backend.offline else language,
    })
    if sources.dropped:
        report = report.model_copy(update={"sources_dropped": [defang(d) for d in sources.dropped]})
    timings["generate"] = time.perf_counter() - mark
    timings["total"] = time.perf_counter() - started
    provenance = Provenance(
        backend=backend.name,
        model=backend.model,
        offline=backend.offline,
        corpus=sources.name,
        corpus_fingerprint=sources.fingerprint,
        embedding_model=embedder.model_id,
        embedding_note=getattr(embedder, "fallback_reason", None),
        question_restated=defang(restated) if restated else None,
        index_status=retriever.index.status,
        # Passages quote source summaries, which may carry links that are not sources.
        # and sentences addressed to the model, which are withheld here as in the prompt.
        retrieved=[hit.model_copy(update={"text": quarantine(defang(hit.text))[0]})
                   for hit in hits],
        timings={name: round(value, 6) for name, value in timings.items()},
        usage=usage,
    )
    return _build_answer(question, draft, alias_to_source, ranked, report, provenance, plan)


async def aexplain(
    question: str | None = None,
    *,
    bundle: Bundle | str | Path | None = None,
    corpus: Corpus | str | Path | None = None,
    settings: Settings | None = None,
    backend: Backend | None = None,
    embedder: Embedder | None = None,
) -> Answer:
    """:func:`explain` for async applications: runs in a worker thread, never blocks the loop."""
    return await asyncio.to_thread(
        explain, question, bundle=bundle, corpus=corpus, settings=settings, backend=backend,
        embedder=embedder,
    )


def resolve_sources(
    bundle: Bundle | str | Path | None,
    corpus: Corpus | str | Path | None,
    settings: Settings,
) -> tuple[Corpus, str | None]:
    """The corpus in play and its default question: the bundle's, else the corpus's.

    A :class:`Bundle` or :class:`Corpus` handed over as an object is held to the same
    ``sources.max_bundle_sources`` / ``max_corpus_sources`` as one read from a file.
    """
    limits = settings.sources
    if bundle is not None:
        parsed = bundle if isinstance(bundle, Bundle) else load_bundle(bundle, settings=settings)
        if len(parsed.corpus.sources) > limits.max_bundle_sources:
            raise BundleParseError(
                f"{len(parsed.corpus.sources)} sources; the limit is "
                f"{limits.max_bundle_sources} (sources.max_bundle_sources)", path=parsed.path)
        return parsed.corpus, parsed.question
    if isinstance(corpus, Corpus):
        if len(corpus.sources) > limits.max_corpus_sources:
            raise CorpusError(f"{len(corpus.sources)} sources; the limit is "
                              f"{limits.max_corpus_sources} (sources.max_corpus_sources)")
        return corpus, corpus.question
    loaded = load_corpus(corpus or settings.corpus or default_corpus_path(), settings=settings)
    return loaded, loaded.question


def _ungrounded(message: str, attempts: list[Attempt]) -> UngroundedAnswerError:
    last = attempts[-1].errors if attempts else ()
    # The errors quote the offending links; the message shows them defanged.
    detail = defang("; ".join(last[:3])) + (" ..." if len(last) > 3 else "")
    return UngroundedAnswerError(message, attempts=attempts, detail=detail)


def retriever_for(
    corpus: Corpus, embedder: Embedder, settings: Settings, *, show_progress: bool = False
) -> Retriever:
    """The shared retriever for ``corpus`` under ``settings``.

    A corpus small enough to be scored whole (a bundle) gets a small flat FAISS store; a
    real corpus goes to the configured store. Both are synced incrementally.
    """
    from .stores import configure_faiss  # numpy and faiss load with the first index

    small = _scored_whole(corpus, settings)
    configure_faiss(settings.index.threads, embedder.dimension)
    return get_retriever(
        corpus, embedder, settings.index.cache_dir, batch_size=settings.embedding.batch_size,
        show_progress=show_progress, store=None if small else settings.index,
        build=None if small else build_embedder(settings, embedder),
    )


def check_question(question: str | None, settings: Settings) -> str:
    """The question with its whitespace collapsed, checked before any work is spent on it.

    The CLI, the server and :func:`explain` all call it, so every entry point refuses the
    same questions with the same words.

    Raises:
        QuestionError: no question, not text, empty, or longer than
            ``answer.max_question_chars``.

    """
    if question is None:
        raise QuestionError("no question given, and the bundle or corpus has no example question")
    if not isinstance(question, str):
        raise QuestionError(f"the question must be text, not {type(question).__name__}")
    cleaned = " ".join(question.split())
    if not cleaned:
        raise QuestionError("the question is empty")
    limit = settings.answer.max_question_chars
    if len(cleaned) > limit:
        raise QuestionError(
            f"the question has {len(cleaned)} characters; the limit is {limit} "
            "(answer.max_question_chars)"
        )
    return cleaned


def retrieve_passages(
    retriever: Retriever, question: str, settings: Settings,
    timings: dict[str, float] | None = None,
) -> tuple[list[Hit], list[tuple[Source, float]]]:
    """The top-k hits for ``question`` and every scored source, best first."""
    corpus = retriever.corpus
    k = settings.retrieval.k
    small = _scored_whole(corpus, settings)
    # A small corpus (a bundle) is scored whole, so every source gets a score and none of
    # the recommended models is lost to a k cut-off.
    options = settings.retrieval
    everything = retriever.search(
        question,
        max(k, len(retriever.index.passages)) if small else k,
        method=options.small_corpus_method if small else options.method,
        fusion=options.fusion, alpha=options.alpha,
        max_per_source=options.max_per_source, stemmer=options.stemmer, timings=timings,
    )
    ranked = retriever.rank_sources(everything)
    return everything[:k], ranked if small else ranked[: settings.retrieval.max_sources]


def plan_evidence(
    question: str,
    retriever: Retriever,
    ranked: list[tuple[Source, float]],
    settings: Settings,
    withheld: list[tuple[str, str]] | None = None,
    *,
    restated: str | None = None,
) -> EvidencePlan:
    """The evidence plan over the sources in play (see :mod:`grounded_answer.plan`).

    A corpus scored whole (every bundle) has all its sources in play; a larger one has
    the best-ranked ``retrieval.max_sources``. Titles in the plan are shown to users and
    models, so links and sentences addressed to the model are taken out of them first.
    """
    corpus = retriever.corpus
    whole = _scored_whole(corpus, settings)
    scored = {source.id for source, _ in ranked}
    in_play = [s for s in corpus.sources if whole or s.id in scored]
    keys = frozenset(k for s in in_play for k in s.link_keys)
    titles = {}
    for source in in_play:
        kept, removed = quarantine(source.title)
        if withheld is not None:
            withheld.extend((f"title of {source.id}", sentence) for sentence in removed)
        titles[source.id] = scrub_links(kept or source.id, keys)[0]
    return make_plan(
        question, in_play, {source.id: score for source, score in ranked},
        retriever.model_affinity() if whole else None,
        min_score=settings.retrieval.min_score, titles=titles, restated=restated,
    )


def hold_to_plan(
    draft: AnswerDraft, plan: EvidencePlan, grounding: GroundingContext, *,
    model_verdict: bool = False,
) -> tuple[AnswerDraft, list[str]]:
    """The draft with the plan's invariants restored, and what had to be restored.

    Whatever the backend wrote, the plan decides whether the question is answerable,
    every recommended model runs a step of the workflow and is cited, and no source the
    plan ruled out is cited. What is added comes from the plan's own sentences and is
    validated like the backend's output.
    """
    notes: list[str] = []
    data = draft.model_dump()
    if model_verdict and draft.answerable != plan.verdict.answerable and (
            not draft.answerable or draft.workflow):
        # answer.verdict = "model": a strong model may overrule the plan, on the record.
        notes.append(f"the model overruled the plan's verdict: "
                     f"{'answerable' if draft.answerable else 'not answerable'}")
        if not draft.answerable:
            data.update(workflow=None, references=[],
                        note=draft.note or "The model judged the sources insufficient.")
            data["task"]["source_ids"] = []
            return AnswerDraft.model_validate(data, context=grounding), notes
        plan = plan.model_copy(update={"verdict": plan.verdict.model_copy(
            update={"answerable": True})})
    if not plan.verdict.answerable:
        if draft.answerable:
            notes.append("the backend's verdict was replaced by the plan's: not answerable")
        data.update(answerable=False, workflow=None, references=[],
                    note=draft.note or plan.verdict.reason)
        data["task"]["source_ids"] = []
        return AnswerDraft.model_validate(data, context=grounding), notes
    if not draft.answerable:
        notes.append("the backend declined a question the plan judged answerable; the "
                     "plan's workflow and references were used")
        data.update(workflow=None, references=[])
    labels = {s.label: s for s in plan.sources}
    workflow = data["workflow"]
    steps: list[dict[str, str]] = workflow["steps"] if workflow else []
    present = {step["source_id"] for step in steps}
    for step in plan.steps:
        if not {step.label, *step.alternatives} & present:
            notes.append(f"{step.label} (a recommended model) was missing from the "
                         "workflow and was added from the plan")
            steps.append({"source_id": step.label, "input": step.input,
                          "action": shorten(step.action, ACTION_CHARS), "output": step.output})
    order = {label: n for n, planned_step in enumerate(plan.steps)
             for label in (planned_step.label, *planned_step.alternatives)}
    steps.sort(key=lambda drafted: order.get(drafted["source_id"], len(order)))
    if steps and not workflow:
        data["workflow"] = {"input": steps[0]["input"], "steps": steps,
                            "output": steps[-1]["output"]}
    references = [r for r in data["references"]
                  if labels[r["source_id"]].relevance is not Relevance.NOT_RELEVANT]
    if len(references) < len(data["references"]):
        notes.append("citations of sources the plan found not relevant were removed")
    cited = {r["source_id"] for r in references}
    for planned in plan.cited:
        if planned.relevance is Relevance.RECOMMENDED and planned.label not in cited:
            notes.append(f"{planned.label} (a recommended model) was missing from the "
                         "references and was added from the plan")
            references.append(_planned_reference(planned))
    if not references and plan.cited:
        references.append(_planned_reference(plan.cited[0]))
    data.update(answerable=True, references=references)
    return AnswerDraft.model_validate(data, context=grounding), notes


def _planned_reference(planned: PlannedSource) -> dict[str, str]:
    """A reference written from the plan's reason: "Is the recommended model; …"."""
    return {"source_id": planned.label,
            "why": shorten(planned.reason[:1].upper() + planned.reason[1:] + ".", WHY_CHARS)}


def _scored_whole(corpus: Corpus, settings: Settings) -> bool:
    return len(corpus.sources) <= settings.retrieval.whole_corpus_sources


def _prompt_context(
    question: str,
    hits: list[Hit],
    plan: EvidencePlan,
    corpus: Corpus,
    withheld: list[tuple[str, str]],
) -> tuple[PromptContext, dict[str, Source]]:
    """The prompt's material and the alias map, from the sources the plan keeps in play.

    Sentences addressed to the model are appended to ``withheld`` as they are taken out.
    """
    shown = plan.in_prompt if plan.verdict.answerable else plan.sources
    alias_to_source = {p.label: corpus.get(p.source_id) for p in shown}
    alias_of = {source.id: alias for alias, source in alias_to_source.items()}
    score = {p.source_id: p.evidence.question_score for p in plan.sources}

    def safe(text: str, where: str) -> str:
        # Source text and the question are data: sentences that address the model are
        # not shown to it (see grounded_answer.grounding.injection).
        kept, removed = quarantine(text)
        withheld.extend((where, sentence) for sentence in removed)
        return kept

    context = PromptContext(
        # A question that was nothing but instructions is not sent, not even as a fallback.
        question=safe(question, "question") or QUESTION_WITHHELD,
        sources=[
            PromptSource(alias=p.label, source_id=p.source_id, role=p.role.value,
                         title=p.title,
                         summary=safe(alias_to_source[p.label].summary,
                                      f"summary of {p.source_id}"),
                         score=score[p.source_id])
            for p in shown
        ],
        passages=[
            PromptPassage(alias=alias_of[h.source_id], score=h.score,
                          text=safe(h.text, f"passage {h.passage_id}"))
            for h in hits if h.source_id in alias_of
        ],
        weak_match=not plan.verdict.answerable,
        plan=plan,
    )
    return context, alias_to_source


def _write(
    backend: Backend,
    prompts: Prompts,
    messages: list[ChatMessage],
    context: PromptContext,
    schema: dict[str, Any],
    settings: Settings,
    usage: Usage,
    *,
    check: Callable[[str], tuple[AnswerDraft | None, list[str]]],
    salvage: Callable[[str], tuple[AnswerDraft | None, list[str]]],
) -> tuple[AnswerDraft, ValidationReport]:
    """Ask, check, re-ask with the exact errors; then strict raises, drop salvages."""
    attempts: list[Attempt] = []
    repaired: list[str] = []
    completion: Completion | None = None
    for number in range(1, settings.answer.max_repairs + 2):
        request = CompletionRequest(
            messages=messages, json_schema=schema, context=context, attempt=number,
            errors=list(attempts[-1].errors) if attempts else [],
        )
        completion = backend.complete(request)
        usage.add(completion)
        draft, errors = check(completion.text)
        if completion.finish_reason == "length":
            errors = [f"output was cut off at max_tokens ({settings.llm.max_tokens}); "
                      "write a shorter answer", *errors]
            draft = None if errors[1:] else draft
        if draft is not None:
            repaired.extend(e for attempt in attempts for e in attempt.errors)
            return draft, ValidationReport(
                checks=CHECKS, attempts=number, repaired=_unique(repaired),
                policy=settings.answer.policy, valid_first_try=number == 1,
            )
        attempts.append(Attempt(output=completion.text, errors=tuple(errors)))
        messages = [*messages, ChatMessage(role="assistant", content=completion.text[:20_000]),
                    prompts.repair(context, errors)]
    if settings.answer.policy == "strict" or completion is None:
        raise _ungrounded(f"the {backend.name} backend's answer broke the grounding rules",
                          attempts)
    salvaged, dropped = salvage(completion.text)
    if salvaged is None:
        raise _ungrounded(
            f"nothing grounded could be kept from the {backend.name} backend's answer", attempts)
    return salvaged, ValidationReport(
        checks=CHECKS, attempts=len(attempts), dropped=dropped,
        unresolved=list(attempts[-1].errors), policy=settings.answer.policy,
        valid_first_try=False,
    )


def _write_guided(
    backend: Backend,
    prompts: Prompts,
    context: PromptContext,
    plan: EvidencePlan,
    grounding: GroundingContext,
    language: str,
    settings: Settings,
    usage: Usage,
) -> tuple[AnswerDraft, ValidationReport]:
    """The plan's structure with the model's prose (see :mod:`grounded_answer.guided`).

    In English the model rewords the offline draft's slots, shown without their tails
    (quoted summary sentences, a step's alternatives), which go back in after, so the
    model never pays to copy them. In another language the offline draft is translated
    line by line in one plain-text call: under a JSON schema small models copy English
    rather than translate, and a rewrite before translating doubled the cost for no gain
    in wording (borderline sources are then not put to the model and stay out, as the plan
    leaves them). Only ``answer.verdict = "model"`` asks for an English rewrite first, for
    the model's verdict. The translation call is then the answer's one attempt.
    """
    if language != "en" and settings.answer.verdict != "model":
        draft = check_draft(offline_draft(context, language_note=False), grounding)
        report = ValidationReport(checks=CHECKS, attempts=1, policy=settings.answer.policy,
                                  valid_first_try=True)
    else:
        draft, report = _reword(backend, prompts, context, plan, grounding, settings, usage)
        if language == "en":
            return draft, report
    lines = translation_lines(draft)
    completion = backend.complete(CompletionRequest(
        messages=prompts.translate([text for _, text in lines], language_name(language)),
        json_schema=None, context=context))
    usage.add(completion)
    draft, untranslated = apply_translation(draft, completion.text, grounding, language, plan)
    return draft, report.model_copy(update={"untranslated": untranslated})


def _reword(
    backend: Backend,
    prompts: Prompts,
    context: PromptContext,
    plan: EvidencePlan,
    grounding: GroundingContext,
    settings: Settings,
    usage: Usage,
) -> tuple[AnswerDraft, ValidationReport]:
    """The model rewords the offline draft's prose slots in English, under the plan's schema."""
    baseline = check_draft(offline_draft(context, language_note=False, tails=False), grounding)
    messages = prompts.guided(context, baseline.model_dump(), "English")
    grounding = replace(grounding, instructions=(messages[0].content,))
    tails, cut = check_tails(draft_tails(context), baseline, grounding)
    schema = guided_schema(baseline, plan, model_verdict=settings.answer.verdict == "model")

    def merged(guided: GuidedDraft) -> tuple[AnswerDraft | None, list[str]]:
        try:
            return merge_guided(guided, baseline, plan, grounding, tails), []
        except ValidationError as exc:  # the slots pass alone but not as one answer
            return None, [describe_error(e) for e in exc.errors(include_url=False)]

    def check(text: str) -> tuple[AnswerDraft | None, list[str]]:
        guided, errors = validate_guided(text, baseline, plan, grounding)
        return merged(guided) if guided is not None else (None, errors)

    def salvage(text: str) -> tuple[AnswerDraft | None, list[str]]:
        guided, dropped = salvage_guided(text, baseline, plan, grounding)
        draft, errors = merged(guided)
        return draft, dropped + errors

    draft, report = _write(backend, prompts, messages, context, schema, settings, usage,
                           check=check, salvage=salvage)
    return draft, report.model_copy(update={"dropped": [*report.dropped, *cut]}) if cut \
        else report


def restate_question(backend: Backend, prompts: Prompts, question: str, usage: Usage) -> str:
    """The question in English, for an embedding model that cannot read the original.

    One short call (cached like every call); if the reply is unusable the original is
    kept, so a weak model can only make retrieval no better, never break the answer.
    """
    messages = prompts.restate(question)
    schema = {"type": "object", "additionalProperties": False, "required": ["english"],
              "properties": {"english": {"type": "string", "minLength": 1, "maxLength": 600}}}
    context = PromptContext(question=question, sources=[], passages=[], weak_match=False)
    completion = backend.complete(CompletionRequest(messages=messages, json_schema=schema,
                                                    context=context))
    usage.add(completion)
    try:
        english = json.loads(strip_fences(completion.text)).get("english", "")
    except (ValueError, AttributeError):
        return question
    english = " ".join(str(english).split())[:600]
    return english if english and read_question(english).english else question


def _build_answer(
    question: str,
    draft: AnswerDraft,
    alias_to_source: dict[str, Source],
    ranked: list[tuple[Source, float]],
    report: ValidationReport,
    provenance: Provenance,
    plan: EvidencePlan,
) -> Answer:
    allowed = sorted({link for s in alias_to_source.values() for link in s.links})
    score = {source.id: value for source, value in ranked}
    # Titles come from records, which may be hostile: the plan's are quarantined and
    # scrubbed of links; prose was validated already.
    title_of = {p.source_id: p.title for p in plan.sources}
    alternatives = {step.label: step.alternatives for step in plan.steps}

    steps = []
    if draft.workflow:
        steps = [
            WorkflowStep(
                id=f"step{n}", source_id=alias_to_source[step.source_id].id,
                model=title_of[alias_to_source[step.source_id].id],
                input=step.input, action=step.action, output=step.output,
                alternatives=[alias_to_source[a].id for a in alternatives.get(step.source_id, [])
                              if a in alias_to_source],
            )
            for n, step in enumerate(draft.workflow.steps, start=1)
        ]
    workflow = (
        Workflow(input=draft.workflow.input, steps=steps, output=draft.workflow.output)
        if draft.workflow else None
    )
    why = {ref.source_id: ref.why for ref in reversed(draft.references)}
    cited = list(dict.fromkeys(ref.source_id for ref in draft.references))
    # Every alias the answer mentions anywhere gets a reference, so no marker dangles.
    texts = [draft.task.statement, draft.note]
    if draft.workflow:
        texts += [draft.workflow.input, draft.workflow.output]
        texts += [f"{s.input} {s.action} {s.output} {s.source_id}" for s in draft.workflow.steps]
    mentioned = [*draft.task.source_ids, *(m.group(0) for t in texts for m in ALIAS_RE.finditer(t))]
    for alias in mentioned:
        if alias in alias_to_source and alias not in cited:
            cited.append(alias)
            why.setdefault(alias, "Cited in the answer.")
    references = [
        Reference(
            label=alias,
            source_id=alias_to_source[alias].id,
            title=title_of[alias_to_source[alias].id],
            role=alias_to_source[alias].role,
            url=alias_to_source[alias].links[0],
            paper_url=alias_to_source[alias].paper_url,
            github_url=alias_to_source[alias].github_url,
            why=why[alias],
            score=score.get(alias_to_source[alias].id),
        )
        for alias in cited
    ]
    report = report.model_copy(update={
        "repaired": [defang(e) for e in report.repaired],
        "dropped": [defang(e) for e in report.dropped],
        "unresolved": [defang(e) for e in report.unresolved],
    })
    return Answer(
        question=defang(question),
        answerable=draft.answerable,
        task=Task(
            statement=draft.task.statement,
            source_ids=[alias_to_source[a].id for a in dict.fromkeys(draft.task.source_ids)],
        ),
        workflow=workflow,
        references=references,
        note=draft.note,
        allowed_links=allowed,
        validation=report,
        provenance=provenance,
        plan=plan,
    )


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _unique_pairs(items: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return list(dict.fromkeys(items))

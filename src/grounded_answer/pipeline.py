"""``explain()``: question -> retrieve -> prompt -> backend -> validate (repair) -> Answer.

Data flows one way. The only links that can reach the Answer are the link fields of the
source records in play; the model's output is checked against them by the draft
validators, repaired by re-asking with the exact errors, and finally either refused
(policy ``strict``) or stripped of what is not grounded (policy ``drop``).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

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
from .bundle import Bundle, load_bundle
from .config import Settings, load_settings
from .corpus import Corpus, Role, Source, load_corpus
from .draft import (
    ALIAS_RE,
    AnswerDraft,
    GroundingContext,
    draft_json_schema,
    salvage_draft,
    validate_draft,
)
from .embedding import Embedder
from .errors import Attempt, BundleParseError, CorpusError, QuestionError, UngroundedAnswerError
from .index import configure_faiss
from .injection import QUESTION_WITHHELD, quarantine
from .links import defang, link_key, scrub_links
from .prompts import (
    ChatMessage,
    PromptContext,
    PromptPassage,
    Prompts,
    PromptSource,
    load_prompts,
)
from .retrieve import Hit, Retriever, get_retriever

__all__ = [
    "aexplain",
    "default_embedder",
    "explain",
    "resolve_sources",
    "retrieve_passages",
    "retriever_for",
]

CHECKS = [
    "output is a JSON object matching the answer schema",
    "every cited source id is one of the provided sources",
    "no URL, domain, arXiv id or GitHub path outside the sources' link fields, in any text",
    "an answerable answer has task, workflow and references; an unanswerable one says why",
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
    question = _check_question(question if question is not None else default_question, settings)
    embedder = embedder or default_embedder(settings)
    backend = backend or make_backend(settings.llm)
    timings: dict[str, float] = {}

    mark = time.perf_counter()
    retriever = retriever_for(sources, embedder, settings)
    timings["index"] = time.perf_counter() - mark
    mark = time.perf_counter()
    hits, ranked = retrieve_passages(retriever, question, settings)
    timings["retrieve"] = time.perf_counter() - mark
    timings["embed_query"] = retriever.last_embed_seconds

    context, alias_to_source, withheld = _prompt_context(question, hits, ranked, sources,
                                                         settings)
    prompts = load_prompts(settings.answer.prompts_dir)
    messages = prompts.messages(context)
    grounding = GroundingContext(
        aliases=frozenset(alias_to_source),
        link_keys=frozenset(k for s in alias_to_source.values() for k in s.link_keys),
        step_aliases=frozenset(a for a, s in alias_to_source.items() if s.role is Role.MODEL)
        or None,
        withheld=tuple(sentence for _, sentence in withheld),
        instructions=(messages[0].content,),
        question=context.question,
    )
    mark = time.perf_counter()
    usage = Usage()
    draft, report = _generate(backend, prompts, messages, context, grounding, settings, usage)
    if withheld:
        report = report.model_copy(update={"withheld": [
            f"{where}: a sentence addressed to the model was withheld from the prompt"
            for where, _ in withheld
        ] + (["question: nothing else was left, so the model was sent a neutral placeholder"]
             if context.question == QUESTION_WITHHELD else [])})
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
        index_status=retriever.index.status,
        # Passages quote source summaries, which may carry links that are not sources.
        # and sentences addressed to the model, which are withheld here as in the prompt.
        retrieved=[hit.model_copy(update={"text": quarantine(defang(hit.text))[0]})
                   for hit in hits],
        timings={name: round(value, 6) for name, value in timings.items()},
        usage=usage,
    )
    return _build_answer(question, draft, alias_to_source, ranked, report, provenance)


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


def default_embedder(settings: Settings) -> Embedder:
    """The configured embedder: a verified ONNX export for queries when allowed and present."""
    from .onnx_embedding import select_embedder

    return select_embedder(
        settings.embedding.model, settings.index.cache_dir,
        threads=settings.embedding.threads or None, backend=settings.embedding.backend,
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


def retriever_for(
    corpus: Corpus, embedder: Embedder, settings: Settings, *, show_progress: bool = False
) -> Retriever:
    """The shared retriever for ``corpus`` under ``settings``.

    A corpus small enough to be scored whole (a bundle) gets a throw-away FAISS flat
    index; a real corpus goes to the configured store, synced incrementally.
    """
    small = len(corpus.sources) <= settings.retrieval.max_sources
    configure_faiss(settings.index.threads, embedder.dimension)
    return get_retriever(
        corpus, embedder, settings.index.cache_dir, batch_size=settings.embedding.batch_size,
        show_progress=show_progress, store=None if small else settings.index,
    )


def _check_question(question: str | None, settings: Settings) -> str:
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
    retriever: Retriever, question: str, settings: Settings
) -> tuple[list[Hit], list[tuple[Source, float]]]:
    """The top-k hits for ``question`` and every scored source, best first."""
    corpus = retriever.corpus
    k = settings.retrieval.k
    small = len(corpus.sources) <= settings.retrieval.max_sources
    # A small corpus (a bundle) is scored whole, so every source gets a score and none of
    # the recommended models is lost to a k cut-off.
    options = settings.retrieval
    everything = retriever.search(
        question,
        max(k, len(retriever.index.passages)) if small else k,
        method=options.small_corpus_method if small else options.method,
        fusion=options.fusion, alpha=options.alpha,
        max_per_source=options.max_per_source, stemmer=options.stemmer,
    )
    ranked = retriever.rank_sources(everything)[: settings.retrieval.max_sources]
    return everything[:k], ranked


def _prompt_context(
    question: str,
    hits: list[Hit],
    ranked: list[tuple[Source, float]],
    corpus: Corpus,
    settings: Settings,
) -> tuple[PromptContext, dict[str, Source], list[tuple[str, str]]]:
    """The prompt's material, the alias map, and the sentences withheld as injections."""
    score = {source.id: value for source, value in ranked}
    position = {source.id: n for n, (source, _) in enumerate(ranked)}
    chosen = [source for source, _ in ranked]
    # Recommended models first (in corpus order), then papers by retrieval score.
    order = {s.id: n for n, s in enumerate(corpus.sources)}
    chosen.sort(key=lambda s: (s.role is not Role.MODEL,
                               order[s.id] if s.role is Role.MODEL else position[s.id]))
    alias_to_source = {f"S{n}": source for n, source in enumerate(chosen, start=1)}
    alias_of = {source.id: alias for alias, source in alias_to_source.items()}
    # Answerability is judged on cosine similarity, whose scale means the same for every
    # corpus; BM25-only retrieval has no such scale, so there only "no hit" is weak.
    cosines = [h.cosine for h in hits if h.cosine is not None]
    weak = max(cosines) < settings.retrieval.min_score if cosines else not hits
    withheld: list[tuple[str, str]] = []

    def safe(text: str, where: str) -> str:
        # Source text and the question are data: sentences that address the model are
        # not shown to it (see grounded_answer.injection).
        kept, removed = quarantine(text)
        withheld.extend((where, sentence) for sentence in removed)
        return kept

    context = PromptContext(
        # A question that was nothing but instructions is not sent, not even as a fallback.
        question=safe(question, "question") or QUESTION_WITHHELD,
        sources=[
            PromptSource(alias=alias, source_id=s.id, role=s.role.value,
                         title=safe(s.title, f"title of {s.id}") or s.id,
                         summary=safe(s.summary, f"summary of {s.id}"),
                         score=round(score[s.id], 4))
            for alias, s in alias_to_source.items()
        ],
        passages=[
            PromptPassage(alias=alias_of[h.source_id], score=h.score,
                          text=safe(h.text, f"passage {h.passage_id}"))
            for h in hits if h.source_id in alias_of
        ],
        weak_match=weak,
    )
    return context, alias_to_source, _unique_pairs(withheld)


def _generate(
    backend: Backend,
    prompts: Prompts,
    messages: list[ChatMessage],
    context: PromptContext,
    grounding: GroundingContext,
    settings: Settings,
    usage: Usage,
) -> tuple[AnswerDraft, ValidationReport]:
    schema = draft_json_schema(
        context.aliases, [s.alias for s in context.sources if s.role == "model"] or None
    )
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
        draft, errors = validate_draft(completion.text, grounding)
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
        raise UngroundedAnswerError(
            f"the {backend.name} backend's answer broke the grounding rules", attempts=attempts
        )
    salvaged, dropped = salvage_draft(completion.text, grounding)
    if salvaged is None:
        raise UngroundedAnswerError(
            f"nothing grounded could be kept from the {backend.name} backend's answer",
            attempts=attempts,
        )
    return salvaged, ValidationReport(
        checks=CHECKS, attempts=len(attempts), dropped=dropped,
        unresolved=list(attempts[-1].errors), policy=settings.answer.policy,
        valid_first_try=False,
    )


def _build_answer(
    question: str,
    draft: AnswerDraft,
    alias_to_source: dict[str, Source],
    ranked: list[tuple[Source, float]],
    report: ValidationReport,
    provenance: Provenance,
) -> Answer:
    allowed = sorted({link for s in alias_to_source.values() for link in s.links})
    allowed_keys = {link_key(link) for link in allowed}
    score = {source.id: value for source, value in ranked}

    def safe(text: str) -> str:
        # Titles come from records, which may be hostile; prose was validated already.
        return scrub_links(text, allowed_keys)[0]

    steps = []
    if draft.workflow:
        steps = [
            WorkflowStep(
                id=f"step{n}", source_id=alias_to_source[step.source_id].id,
                model=safe(alias_to_source[step.source_id].title),
                input=step.input, action=step.action, output=step.output,
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
            title=safe(alias_to_source[alias].title),
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
    )


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _unique_pairs(items: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return list(dict.fromkeys(items))

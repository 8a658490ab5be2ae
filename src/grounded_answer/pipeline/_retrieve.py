"""The question as retrieval reads it, the passages it finds, and the evidence plan over them.

A corpus small enough to be scored whole (every bundle) has all its sources in play and
scored; a larger one has its best-ranked ``retrieval.max_sources``.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from ..answer import Usage
from ..backends.base import Backend, CompletionRequest
from ..config import Settings
from ..embeddings import Embedder, build_embedder
from ..grounding.draft import strip_fences
from ..grounding.injection import quarantine
from ..grounding.links import scrub_links
from ..planning import EvidencePlan, make_plan, read_question
from ..retrieval import Hit, Retriever, get_retriever
from ..sources.corpus import Corpus, Source
from ..writing.prompts import PromptContext, Prompts
from ._run import Run

__all__ = [
    "english_question",
    "plan_evidence",
    "restate_question",
    "retrieve_passages",
    "retriever_for",
    "scored_whole",
]


def retriever_for(
    corpus: Corpus, embedder: Embedder, settings: Settings, *, show_progress: bool = False
) -> Retriever:
    """The shared retriever for ``corpus`` under ``settings``.

    A corpus small enough to be scored whole (a bundle) gets a small flat FAISS store; a
    real corpus goes to the configured store. Both are synced incrementally.
    """
    from ..stores import configure_faiss  # numpy and faiss load with the first index

    small = scored_whole(corpus, settings)
    configure_faiss(settings.index.threads, embedder.dimension)
    return get_retriever(
        corpus,
        embedder,
        settings.index.cache_dir,
        batch_size=settings.embedding.batch_size,
        show_progress=show_progress,
        store=None if small else settings.index,
        build=None if small else build_embedder(settings, embedder),
    )


def retrieve_passages(
    retriever: Retriever,
    question: str,
    settings: Settings,
    timings: dict[str, float] | None = None,
) -> tuple[list[Hit], list[tuple[Source, float]]]:
    """The top-k hits for ``question`` and every scored source, best first."""
    corpus = retriever.corpus
    k = settings.retrieval.k
    small = scored_whole(corpus, settings)
    # A small corpus (a bundle) is scored whole, so every source gets a score and none of
    # the recommended models is lost to a k cut-off.
    options = settings.retrieval
    everything = retriever.search(
        question,
        max(k, len(retriever.index.passages)) if small else k,
        method=options.small_corpus_method if small else options.method,
        fusion=options.fusion,
        alpha=options.alpha,
        max_per_source=options.max_per_source,
        stemmer=options.stemmer,
        timings=timings,
    )
    ranked = retriever.rank_sources(everything)
    return everything[:k], ranked if small else ranked[: settings.retrieval.max_sources]


def plan_evidence(
    question: str,
    retriever: Retriever,
    ranked: list[tuple[Source, float]],
    settings: Settings,
    withhold: Callable[[str, str], str] | None = None,
    *,
    restated: str | None = None,
) -> EvidencePlan:
    """The evidence plan over the sources in play (see :mod:`grounded_answer.planning.plan`).

    A corpus scored whole (every bundle) has all its sources in play; a larger one has
    the best-ranked ``retrieval.max_sources``. Titles in the plan are shown to users and
    models, so links and sentences addressed to the model are taken out of them first.
    """
    corpus = retriever.corpus
    whole = scored_whole(corpus, settings)
    scored = {source.id for source, _ in ranked}
    in_play = [s for s in corpus.sources if whole or s.id in scored]
    keys = frozenset(k for s in in_play for k in s.link_keys)
    titles = {}
    for source in in_play:
        kept = (
            withhold(source.title, f"title of {source.id}")
            if withhold
            else quarantine(source.title)[0]
        )
        titles[source.id] = scrub_links(kept or source.id, keys)[0]
    return make_plan(
        question,
        in_play,
        {source.id: score for source, score in ranked},
        retriever.model_affinity() if whole else None,
        min_score=settings.retrieval.min_score,
        titles=titles,
        restated=restated,
    )


def english_question(run: Run) -> str | None:
    """The run's question restated in English for retrieval, or None when it needs none.

    The embedding model reads English: a question in a script it cannot read says nothing
    to it, and one in French or Spanish only a little (a French question about describing
    sounds scored 0.10 against an audio-captioning bundle). So a question not in English
    is restated when a language model is configured and ``llm.restate_question`` is on;
    the restatement is the model's text, cleaned like the question.
    """
    if (
        read_question(run.question).language == "en"
        or run.backend.offline
        or not run.settings.llm.restate_question
    ):
        return None
    with run.timed("restate"):
        restated = restate_question(run.backend, run.prompts, run.question, run.usage)
        return run.clean(restated, "restated question") or None


def restate_question(backend: Backend, prompts: Prompts, question: str, usage: Usage) -> str:
    """The question in English, for an embedding model that cannot read the original.

    One short call (cached like every call); if the reply is unusable the original is
    kept, so a weak model can only make retrieval no better, never break the answer.
    """
    messages = prompts.restate(question)
    schema = {
        "type": "object",
        "additionalProperties": False,
        "required": ["english"],
        "properties": {"english": {"type": "string", "minLength": 1, "maxLength": 600}},
    }
    context = PromptContext(question=question, sources=[], passages=[], weak_match=False)
    completion = backend.complete(
        CompletionRequest(messages=messages, json_schema=schema, context=context)
    )
    usage.add(completion)
    try:
        english = json.loads(strip_fences(completion.text)).get("english", "")
    except (ValueError, AttributeError):
        return question
    english = " ".join(str(english).split())[:600]
    return english if english and read_question(english).english else question


def scored_whole(corpus: Corpus, settings: Settings) -> bool:
    return len(corpus.sources) <= settings.retrieval.whole_corpus_sources

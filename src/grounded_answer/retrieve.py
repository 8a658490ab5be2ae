"""Question -> ranked passages of one corpus, with their sources and scores.

A :class:`Retriever` owns one corpus's index. Retrievers are cached per process (keyed by
cache directory, corpus fingerprint and model), so a warm ``explain`` pays one query
embedding and one index search, and many threads share one index.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from .corpus import Corpus, Source
from .embedding import Embedder
from .index import VectorIndex, open_index

__all__ = ["Hit", "Retriever", "get_retriever"]

_RETRIEVERS: dict[tuple[str, str, str], Retriever] = {}
_RETRIEVERS_LOCK = threading.Lock()


class Hit(BaseModel):
    """One retrieved passage with its source and cosine score."""

    model_config = ConfigDict(frozen=True)

    rank: int = Field(description="1 = best.")
    score: float = Field(description="Cosine similarity between question and passage.")
    passage_id: str
    source_id: str
    text: str


class Retriever:
    """Dense retrieval over one corpus's passages."""

    def __init__(self, corpus: Corpus, embedder: Embedder, index: VectorIndex) -> None:
        self.corpus = corpus
        self.embedder = embedder
        self.index = index
        self.last_embed_seconds = 0.0

    def search(self, question: str, k: int) -> list[Hit]:
        """The ``k`` passages closest to ``question``, best first."""
        started = time.perf_counter()
        vector = self.embedder.encode([question])
        self.last_embed_seconds = time.perf_counter() - started
        ranked = self.index.search(vector, k)[0]
        passages = self.index.passages
        return [
            Hit(
                rank=rank,
                score=round(score, 6),
                passage_id=passages[i].id,
                source_id=passages[i].source_id,
                text=passages[i].text,
            )
            for rank, (i, score) in enumerate(ranked, start=1)
        ]

    def rank_sources(self, hits: list[Hit]) -> list[tuple[Source, float]]:
        """Each source once, by its best passage score, best first."""
        best: dict[str, float] = {}
        for hit in hits:
            best[hit.source_id] = max(best.get(hit.source_id, -1.0), hit.score)
        ordered = sorted(best.items(), key=lambda item: -item[1])
        return [(self.corpus.get(source_id), score) for source_id, score in ordered]


def get_retriever(
    corpus: Corpus,
    embedder: Embedder,
    cache_dir: Path,
    *,
    batch_size: int = 64,
    show_progress: bool = False,
) -> Retriever:
    """A process-wide shared retriever for this corpus, opening or building its index once."""
    key = (str(cache_dir), corpus.fingerprint, embedder.model_id)
    retriever = _RETRIEVERS.get(key)
    if retriever is not None:
        return retriever
    with _RETRIEVERS_LOCK:
        retriever = _RETRIEVERS.get(key)
        if retriever is None:
            index = open_index(
                corpus, embedder, cache_dir, batch_size=batch_size, show_progress=show_progress
            )
            retriever = Retriever(corpus, embedder, index)
            _RETRIEVERS[key] = retriever
    return retriever

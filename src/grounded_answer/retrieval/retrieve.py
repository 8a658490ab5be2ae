"""Question -> ranked passages of one corpus, with their sources and scores.

Three methods share one interface: ``dense`` (cosine over sentence embeddings),
``bm25`` (exact terms), and ``hybrid`` (both, fused by reciprocal rank or by a weighted
sum of min-max normalised scores). A per-source cap keeps one long source from filling
every slot. Retrievers are cached per process (keyed by cache directory, corpus
fingerprint and model), so a warm ``explain`` pays one query embedding and one search,
and many threads share one index.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from ..config import Fusion, IndexSettings, Method
from ..embeddings import Embedder
from ..sources.corpus import Corpus, Role, Source
from .bm25 import BM25Index

if TYPE_CHECKING:
    from ..stores import VectorStore

__all__ = ["Hit", "Retriever", "fuse", "get_retriever"]


_RETRIEVERS: OrderedDict[tuple[str, ...], Retriever] = OrderedDict()
_RETRIEVERS_LOCK = threading.Lock()
_MAX_CACHED = 64  # corpora kept warm per process; bundles come and go


class Hit(BaseModel):
    """One retrieved passage with its source and scores."""

    model_config = ConfigDict(frozen=True)

    rank: int = Field(description="1 = best.")
    score: float = Field(description="The ranking score of the method used (fused for hybrid).")
    cosine: float | None = Field(
        default=None, description="Cosine similarity to the question (dense and hybrid)."
    )
    passage_id: str
    source_id: str
    text: str


def fuse(
    dense: Sequence[tuple[int, float]],
    sparse: Sequence[tuple[int, float]],
    *,
    method: Fusion = "weighted",
    alpha: float = 0.5,
    rrf_k: int = 60,
) -> list[tuple[int, float]]:
    """Combine two ranked lists of (position, score) into one, best first.

    ``rrf`` sums ``1 / (rrf_k + rank)``; it ignores score scales, so it is robust when one
    list's scores are unusual. ``weighted`` min-max normalises each list over its own
    candidates and takes ``alpha * dense + (1 - alpha) * sparse`` (absent = 0).
    """
    fused: dict[int, float] = {}
    if method == "rrf":
        for weight, ranked in ((alpha, dense), (1.0 - alpha, sparse)):
            for rank, (position, _) in enumerate(ranked, start=1):
                fused[position] = fused.get(position, 0.0) + 2 * weight / (rrf_k + rank)
    else:
        for weight, ranked in ((alpha, dense), (1.0 - alpha, sparse)):
            if not ranked:
                continue
            scores = [score for _, score in ranked]
            low, span = min(scores), (max(scores) - min(scores)) or 1.0
            for position, score in ranked:
                fused[position] = fused.get(position, 0.0) + weight * (score - low) / span
    return sorted(fused.items(), key=lambda item: (-item[1], item[0]))


class Retriever:
    """Ranked passages of one corpus for a question."""

    def __init__(self, corpus: Corpus, embedder: Embedder, index: VectorStore) -> None:
        self.corpus = corpus
        self.embedder = embedder
        self.index = index
        self._bm25: dict[str | None, BM25Index] = {}
        self._bm25_lock = threading.Lock()
        self._affinity: dict[str, float] | None = None

    def bm25(self, stemmer: str | None = "english") -> BM25Index:
        """The BM25 index of the same passages, built on first use."""
        found = self._bm25.get(stemmer)
        if found is None:
            with self._bm25_lock:
                found = self._bm25.get(stemmer)
                if found is None:
                    found = BM25Index([p.text for p in self.index.passages], stemmer=stemmer)
                    self._bm25[stemmer] = found
        return found

    def search(
        self,
        question: str,
        k: int,
        *,
        method: Method = "hybrid",
        fusion: Fusion = "weighted",
        alpha: float = 0.5,
        max_per_source: int | None = None,
        stemmer: str | None = "english",
        timings: dict[str, float] | None = None,
    ) -> list[Hit]:
        """The ``k`` best passages for ``question``, best first.

        With ``max_per_source``, a source gets at most that many of the first slots;
        its further passages only fill slots nothing else wants. The query encode's time
        goes into the caller's ``timings`` (``embed_query``), never onto the retriever,
        which many threads share.
        """
        passages = self.index.passages
        pool = min(len(passages), max(k * 4, 50))
        cosine: dict[int, float] = {}
        dense: list[tuple[int, float]] = []
        if method in ("dense", "hybrid"):
            started = time.perf_counter()
            vector = self.embedder.encode([question])
            if timings is not None:
                timings["embed_query"] = time.perf_counter() - started
            dense = self.index.search(vector, pool)[0]
            cosine = dict(dense)
        sparse = self.bm25(stemmer).search(question, pool) if method in ("bm25", "hybrid") else []
        if method == "dense":
            ranked = dense
        elif method == "bm25":
            ranked = sparse
        else:
            ranked = fuse(dense, sparse, method=fusion, alpha=alpha)
        ranked = _cap_per_source(ranked, [p.source_id for p in passages], max_per_source)
        return [
            Hit(
                rank=rank,
                score=round(score, 6),
                cosine=None if position not in cosine else round(cosine[position], 6),
                passage_id=passages[position].id,
                source_id=passages[position].source_id,
                text=passages[position].text,
            )
            for rank, (position, score) in enumerate(ranked[:k], start=1)
        ]

    def model_affinity(self) -> dict[str, float] | None:
        """Each source's best cosine to a passage of another source with the model role.

        It needs no question: the evidence plan uses it to tell the papers about a
        recommended model's task from the distractors, in any language. Computed once per
        corpus from the stored vectors; None for a pgvector store, whose vectors stay there.
        """
        from ..stores import FaissStore  # numpy and faiss load with the first index

        if self._affinity is not None or not isinstance(self.index, FaissStore):
            return self._affinity
        import numpy as np

        passages = self.index.passages
        vectors = self.index.vectors()
        owners = np.array([p.source_id for p in passages])
        is_model = np.array([self.corpus.get(p.source_id).role is Role.MODEL for p in passages])
        affinity: dict[str, float] = {}
        if is_model.any():
            similar = vectors @ vectors[is_model].T
            model_owners = owners[is_model]
            for source in self.corpus.sources:
                rows = owners == source.id
                columns = model_owners != source.id
                if rows.any() and columns.any():
                    affinity[source.id] = float(similar[rows][:, columns].max())
        self._affinity = affinity
        return affinity

    def rank_sources(self, hits: list[Hit]) -> list[tuple[Source, float]]:
        """Each source once, in order of its best hit, with its best cosine (or score)."""
        best: dict[str, float] = {}
        for hit in hits:  # hits are best first, so the first hit fixes the order
            value = hit.cosine if hit.cosine is not None else hit.score
            best[hit.source_id] = max(best.get(hit.source_id, value), value)
        return [(self.corpus.get(source_id), value) for source_id, value in best.items()]


def _cap_per_source(
    ranked: list[tuple[int, float]], owners: list[str], cap: int | None
) -> list[tuple[int, float]]:
    if not cap:
        return ranked
    kept: list[tuple[int, float]] = []
    overflow: list[tuple[int, float]] = []
    used: dict[str, int] = {}
    for position, score in ranked:
        owner = owners[position]
        if used.get(owner, 0) < cap:
            used[owner] = used.get(owner, 0) + 1
            kept.append((position, score))
        else:
            overflow.append((position, score))
    return kept + overflow


def get_retriever(
    corpus: Corpus,
    embedder: Embedder,
    cache_dir: Path,
    *,
    batch_size: int = 64,
    show_progress: bool = False,
    store: IndexSettings | None = None,
    build: Embedder | None = None,
) -> Retriever:
    """A process-wide shared retriever for this corpus, opening or building its index once.

    With ``store`` settings the passages live in the store they name (FAISS or
    pgvector); without, in a small flat FAISS store whose passages are checked on every
    open, which is what a bundle of a few sources needs. Both sync incrementally.
    ``build`` embeds a store's passages (a
    :class:`~grounded_answer.embeddings.BuildEmbedder` that may use a GPU) under
    ``embedder``'s model id; questions are always encoded by ``embedder``.
    """
    key: tuple[str, ...] = (str(cache_dir), corpus.fingerprint, embedder.model_id)
    if store is not None:
        dsn = store.dsn.get_secret_value() if store.dsn else ""
        key += (store.model_dump_json(exclude={"dsn"}), hashlib.sha256(dsn.encode()).hexdigest())
    with _RETRIEVERS_LOCK:
        retriever = _RETRIEVERS.get(key)
        if retriever is not None:
            _RETRIEVERS.move_to_end(key)
            return retriever
        from ..stores import open_faiss_store, open_store  # numpy and faiss: not at import

        index: VectorStore
        if store is None:
            index = open_faiss_store(
                corpus,
                embedder,
                cache_dir,
                batch_size=batch_size,
                show_progress=show_progress,
                check_passages=True,
            )
        else:
            index = open_store(
                corpus,
                build or embedder,
                store,
                batch_size=batch_size,
                show_progress=show_progress,
            )
        retriever = Retriever(corpus, embedder, index)
        _RETRIEVERS[key] = retriever
        while len(_RETRIEVERS) > _MAX_CACHED:
            _RETRIEVERS.popitem(last=False)
        return retriever

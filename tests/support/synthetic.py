"""Synthetic corpora and embedding-like vectors for the store tests.

Uniformly random unit vectors in 384 dimensions have no structure at all: every point is
nearly equidistant from every other, the worst case for any graph index (FAISS HNSW at
ef_search=100 finds about 0.73 of the true top-10 there). Sentence embeddings are not
like that: their variance lies in a few dozen directions. :class:`SyntheticEmbedder`
imitates that with a rank-32 latent vector per text, projected to 384 dimensions, plus
isotropic noise; the nearest neighbours then have a cosine of about 0.6, as real
retrieval hits do.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from grounded_answer import Corpus, Source

from .fakes import HashEmbedder


class SyntheticEmbedder(HashEmbedder):
    """Deterministic, text-keyed vectors of low intrinsic dimension; counts what it embeds."""

    def __init__(
        self,
        dimension: int = 384,
        rank: int = 32,
        noise: float = 0.1,
        model_id: str = "test/synthetic",
    ) -> None:
        super().__init__(dimension, model_id)
        self._rank = rank
        self._noise = noise
        self._basis = np.random.default_rng(0).standard_normal((rank, dimension))

    def vectors(self, texts: Sequence[str]) -> np.ndarray:
        out = np.empty((len(texts), self._dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            seed = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")
            rng = np.random.default_rng(seed)
            vector = rng.standard_normal(self._rank) @ self._basis
            vector += self._noise * np.sqrt(self._rank) * rng.standard_normal(self._dimension)
            out[row] = vector / np.linalg.norm(vector)
        return out


def synthetic_source(i: int, summary: str = "") -> Source:
    return Source(
        id=f"s{i:06d}",
        role="paper",
        title=f"Synthetic source {i}",
        summary=summary,
        paper_url=f"https://example.org/papers/{i}",
    )


def synthetic_corpus(n: int, name: str = "synthetic") -> Corpus:
    """``n`` sources of one passage each (a title, no summary)."""
    return Corpus(name=name, sources=tuple(synthetic_source(i) for i in range(n)))


def exact_top_k(passages: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Row indices of the ``k`` highest inner products per query (brute force)."""
    scores = queries @ passages.T
    top = np.argpartition(-scores, k, axis=1)[:, :k]
    order = np.take_along_axis(scores, top, axis=1).argsort(axis=1)[:, ::-1]
    return np.take_along_axis(top, order, axis=1)


def recall_at_k(found: Sequence[Sequence[int]], truth: np.ndarray, k: int) -> float:
    return float(
        np.mean(
            [len(set(f[:k]) & set(t[:k].tolist())) / k for f, t in zip(found, truth, strict=True)]
        )
    )

"""BEIR retrieval evaluation: the embedding cache and the scores."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from grounded_answer.evals.retrieval import cached_embeddings, ndcg_at_k

from ..support.fakes import HashEmbedder


def test_embeddings_are_cached_per_model_and_texts(tmp_path: Path) -> None:
    embedder = HashEmbedder()
    texts = ["a blurry photo", "speech to text", "denoise"]
    first = cached_embeddings(texts, embedder, tmp_path)
    calls = embedder.calls
    again = cached_embeddings(texts, embedder, tmp_path)
    assert embedder.calls == calls  # read back, not encoded
    assert np.array_equal(first, again)
    cached_embeddings(texts[:2], embedder, tmp_path)
    assert embedder.calls == calls + 1  # other texts, another entry
    (entry,) = [
        p
        for p in (tmp_path / "embeddings").iterdir()
        if p.suffix == ".npy" and len(np.load(p)) == 3
    ]
    entry.write_bytes(entry.read_bytes()[:40])  # truncated: encoded again, never used
    assert np.array_equal(cached_embeddings(texts, embedder, tmp_path), first)
    assert embedder.calls == calls + 2
    assert not [p.name for p in (tmp_path / "embeddings").iterdir() if p.name.startswith(".")]


def test_ndcg_is_one_for_the_ideal_ranking() -> None:
    assert ndcg_at_k(["a", "b"], {"a": 2, "b": 1}, 10) == 1.0
    assert ndcg_at_k(["b", "a"], {"a": 2, "b": 1}, 10) < 1.0

"""The embedded FAISS store: incremental sync, persistence, and the retrieval duck type."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import numpy as np
import pytest

from grounded_answer import ConfigError, Corpus
from grounded_answer.config import IndexSettings
from grounded_answer.retrieval.retrieve import Retriever
from grounded_answer.stores import (
    FaissStore,
    HnswParams,
    VectorStore,
    open_faiss_store,
    open_store,
)

from ..support.fakes import HashEmbedder
from ..support.stores import QUERIES, corpus, edited, ranked, source
from ..support.synthetic import SyntheticEmbedder, exact_top_k, recall_at_k, synthetic_corpus

Kind = Literal["flat", "hnsw"]


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_build_then_load_embeds_nothing(tmp_path: Path, kind: Kind) -> None:
    embedder = HashEmbedder()
    first = open_faiss_store(corpus(), embedder, tmp_path, kind=kind)
    assert first.status == "built"
    assert len(embedder.texts) == len(corpus().passages())
    second = open_faiss_store(corpus(), embedder, tmp_path, kind=kind)
    assert second.status == "loaded"
    assert len(embedder.texts) == len(corpus().passages())
    assert second.manifest == first.manifest
    assert second.manifest.fingerprint == corpus().fingerprint
    assert ranked(second, embedder) == ranked(first, embedder)


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_add_change_remove_embeds_only_changed_sources(tmp_path: Path, kind: Kind) -> None:
    embedder = HashEmbedder()
    open_faiss_store(corpus(), embedder, tmp_path, kind=kind)
    embedder.texts.clear()
    store = open_faiss_store(edited(), embedder, tmp_path, kind=kind)
    expected = [
        p.text for s in edited().sources if s.id in ("src-3", "src-30") for p in s.passages()
    ]
    assert sorted(embedder.texts) == sorted(expected)
    assert (
        store.status == f"updated: 1 added, 1 changed, 1 removed ({len(expected)} "
        "passages embedded)"
    )
    fresh = open_faiss_store(edited(), HashEmbedder(), tmp_path / "fresh", kind=kind)
    assert store.manifest == fresh.manifest
    assert store.manifest.fingerprint == edited().fingerprint
    assert [p.id for p in store.passages] == [p.id for p in edited().passages()]
    assert ranked(store, embedder) == ranked(fresh, embedder)
    assert not any(p.source_id == "src-5" for p in store.passages)
    reopened = open_faiss_store(edited(), embedder, tmp_path, kind=kind)
    assert reopened.status == "loaded"
    assert ranked(reopened, embedder) == ranked(fresh, embedder)


def test_hnsw_removal_leaves_tombstones_that_search_skips(tmp_path: Path) -> None:
    embedder = HashEmbedder()
    store = open_faiss_store(corpus(), embedder, tmp_path, kind="hnsw")
    removed = corpus([i for i in range(30) if i != 1])  # src-1 is about speech transcription
    store.sync(removed, embedder)
    assert store.tombstones == len(source(1).passages())
    for row in store.search(embedder.encode(["speech transcription Method 1"]), 40):
        assert all(store.passages[p].source_id != "src-1" for p, _ in row)
    assert len(store.search(embedder.encode(["x"]), 1000)[0]) == len(removed.passages())
    reopened = FaissStore.load(store.path)[0]  # type: ignore[arg-type]
    assert reopened is not None and reopened.tombstones == store.tombstones


def test_hnsw_compacts_when_tombstones_pass_a_fifth(tmp_path: Path) -> None:
    embedder = HashEmbedder()
    store = open_faiss_store(corpus(), embedder, tmp_path, kind="hnsw")
    embedder.texts.clear()
    store.sync(corpus(range(20)), embedder)  # a third of the graph removed
    assert store.tombstones == 0
    assert embedder.texts == []  # rebuilt from the stored vectors
    fresh = open_faiss_store(corpus(range(20)), HashEmbedder(), tmp_path / "fresh", kind="hnsw")
    assert ranked(store, embedder) == ranked(fresh, embedder)


def test_reorder_and_metadata_only_edits_embed_nothing(tmp_path: Path) -> None:
    embedder = HashEmbedder()
    open_faiss_store(corpus(), embedder, tmp_path)
    embedder.texts.clear()
    reordered = corpus(list(range(29, -1, -1)))
    store = open_faiss_store(reordered, embedder, tmp_path)
    assert embedder.texts == []
    assert store.status == "updated: no passage changed (0 passages embedded)"
    assert [p.id for p in store.passages] == [p.id for p in reordered.passages()]
    assert store.manifest.fingerprint == reordered.fingerprint
    tagged = Corpus(
        name="unit",
        sources=tuple(s.model_copy(update={"metadata": {"stars": 5}}) for s in reordered.sources),
    )
    store = open_faiss_store(tagged, embedder, tmp_path)
    assert embedder.texts == []
    assert store.manifest.fingerprint == tagged.fingerprint != reordered.fingerprint


def test_search_matches_exact_cosine(tmp_path: Path) -> None:
    embedder = HashEmbedder()
    store = open_faiss_store(corpus(), embedder, tmp_path)
    vectors = embedder.encode(QUERIES)
    exact = vectors @ embedder.encode([p.text for p in store.passages]).T
    for row, scores in zip(store.search(vectors, 12), exact, strict=True):
        assert len(row) == 12
        assert [round(s, 5) for _, s in row] == [
            round(float(s), 5) for s in sorted(scores, reverse=True)[:12]
        ]
        assert all(abs(scores[p] - s) < 1e-5 for p, s in row)
    assert store.search(vectors, 0) == [[]] * len(QUERIES)
    assert np.allclose(store.vectors(), embedder.encode([p.text for p in store.passages]))


def test_retriever_over_a_reopened_store_ranks_the_same(tmp_path: Path) -> None:
    embedder = HashEmbedder()
    store = open_faiss_store(corpus(), embedder, tmp_path)
    reopened = open_faiss_store(corpus(), embedder, tmp_path)
    assert reopened.status == "loaded"
    with_store = Retriever(corpus(), embedder, store)
    with_reopened = Retriever(corpus(), embedder, reopened)
    for question in QUERIES:
        assert with_store.search(question, 5, max_per_source=2) == with_reopened.search(
            question, 5, max_per_source=2
        )
    assert isinstance(store, VectorStore)


def test_kind_change_reuses_the_stored_vectors(tmp_path: Path) -> None:
    embedder = HashEmbedder()
    flat = open_faiss_store(corpus(), embedder, tmp_path)
    embedder.texts.clear()
    hnsw = open_faiss_store(corpus(), embedder, tmp_path, kind="hnsw")
    assert hnsw.status == "rebuilt: index settings changed (vectors reused)"
    assert embedder.texts == []
    assert ranked(hnsw, embedder) == ranked(flat, embedder)
    changed = open_faiss_store(
        corpus(), embedder, tmp_path, kind="hnsw", hnsw=HnswParams(m=8, ef_construction=32)
    )
    assert changed.status.startswith("rebuilt: index settings changed")
    assert (
        open_faiss_store(
            corpus(),
            embedder,
            tmp_path,
            kind="hnsw",
            hnsw=HnswParams(m=8, ef_construction=32, ef_search=7),
        ).status
        == "loaded"
    )  # ef_search is a query-time setting


@pytest.mark.parametrize(
    ("name", "damage", "reason"),
    [
        ("index.faiss", lambda b: b[: len(b) // 2], "index file checksum mismatch"),
        (
            "state.json",
            lambda b: b.replace(b"Method 1", b"Method X"),
            "state file checksum mismatch",
        ),
        ("manifest.json", lambda b: b[:20], "unreadable manifest"),
    ],
)
def test_damaged_store_is_rebuilt(tmp_path: Path, name: str, damage: object, reason: str) -> None:
    embedder = HashEmbedder()
    store = open_faiss_store(corpus(), embedder, tmp_path)
    target = store.path / name  # type: ignore[operator]
    target.write_bytes(damage(target.read_bytes()))  # type: ignore[operator]
    rebuilt = open_faiss_store(corpus(), embedder, tmp_path)
    assert rebuilt.status.startswith(f"rebuilt: {reason}")
    assert open_faiss_store(corpus(), embedder, tmp_path).status == "loaded"


def test_manifest_on_disk(tmp_path: Path) -> None:
    embedder = HashEmbedder()
    store = open_faiss_store(corpus(), embedder, tmp_path, kind="hnsw")
    manifest = json.loads((store.path / "manifest.json").read_text())  # type: ignore[operator]
    assert manifest["model_id"] == embedder.model_id
    assert manifest["fingerprint"] == corpus().fingerprint
    assert manifest["kind"] == "hnsw"
    assert manifest["passages"] == len(corpus().passages())
    assert not list(tmp_path.glob("stores/.*-*"))  # no staging leftovers


def test_in_memory_store_model_change_rebuilds() -> None:
    store = FaissStore(model_id="a", dimension=256)
    assert store.sync(corpus(), HashEmbedder(model_id="a")) == "built"
    assert store.sync(corpus(), HashEmbedder(model_id="a")) == "unchanged"
    assert (
        store.sync(corpus(), HashEmbedder(dimension=64, model_id="b"))
        == "rebuilt: model_id changed"
    )
    assert store.manifest.dimension == 64
    other = FaissStore(model_id="made-with", dimension=8)
    assert other.sync(corpus(), HashEmbedder(model_id="used")) == "built"
    assert other.manifest.model_id == "used" and other.manifest.dimension == 256


def test_open_store_follows_settings(tmp_path: Path) -> None:
    settings = IndexSettings(
        cache_dir=tmp_path, kind="hnsw", hnsw_m=8, hnsw_ef_construction=16, hnsw_ef_search=20
    )
    store = open_store(corpus(), HashEmbedder(), settings)
    assert isinstance(store, FaissStore)
    assert store.kind == "hnsw" and store.hnsw == HnswParams(8, 16, 20)


def test_pgvector_without_dsn_is_a_config_error(tmp_path: Path) -> None:
    settings = IndexSettings(cache_dir=tmp_path, store="pgvector")
    with pytest.raises(ConfigError, match="GROUNDED_ANSWER_INDEX__DSN"):
        open_store(corpus(), HashEmbedder(), settings)


def test_dsn_comes_from_the_environment_and_stays_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from grounded_answer import load_settings

    monkeypatch.setenv("GROUNDED_ANSWER_INDEX__DSN", "postgresql://u:hunter2@db:5432/ga")
    monkeypatch.setenv("GROUNDED_ANSWER_INDEX__STORE", "pgvector")
    settings = load_settings()
    assert settings.index.store == "pgvector"
    assert settings.index.dsn is not None
    assert settings.index.dsn.get_secret_value() == "postgresql://u:hunter2@db:5432/ga"
    assert "hunter2" not in repr(settings) + str(settings.model_dump())


def test_bad_hnsw_settings_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="at least 2"):
        HnswParams(m=32, ef_construction=40)


def test_faiss_hnsw_recall_at_10() -> None:
    """FAISS HNSW with the default settings finds >= 0.95 of the exact top-10 (5k vectors)."""
    embedder = SyntheticEmbedder()
    data = synthetic_corpus(5000)
    store = FaissStore(model_id=embedder.model_id, dimension=embedder.dimension, kind="hnsw")
    store.sync(data, embedder)
    vectors = np.asarray(embedder.encode([p.text for p in store.passages]))
    queries = embedder.encode([f"query {i}" for i in range(200)])
    truth = exact_top_k(vectors, queries, 10)
    found = [[p for p, _ in row] for row in store.search(queries, 10)]
    assert recall_at_k(found, truth, 10) >= 0.95


def test_a_long_build_shows_passages_per_second(capsys: pytest.CaptureFixture[str]) -> None:
    from grounded_answer.stores._base import embed_passages

    passages = corpus(range(600)).passages()
    embedder = HashEmbedder()
    vectors = embed_passages(
        embedder, passages, embedder.dimension, batch_size=16, show_progress=True
    )
    np.testing.assert_allclose(vectors, embedder.encode([p.text for p in passages]))
    err = capsys.readouterr().err
    assert "1.20k/1.20k" in err and "passage/s" in err  # unit_scale: 1,200 passages

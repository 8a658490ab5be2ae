from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from grounded_answer import Corpus, Source, load_bundle
from grounded_answer.retrieval.retrieve import fuse, get_retriever

from ..support.fakes import HashEmbedder
from ..support.paths import BUNDLES, SEED


def test_rrf_rewards_agreement() -> None:
    fused = fuse([(1, 0.9), (2, 0.8), (3, 0.7)], [(3, 9.0), (1, 5.0)], method="rrf")
    assert [p for p, _ in fused] == [1, 3, 2]


def test_weighted_fusion_normalises_each_list() -> None:
    dense = [(1, 0.50), (2, 0.49)]
    sparse = [(2, 100.0), (1, 1.0)]
    assert fuse(dense, sparse, method="weighted", alpha=0.9)[0][0] == 1
    assert fuse(dense, sparse, method="weighted", alpha=0.1)[0][0] == 2


def corpus() -> Corpus:
    long = " ".join(f"Deblurring sentence {n} about blur removal." for n in range(40))
    return Corpus(
        name="cap",
        sources=(
            Source(
                id="long",
                role="paper",
                title="Deblur survey",
                summary=long,
                paper_url="https://a.org/long",
            ),
            Source(
                id="short",
                role="model",
                title="Deblur-MSSNet",
                summary="Removes blur.",
                github_url="https://github.com/kky7/MSSNet",
            ),
            Source(
                id="asr",
                role="model",
                title="ASR-Whisper",
                summary="Transcribes speech.",
                paper_url="https://arxiv.org/abs/2212.04356",
            ),
        ),
    )


@pytest.mark.parametrize("method", ["dense", "bm25", "hybrid"])
def test_methods_find_the_right_source(tmp_path: Path, method: Any) -> None:
    retriever = get_retriever(corpus(), HashEmbedder(), tmp_path)
    hits = retriever.search("transcribes speech", 3, method=method)
    assert hits[0].source_id == "asr"
    assert [h.rank for h in hits] == list(range(1, len(hits) + 1))
    assert (hits[0].cosine is None) == (method == "bm25")


def test_one_source_cannot_fill_every_slot(tmp_path: Path) -> None:
    retriever = get_retriever(corpus(), HashEmbedder(), tmp_path)
    uncapped = retriever.search("deblurring blur removal", 4, method="dense", max_per_source=None)
    assert [h.source_id for h in uncapped].count("long") >= 3
    capped = retriever.search("deblurring blur removal", 4, method="dense", max_per_source=2)
    assert [h.source_id for h in capped].count("long") == 2
    assert "short" in [h.source_id for h in capped]


def test_retrievers_are_shared(tmp_path: Path) -> None:
    embedder = HashEmbedder()
    assert get_retriever(corpus(), embedder, tmp_path) is get_retriever(
        corpus(), embedder, tmp_path
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("bundle", "question", "expected"),
    [
        (SEED, "Which model removes motion blur from a shaky photo?", "deblur-mssnet-realblurr"),
        (SEED, "How can I rate how good an AI-generated advert image looks?", "ai-generated-image"),
        (SEED, "Do classifiers do better when they zoom into the image?", "imagenet-hard"),
        (BUNDLES / "04_asr_meeting_transcripts.txt", "turn my meeting recording into text", "asr-"),
        (
            BUNDLES / "12_document_invoice_extraction.txt",
            "pull the fields out of scanned invoices",
            "layoutlm",
        ),
    ],
)
def test_real_model_puts_the_obvious_source_first(
    tmp_path: Path, real_embedder: Any, bundle: Path, question: str, expected: str
) -> None:
    parsed = load_bundle(bundle)
    retriever = get_retriever(parsed.corpus, real_embedder, tmp_path)
    # Bundles are ranked dense (retrieval.small_corpus_method): docs/figures/retrieval.md.
    top = retriever.search(question, 3, method="dense")[0]
    assert top.source_id.startswith(expected), top
    assert top.cosine is not None and top.cosine > 0.2


@pytest.mark.slow
def test_hybrid_finds_exact_names_dense_misses(tmp_path: Path, real_embedder: Any) -> None:
    parsed = load_bundle(BUNDLES / "04_asr_meeting_transcripts.txt")
    retriever = get_retriever(parsed.corpus, real_embedder, tmp_path)
    top = retriever.search("HuBERT", 1, method="hybrid")[0]
    assert top.source_id.startswith("asr-hubert")


def test_large_corpus_goes_to_the_store_and_syncs_incrementally(tmp_path: Path) -> None:
    from grounded_answer import explain, load_settings

    def corpus_of(summary: str) -> Corpus:
        sources = [
            Source(
                id=f"p{n}",
                role="paper",
                title=f"Paper {n} on topic {n}",
                summary=f"Topic {n} is studied here.",
                paper_url=f"https://a.org/p{n}",
            )
            for n in range(12)
        ]
        sources[3] = sources[3].model_copy(update={"summary": summary})
        return Corpus(name="big", sources=tuple(sources))

    # Twelve sources, more than this corpus may have to be scored whole.
    settings = load_settings(
        index={"cache_dir": str(tmp_path)}, retrieval={"whole_corpus_sources": 8}
    )
    embedder = HashEmbedder()
    first = explain(
        "topic 3", corpus=corpus_of("Deblurring photos."), settings=settings, embedder=embedder
    )
    assert (tmp_path / "stores").is_dir()
    before = len(embedder.texts)
    second = explain(
        "topic 3", corpus=corpus_of("Denoising photos."), settings=settings, embedder=embedder
    )
    # Only source p3's passages (a head and one summary chunk) and the question re-encoded.
    assert len(embedder.texts) - before == 2 + 1
    assert first.provenance.corpus_fingerprint != second.provenance.corpus_fingerprint
    assert any("Denoising" in hit.text for hit in second.provenance.retrieved)

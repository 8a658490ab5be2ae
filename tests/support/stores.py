"""A small corpus, its edit and ranked results: shared by the unit and integration store tests."""

from __future__ import annotations

from collections.abc import Sequence

from grounded_answer.sources import Corpus, Source
from grounded_answer.stores import VectorStore

from .fakes import HashEmbedder

QUERIES = [
    "remove motion blur",
    "transcribe speech audio",
    "image quality score",
    "segment objects in video",
    "denoise a photo",
    "source 7 paper",
]


def source(i: int, summary: str | None = None) -> Source:
    topics = [
        "motion blur removal",
        "speech transcription",
        "image quality scoring",
        "video object segmentation",
        "photo denoising",
        "text summarisation",
    ]
    return Source(
        id=f"src-{i}",
        role="model" if i % 2 else "paper",
        title=f"Method {i}",
        summary=summary or f"Source {i} does {topics[i % len(topics)]}. " * 3,
        paper_url=f"https://example.org/{i}",
    )


def corpus(ids: Sequence[int] = range(30), **summaries: str) -> Corpus:
    return Corpus(name="unit", sources=tuple(source(i, summaries.get(f"s{i}")) for i in ids))


def ranked(store: VectorStore, embedder: HashEmbedder) -> list[list[tuple[float, str]]]:
    """Every passage per query as (-score, id), best first: equal scores tie-break by id.

    The fake embedder gives templated texts equal scores, and FAISS orders ties by
    label, which differs between an updated store and a fresh one.
    """
    rows = store.search(embedder.encode(QUERIES), len(store.passages))
    return [
        sorted((-round(score, 5), store.passages[position].id) for position, score in row)
        for row in rows
    ]


def edited() -> Corpus:
    """corpus(): source 30 added, source 3's summary changed, source 5 removed."""
    return corpus([i for i in range(31) if i != 5], s3="Now about speech translation.")

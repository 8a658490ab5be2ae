"""explain() from many threads and from asyncio: one model, one index, same answers."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from grounded_answer import Settings, aexplain, explain
from grounded_answer.sources.bundle import Bundle

QUESTIONS = [
    "Can AI sharpen a blurry photo?",
    "Which paper is about zooming into images for classification?",
    "How is the quality of generated advertising images judged?",
    "How do vision transformers get sharper features?",
    "Can I remove motion blur from a night shot?",
    "What does MSSNet do?",
    "Is upsampling feature maps useful for segmentation?",
    "How do I enlarge a low-quality image?",
]


@pytest.mark.slow
def test_eight_threads_match_sequential(
    seed_bundle: Bundle, settings: Settings, real_embedder: Any
) -> None:
    def run(question: str) -> str:
        answer = explain(question, bundle=seed_bundle, settings=settings, embedder=real_embedder)
        return answer.model_copy(update={"provenance": None}).model_dump_json()

    sequential = [run(q) for q in QUESTIONS]
    with ThreadPoolExecutor(max_workers=8) as pool:
        for _ in range(3):
            assert list(pool.map(run, QUESTIONS)) == sequential


def test_threads_share_one_index_build(seed_bundle: Bundle, settings: Settings) -> None:
    from ..support.fakes import HashEmbedder

    embedder = HashEmbedder()
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(
            pool.map(
                lambda q: explain(q, bundle=seed_bundle, settings=settings, embedder=embedder),
                QUESTIONS,
            )
        )
    statuses = [a.provenance.index_status for a in answers]
    assert statuses.count("built") == 8  # all share the one retriever that built it
    # One corpus encode for the build, then one encode per question.
    assert embedder.calls == 1 + len(QUESTIONS)


def test_aexplain_runs_concurrently(seed_bundle: Bundle, settings: Settings) -> None:
    from ..support.fakes import HashEmbedder

    embedder = HashEmbedder()

    async def main() -> list[Any]:
        return await asyncio.gather(
            *(
                aexplain(q, bundle=seed_bundle, settings=settings, embedder=embedder)
                for q in QUESTIONS
            )
        )

    answers = asyncio.run(main())
    assert [a.question for a in answers] == QUESTIONS
    assert all(a.references for a in answers if a.answerable)

from __future__ import annotations

import json
from typing import Any

import pytest

from grounded_answer import (
    Answer,
    QuestionError,
    Settings,
    UngroundedAnswerError,
    explain,
    load_settings,
)
from grounded_answer.backends.stub import StubBackend
from grounded_answer.sources.bundle import Bundle

from ..support.drafts import foreign_links, good_draft
from ..support.fakes import HashEmbedder
from ..support.paths import BUNDLES


def run(
    bundle: Bundle, settings: Settings, script: list[Any], **answer: Any
) -> tuple[Answer, StubBackend]:
    backend = StubBackend(script=script)
    if answer:
        settings = settings.model_copy(update={"answer": settings.answer.model_copy(update=answer)})
    result = explain(bundle=bundle, settings=settings, backend=backend, embedder=HashEmbedder())
    return result, backend


@pytest.mark.slow
def test_stub_answers_the_seed(seed_bundle: Bundle, settings: Settings, real_embedder: Any) -> None:
    answer = explain(bundle=seed_bundle, settings=settings, embedder=real_embedder)
    assert answer.answerable
    assert "deblurring" in answer.task.statement.lower()
    assert answer.workflow is not None
    assert [s.model for s in answer.workflow.steps] == ["Deblur-MSSNet-RealBlurR"]
    mssnet = answer.references[0]
    assert mssnet.title == "Deblur-MSSNet-RealBlurR"
    assert mssnet.github_url == "https://github.com/kky7/MSSNet"
    assert mssnet.paper_url == "https://cg.postech.ac.kr/Research/MSSNet/MSSNet.pdf"
    markdown = answer.to_markdown()
    for heading in ("## 1. Task", "## 2. Workflow", "## 3. References"):
        assert heading in markdown
    assert "https://github.com/kky7/MSSNet" in markdown
    assert "offline" in markdown
    assert answer.provenance.backend == "stub" and answer.provenance.offline
    assert answer.provenance.retrieved and answer.validation.valid_first_try
    assert foreign_links(answer) == []
    data = json.loads(answer.to_json())
    assert {"question", "answerable", "task", "workflow", "references"} <= set(data)
    assert all({"title", "url"} <= set(ref) for ref in data["references"])
    assert data["workflow"]["graph"]["nodes"][1]["label"] == "Deblur-MSSNet-RealBlurR"


@pytest.mark.slow
def test_stub_is_deterministic(seed_bundle: Bundle, settings: Settings, real_embedder: Any) -> None:
    one = explain(bundle=seed_bundle, settings=settings, embedder=real_embedder)
    two = explain(bundle=seed_bundle, settings=settings, embedder=real_embedder)
    assert one.model_dump(exclude={"provenance"}) == two.model_dump(exclude={"provenance"})


@pytest.mark.slow
@pytest.mark.parametrize(
    "question",
    [
        "What is a good recipe for banana bread?",
        "How do I file my income taxes as a freelancer?",
    ],
)
def test_off_topic_question_is_not_answerable(
    seed_bundle: Bundle, settings: Settings, real_embedder: Any, question: str
) -> None:
    answer = explain(question, bundle=seed_bundle, settings=settings, embedder=real_embedder)
    assert not answer.answerable
    assert answer.workflow is None and answer.references == []
    assert "do not cover" in answer.note
    assert "do not cover" in answer.to_markdown()


@pytest.mark.slow
def test_default_corpus_answers_its_question(settings: Settings, real_embedder: Any) -> None:
    answer = explain(settings=settings, embedder=real_embedder)
    assert answer.answerable and answer.provenance.corpus == "default"
    assert answer.references[0].source_id == "deblur-mssnet-realblurr"


def test_repair_loop_fixes_a_bad_first_answer(seed_bundle: Bundle, settings: Settings) -> None:
    bad = good_draft(task={"statement": "See https://evil.example.com/x", "source_ids": ["S9"]})
    answer, backend = run(seed_bundle, settings, [bad, good_draft()])
    assert len(backend.requests) == 2
    repair = backend.requests[1]
    assert repair.attempt == 2
    sent = repair.messages[-1].content
    assert "https://evil.example.com/x" in sent and "'S9'" in sent
    assert repair.messages[-2].role == "assistant" and repair.messages[-2].content == bad
    assert answer.validation.attempts == 2 and not answer.validation.valid_first_try
    assert any("evil[.]example[.]com" in e for e in answer.validation.repaired)
    assert foreign_links(answer) == []


def test_invalid_json_and_missing_sections_are_repaired(
    seed_bundle: Bundle, settings: Settings
) -> None:
    no_workflow = good_draft(workflow=None)
    answer, backend = run(seed_bundle, settings, ["{not json", no_workflow, good_draft()])
    errors = [r.errors for r in backend.requests]
    assert errors[1][0].startswith("output is not valid JSON")
    assert any("missing section(s) workflow" in e for e in errors[2])
    assert answer.validation.attempts == 3


def test_strict_policy_raises_with_attempts(seed_bundle: Bundle, settings: Settings) -> None:
    bad = good_draft(references=[{"source_id": "S1", "why": "see evil.io/x"}])
    with pytest.raises(UngroundedAnswerError) as caught:
        run(seed_bundle, settings, [bad, bad, bad], policy="strict", max_repairs=2)
    assert len(caught.value.attempts) == 3
    assert all("evil.io/x" in " ".join(a.errors) for a in caught.value.attempts)
    assert caught.value.attempts[0].output == bad
    # The message quotes the last errors, with the offending link defanged.
    assert "evil" in str(caught.value) and "evil.io/x" not in str(caught.value)


def test_drop_policy_removes_and_reports(seed_bundle: Bundle, settings: Settings) -> None:
    bad = good_draft(
        task={
            "statement": "Deblurring, see https://evil.example.com and S7.",
            "source_ids": ["S1", "S8"],
        },
        references=[
            {"source_id": "S1", "why": "Code at github.com/evil/repo too."},
            {"source_id": "S42", "why": "Invented."},
        ],
    )
    answer, backend = run(seed_bundle, settings, [bad], policy="drop", max_repairs=0)
    assert len(backend.requests) == 1
    assert foreign_links(answer) == []
    assert "evil" not in answer.to_markdown()
    dropped = " ".join(answer.validation.dropped)
    for culprit in ("https[:]//evil[.]example[.]com", "S7", "S8", "github[.]com/evil/repo", "S42"):
        assert culprit in dropped
    assert [r.label for r in answer.references] == ["S1"]
    assert any("S42" in e for e in answer.validation.unresolved)


def test_allowed_links_in_prose_pass(seed_bundle: Bundle, settings: Settings) -> None:
    ok = good_draft(
        task={
            "statement": "MSSNet (https://github.com/kky7/MSSNet.git, arXiv 2502.16025) deblurs.",
            "source_ids": ["S1"],
        }
    )
    answer, _ = run(seed_bundle, settings, [ok])
    assert answer.validation.valid_first_try


def test_cut_off_output_is_retried(seed_bundle: Bundle, settings: Settings) -> None:
    class Truncating(StubBackend):
        def complete(self, request):  # type: ignore[no-untyped-def]
            result = super().complete(request)
            if request.attempt == 1:
                return result.model_copy(update={"finish_reason": "length"})
            return result

    backend = Truncating(script=[good_draft()[:120], good_draft()])
    answer = explain(
        bundle=seed_bundle, settings=settings, backend=backend, embedder=HashEmbedder()
    )
    assert len(backend.requests) == 2
    assert "cut off at max_tokens" in backend.requests[1].errors[0]
    assert answer.validation.attempts == 2


def test_question_is_checked(seed_bundle: Bundle, settings: Settings) -> None:
    for bad in ("", "   \n\t"):
        with pytest.raises(QuestionError, match="empty"):
            explain(bad, bundle=seed_bundle, settings=settings, embedder=HashEmbedder())
    small = load_settings(index=settings.index.model_dump(), answer={"max_question_chars": 10})
    with pytest.raises(QuestionError, match="limit is 10"):
        explain("x" * 11, bundle=seed_bundle, settings=small, embedder=HashEmbedder())


def test_bundle_path_and_only_its_sources(settings: Settings) -> None:
    path = BUNDLES / "04_asr_meeting_transcripts.txt"
    answer = explain(bundle=path, settings=settings, embedder=HashEmbedder())
    retrieved = {hit.source_id for hit in answer.provenance.retrieved}
    from grounded_answer import load_bundle

    allowed = {s.id for s in load_bundle(path).corpus.sources}
    assert retrieved <= allowed
    assert {r.source_id for r in answer.references} <= allowed


def test_drop_keeps_allowed_links_whole_at_the_length_limit(
    seed_bundle: Bundle, settings: Settings
) -> None:
    from grounded_answer.grounding.draft import IO_CHARS

    link = "https://github.com/kky7/MSSNet"
    fits = "Sharp photos with " + link + " " + "z" * IO_CHARS  # the cut falls after the link
    straddles = "y" * (IO_CHARS - 10) + " " + link  # the cut would fall inside the link
    bad = json.loads(good_draft())
    bad["workflow"]["input"] = fits  # too long: invalid, so salvaged under drop
    bad["workflow"]["output"] = straddles
    answer, _ = run(seed_bundle, settings, [json.dumps(bad)], policy="drop", max_repairs=0)
    assert answer.workflow is not None
    # A link that fits stays whole; one the cut would split goes whole, never half of it.
    assert link in answer.workflow.input
    assert len(answer.workflow.input) <= IO_CHARS
    assert answer.workflow.output == "y" * (IO_CHARS - 10)
    assert foreign_links(answer) == []


def test_explain_sets_faiss_threads_and_blas_cutover(tmp_path: Any, seed_bundle: Bundle) -> None:
    import faiss

    embedder = HashEmbedder(dimension=96)
    faiss.omp_set_num_threads(2)
    faiss.cvar.distance_compute_blas_threshold = 128_000
    try:
        explain(
            bundle=seed_bundle,
            embedder=embedder,
            settings=load_settings(index={"cache_dir": str(tmp_path / "cache")}),
        )
        assert faiss.omp_get_max_threads() == 1
        assert faiss.cvar.distance_compute_blas_threshold == 20 * 96
        faiss.omp_set_num_threads(2)
        explain(
            bundle=seed_bundle,
            embedder=embedder,
            settings=load_settings(index={"cache_dir": str(tmp_path / "cache"), "threads": 0}),
        )
        assert faiss.omp_get_max_threads() == 2  # 0 leaves faiss's own setting alone
    finally:
        faiss.omp_set_num_threads(1)

"""The answer evaluation harness, and the stub's scores on the labelled set (run in CI)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from grounded_answer import ConfigError, Settings
from grounded_answer.backends.base import CompletionRequest
from grounded_answer.backends.stub import StubBackend
from grounded_answer.evals.answers import _overall, evaluate_answers, format_table, splits_of

from ..support.fakes import HashEmbedder
from ..support.paths import BUNDLES, SEED


@pytest.mark.slow
def test_stub_scores_on_the_dev_split(settings: Settings) -> None:
    # The default embedder (the int8 ONNX path), as a user gets it; tuned on this split.
    # The 60 bundles dev had before set e keep their floors; set e (16 harder ones: two
    # off-topic questions that share words with the sources, a French one the embedding
    # model barely reads) has its own, just under what it meets.
    scores, overall = evaluate_answers(BUNDLES, settings=settings)
    assert overall["bundles"] >= 96 and overall["parsed"] == overall["bundles"]
    assert overall["foreign_links"] == 0
    assert overall["sections_complete"] == overall["bundles"]
    before = _overall([s for s in scores if not s.bundle.startswith(("e", "f"))])
    set_e = _overall([s for s in scores if s.bundle.startswith("e")])
    # Set f (blind, aimed at what the word table and cosines get wrong): the stub's floors
    # are just under what it met when the set was first scored.
    set_f = _overall([s for s in scores if s.bundle.startswith("f")])
    assert set_f["bundles"] == 20 and set_f["foreign_links"] == 0
    assert set_f["citation_recall"] >= 0.65 and set_f["citation_precision"] >= 0.7
    assert set_f["answerable_accuracy"] >= 0.85 and set_f["task_named"] >= 0.85
    assert before["bundles"] == 60 and set_e["bundles"] == 16
    assert before["citation_precision"] >= 0.9 and set_e["citation_precision"] >= 0.78
    assert before["citation_recall"] >= 0.9 and set_e["citation_recall"] >= 0.72
    assert before["answerable_accuracy"] >= 0.95 and set_e["answerable_accuracy"] >= 0.8
    assert before["task_named"] >= 0.95 and set_e["task_named"] >= 0.9
    assert overall["models_cited"] >= 0.95 and overall["models_in_workflow"] >= 0.95
    table = format_table(scores)
    assert "00_seed.txt" in table and "precision" in table


@pytest.mark.slow
def test_stub_floors_on_the_held_out_test_split(settings: Settings) -> None:
    # Never tuned on. The floors are the ones the held-out split meets today; its recall
    # (0.68) and task naming (0.72) are below the targets and reported in
    # docs/figures/answers.md.
    _, overall = evaluate_answers(BUNDLES.parent / "test", settings=settings)
    assert overall["bundles"] >= 20 and overall["parsed"] == overall["bundles"]
    assert overall["foreign_links"] == 0
    assert overall["sections_complete"] == overall["bundles"]
    assert overall["models_cited"] == 1.0 and overall["models_in_workflow"] == 1.0
    assert overall["citation_precision"] >= 0.8
    assert overall["answerable_accuracy"] >= 0.9


def test_splits_are_reported_apart(tmp_path: Path) -> None:
    for split in ("dev", "test"):
        (tmp_path / split).mkdir()
        (tmp_path / split / "labels.json").write_text("{}")
    assert list(splits_of(tmp_path)) == ["dev", "test"]
    assert list(splits_of(tmp_path / "dev")) == ["dev"]


def test_scores_reflect_what_was_cited(tmp_path: Path, settings: Settings) -> None:
    (tmp_path / "a.txt").write_bytes(SEED.read_bytes())
    paper = "http://arxiv.org/pdf/2304.05538v4.pdf"  # ImageNet-Hard: S2.. after the model
    labels = {
        "a.txt": {
            "answerable": True,
            "task_keywords": ["deblur"],
            "relevant": ["https://github.com/kky7/MSSNet", paper],
        }
    }
    (tmp_path / "labels.json").write_text(json.dumps(labels))

    def model_and_a_distractor(request: CompletionRequest) -> str:
        # A related paper the plan keeps in play, other than ImageNet-Hard: a wrong citation.
        aigi = next(
            s.alias
            for s in request.context.sources
            if s.role == "paper" and not s.title.startswith("ImageNet")
        )
        return json.dumps(
            {
                "task": {"statement": "Image deblurring.", "source_ids": ["S1"]},
                "workflow": {
                    "input": "a photo",
                    "steps": [
                        {
                            "source_id": "S1",
                            "input": "a photo",
                            "action": "deblurs",
                            "output": "a sharp photo",
                        }
                    ],
                    "output": "a photo",
                },
                "references": [
                    {"source_id": "S1", "why": "The model."},
                    {"source_id": aigi, "why": "Wrongly cited."},
                ],
                "note": "",
                "answerable": True,
            }
        )

    scores, _ = evaluate_answers(
        tmp_path,
        settings=settings,
        embedder=HashEmbedder(),
        backend=StubBackend(script=[model_and_a_distractor]),
    )
    (score,) = scores
    assert score.recall == 0.5  # the model, but not ImageNet-Hard
    assert score.precision == 0.5  # the model right, the other paper wrong
    assert score.task_named and score.models_cited and score.foreign_links == 0


def test_bad_labels_file(tmp_path: Path, settings: Settings) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        evaluate_answers(tmp_path, settings=settings, embedder=HashEmbedder())
    (tmp_path / "labels.json").write_text("{not json")
    with pytest.raises(ConfigError, match="invalid"):
        evaluate_answers(tmp_path, settings=settings, embedder=HashEmbedder())


def test_answers_can_be_kept_to_be_read_in_full(tmp_path: Path, settings: Settings) -> None:
    folder = tmp_path / "one"
    folder.mkdir()
    (folder / "00_seed.txt").write_text(SEED.read_text())
    (folder / "labels.json").write_text(json.dumps({"00_seed.txt": {"answerable": True}}))
    scores, overall = evaluate_answers(
        folder, settings=settings, embedder=HashEmbedder(), answers_dir=tmp_path / "kept"
    )
    assert scores[0].parsed and overall["lines_translated"] == 0
    kept = tmp_path / "kept"
    assert (kept / "00_seed.md").read_text().startswith("**Question:**")
    assert json.loads((kept / "00_seed.json").read_text())["answerable"] is True

"""The judge's rule: scores read from a reply, and a plan changed by them, pure functions."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from grounded_answer.planning import EvidencePlan, Relevance
from grounded_answer.planning.judge import JudgeRule, Reading, apply_judgements, score_reply

from ..support.drafting import drafting
from ..support.paths import BUNDLES

RULE = JudgeRule(keep_gap=0.02, drop_gap=0.15, coverage_min=0.9)


def logs(**probabilities: float) -> list[tuple[str, float]]:
    return [(token, math.log(p)) for token, p in probabilities.items()]


def test_p_yes_sums_the_spellings_of_yes_and_no() -> None:
    reading = score_reply(
        "Yes",
        [
            ("Yes", math.log(0.6)),
            (" yes", math.log(0.1)),
            ("No", math.log(0.2)),
            ("no.", math.log(0.1)),
            ("Maybe", math.log(0.5)),
        ],
    )
    assert reading is not None and reading.method == "logprobs"
    assert reading.score == pytest.approx(0.7)


def test_without_probabilities_the_written_word_is_the_reading() -> None:
    assert score_reply("No", None) == Reading(score=0.0, method="label")
    assert score_reply(" yes, it is", []) == Reading(score=1.0, method="label")
    assert score_reply("Perhaps", None) is None
    assert score_reply("", logs(Maybe=0.9)) is None


@pytest.fixture(scope="module")
def plan(tmp_path_factory: pytest.TempPathFactory) -> EvidencePlan:
    # Six related papers, one relevant by the labels; the plan alone cites one of them.
    return drafting(BUNDLES / "02_deblur_motion_blur.txt", tmp_path_factory.mktemp("cache")).plan


def papers(plan: EvidencePlan) -> list[str]:
    return [s.label for s in plan.sources if s.relevance is not Relevance.RECOMMENDED]


def test_papers_within_the_keep_gap_are_cited_and_far_below_are_not(plan: EvidencePlan) -> None:
    labels = papers(plan)
    scores = dict(zip(labels, [0.62, 0.70, 0.69, 0.60, 0.51, 0.40], strict=False))
    judged = apply_judgements(
        plan, {k: Reading(v, "logprobs") for k, v in scores.items()}, None, RULE
    )
    by_id = {s.source_id: s for s in judged.sources}
    before = {s.label: s for s in plan.sources}
    for label, score in scores.items():
        source = by_id[before[label].source_id]
        assert source.judgement is not None and source.judgement.score == score
        if source.evidence.rule in ("built on", "architecture", "name part"):
            assert source.relevance is before[label].relevance  # what it is stays
        elif 0.70 - score <= 0.02:
            assert source.relevance is Relevance.RELEVANT
            assert source.judgement.decided_by == "model"
        elif 0.70 - score > 0.15:
            assert source.relevance is Relevance.NOT_RELEVANT
        else:
            assert source.relevance is before[label].relevance
            assert source.judgement.decided_by == "plan"
    # The verdict and the models are the plan's; papers are relabelled in their new order.
    assert judged.verdict == plan.verdict and judged.steps == plan.steps
    assert [s.label for s in judged.sources] == [f"S{n}" for n in range(1, len(judged.sources) + 1)]
    order = [s.relevance for s in judged.sources]
    assert order == sorted(
        order,
        key=[
            Relevance.RECOMMENDED,
            Relevance.RELEVANT,
            Relevance.BORDERLINE,
            Relevance.NOT_RELEVANT,
        ].index,
    )


def test_the_recommended_model_keeps_its_place_whatever_is_read(plan: EvidencePlan) -> None:
    model = plan.sources[0]
    judged = apply_judgements(
        plan, {model.label: Reading(0.0, "logprobs")}, Reading(0.95, "logprobs"), RULE
    )
    assert judged.sources[0].source_id == model.source_id
    assert judged.sources[0].relevance is Relevance.RECOMMENDED
    assert judged.steps and judged.steps[0].source_id == model.source_id


def test_coverage_below_the_threshold_declines_and_above_it_keeps_the_steps(
    plan: EvidencePlan,
) -> None:
    declined = apply_judgements(plan, {}, Reading(0.85, "logprobs"), RULE)
    assert not declined.verdict.answerable and declined.verdict.basis == "model"
    assert declined.steps == [] and declined.cited == []
    covered = apply_judgements(declined, {}, Reading(0.95, "logprobs"), RULE)
    assert covered.verdict.answerable and covered.steps == plan.steps


def test_the_why_line_says_what_the_model_read(plan: EvidencePlan, tmp_path: Path) -> None:
    labels = papers(plan)
    judged = apply_judgements(
        plan, {labels[0]: Reading(0.9, "logprobs"), labels[1]: Reading(0.2, "logprobs")}, None, RULE
    )
    line = judged.why_line()
    assert "read by the model and judged worth citing (the model rated it highest)" in line
    assert "judged not worth citing (the model rated it 2nd of 2)" in line

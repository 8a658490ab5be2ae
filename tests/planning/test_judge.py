"""The judge's rule: scores read from a reply, and a plan changed by them, pure functions."""

from __future__ import annotations

import math
import statistics
from pathlib import Path

import pytest

from grounded_answer.planning import EvidencePlan, Relevance
from grounded_answer.planning.judge import JudgeRule, Reading, apply_judgements, score_reply

from ..support.drafting import drafting
from ..support.paths import BUNDLES

RULE = JudgeRule(weight=0.5, cite_at=1.5, coverage_min=0.9)


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


def test_a_paper_is_cited_by_its_plan_grade_plus_the_models_z_score(
    plan: EvidencePlan,
) -> None:
    labels = papers(plan)
    values = [0.62, 0.70, 0.69, 0.60, 0.51, 0.40][: len(labels)]
    scores = dict(zip(labels, values, strict=True))
    judged = apply_judgements(
        plan, {k: Reading(v, "logprobs") for k, v in scores.items()}, None, RULE
    )
    mean = statistics.fmean(values)
    spread = statistics.pstdev(values)
    grade = {Relevance.RELEVANT: 2.0, Relevance.BORDERLINE: 1.0, Relevance.NOT_RELEVANT: 0.0}
    by_id = {s.source_id: s for s in judged.sources}
    before = {s.label: s for s in plan.sources}
    deciders = set()
    for label, score in scores.items():
        source = by_id[before[label].source_id]
        assert source.judgement is not None and source.judgement.score == score
        if source.evidence.rule in ("built on", "architecture", "name part"):
            assert source.relevance is before[label].relevance  # what it is stays
            continue
        cites = grade[before[label].relevance] + 0.5 * (score - mean) / spread >= 1.5
        assert (source.relevance is Relevance.RELEVANT) == cites
        plan_cites = before[label].relevance is Relevance.RELEVANT
        # The plan decides only what it cites and the model agrees to; a borderline paper
        # is the model's to settle either way.
        assert source.judgement.decided_by == ("plan" if cites and plan_cites else "model")
        deciders.add(source.judgement.decided_by)
    assert "model" in deciders  # the scores above must have let the model decide something
    # The verdict and the models are the plan's; papers are relabelled in their new order.
    assert judged.verdict == plan.verdict and judged.steps == plan.steps
    assert [s.label for s in judged.sources] == [f"S{n}" for n in range(1, len(judged.sources) + 1)]
    order = [s.relevance for s in judged.sources]
    ranking = [
        Relevance.RECOMMENDED,
        Relevance.RELEVANT,
        Relevance.BORDERLINE,
        Relevance.NOT_RELEVANT,
    ]
    assert order == sorted(order, key=ranking.index)


def test_a_paper_the_model_did_not_read_ranks_last_in_its_grade(plan: EvidencePlan) -> None:
    labels = papers(plan)
    grade = {s.label: s.relevance for s in plan.sources}
    read = [label for label in labels if grade[label] is not Relevance.RELEVANT]
    relevant = [label for label in labels if grade[label] is Relevance.RELEVANT]
    # Read every paper but the plan's first relevant one; all score alike, so the plan decides.
    readings = {label: Reading(0.5, "logprobs") for label in read + relevant[1:]}
    judged = apply_judgements(plan, readings, None, RULE)
    assert len(relevant) >= 2  # the bundle must give the unread paper company in its grade
    cited = [s for s in judged.sources if s.relevance is Relevance.RELEVANT]
    assert cited[-1].judgement is None and all(s.judgement for s in cited[:-1])
    first = next(s.source_id for s in plan.sources if s.label == relevant[0])
    assert cited[-1].source_id == first


def test_scores_that_do_not_vary_leave_the_plan_to_decide(plan: EvidencePlan) -> None:
    readings = {label: Reading(0.8, "logprobs") for label in papers(plan)}
    judged = apply_judgements(plan, readings, None, RULE)
    before = {s.source_id: s.relevance for s in plan.sources}
    assert all(s.relevance is before[s.source_id] for s in judged.sources)
    assert all(s.judgement is None or s.judgement.decided_by == "plan" for s in judged.sources)


def test_the_recommended_model_keeps_its_place_whatever_is_read(plan: EvidencePlan) -> None:
    model = plan.sources[0]
    judged = apply_judgements(
        plan, {model.label: Reading(0.0, "logprobs")}, Reading(0.95, "logprobs"), RULE
    )
    assert judged.sources[0].source_id == model.source_id
    assert judged.sources[0].relevance is Relevance.RECOMMENDED
    assert judged.steps and judged.steps[0].source_id == model.source_id


def test_the_model_declines_below_the_threshold_and_never_covers_a_plan_decline(
    plan: EvidencePlan,
) -> None:
    declined = apply_judgements(plan, {}, Reading(0.85, "logprobs"), RULE)
    assert not declined.verdict.answerable and declined.verdict.basis == "model"
    assert declined.steps == [] and declined.cited == []
    again = apply_judgements(declined, {}, Reading(0.99, "logprobs"), RULE)
    assert not again.verdict.answerable and again.verdict.score == 0.99
    covered = apply_judgements(plan, {}, Reading(0.95, "logprobs"), RULE)
    assert covered.verdict.answerable and covered.steps == plan.steps
    assert covered.verdict.basis == "model" and plan.verdict.reason in covered.verdict.reason


def test_the_why_line_says_what_the_model_read(plan: EvidencePlan, tmp_path: Path) -> None:
    labels = papers(plan)
    values = [0.95, 0.2, 0.3, 0.25, 0.35, 0.2][: len(labels)]
    judged = apply_judgements(
        plan, {k: Reading(v, "logprobs") for k, v in zip(labels, values, strict=True)}, None, RULE
    )
    line = judged.why_line()
    assert "the model rated it highest" in line
    for source in judged.sources:
        if source.judgement is not None:
            assert source.judgement.reason in line
            if source.judgement.decided_by == "model":
                assert "read by the model and judged" in source.judgement.reason

"""The model reads each source and judges it; the plan keeps its invariants.

Word tables and embedding cosines cannot read: they call pix2pix "machine translation"
and answer "how do I sharpen kitchen knives" because a model is named Sharpen-DeblurGAN.
With a language model configured, the pipeline asks it one short yes/no question per
related source (would an expert cite it?) and one about coverage (is the user asking for
what these models do?), each scored as P(yes) from the first token's log-probabilities,
or from the word it wrote where a server gives none (:func:`score_reply`). This module
turns those scores into the plan's decisions (:func:`apply_judgements`); the calls
themselves are made by :mod:`grounded_answer.pipeline`.

A small model says "yes" to nearly everything in absolute terms, so its score counts
only against the others of the same bundle: its z-score there (how many standard
deviations above the bundle's mean). Neither reader is right alone (on the dev bundles
the model's ranking AUC is 0.85, the cosines' 0.88, the plan's three grades' 0.92); their
sum ranks best (0.95). So the rule (tuned on ``benchmarks/bundles/dev`` only; the docs
report the held-out ``test`` split) is:

- a recommended model is never judged away;
- a paper the plan found relevant because of what it *is* (the method a model's name is
  built on, its architecture, a part of its name) stays relevant;
- any other paper the model read (the pipeline does not ask about papers the plan ruled
  out) scores its plan grade (relevant 2, borderline 1) plus ``judge.weight`` times the
  model's z-score among the papers read, and is cited when that reaches
  ``judge.cite_at`` (so the model settles every borderline paper it read, either way);
  with fewer than three papers read, or scores that do not vary, the plan decides;
- the model can decline what the plan found covered: when its coverage score is below
  ``judge.coverage_min`` (a question that only shares the models' words). It does not
  make the plan cover what the plan found uncovered, and it is not asked when no
  recommended model has a known task or a summary to read.

Each decision is recorded with the score, the rank and who decided (plan or model), so a
user can see why a paper is or is not cited.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from .models import (
    EvidencePlan,
    Judgement,
    PlannedSource,
    Relevance,
    TaskCandidate,
    Verdict,
)

__all__ = ["JudgeRule", "Reading", "apply_judgements", "score_reply"]

#: Plan rules that say what a paper *is*; the model's reading does not overturn them.
NAMED_RULES = frozenset({"built on", "architecture", "name part"})
#: A z-score needs this many papers, and this spread of scores, to mean anything.
MIN_PAPERS = 3
MIN_SPREAD = 0.005
_GRADE = {Relevance.RELEVANT: 2.0, Relevance.BORDERLINE: 1.0, Relevance.NOT_RELEVANT: 0.0}
_YES = frozenset({"yes", "y", "true", "是", "はい", "예", "oui", "sí", "si", "ja", "sim"})
_GRADES = ("0", "1", "2", "3")
_NO = frozenset({"no", "n", "false", "否", "不", "いいえ", "아니요", "non", "nein", "não"})


@dataclass(frozen=True)
class Reading:
    """One yes/no judgement as the model gave it."""

    score: float
    method: Literal["logprobs", "label"]


@dataclass(frozen=True)
class JudgeRule:
    """The weights of the combination rule (see the module docstring)."""

    weight: float
    cite_at: float
    coverage_min: float


def score_reply(text: str, choices: Sequence[tuple[str, float]] | None) -> Reading | None:
    """P(yes) from the first token's alternatives, else from the word written; None if neither.

    ``choices`` are (token, log-probability) pairs. Tokens are compared without case,
    spaces or punctuation ("Yes", " yes", "YES." all say yes); the probabilities of yes
    and of no are summed over their spellings and normalised against each other. A
    template that asks for a 0-3 grade instead is read as the grade's expected value over
    the digits' probabilities, scaled to 0-1.
    """
    if choices:
        yes = no = 0.0
        grades = [0.0] * len(_GRADES)
        for token, logprob in choices:
            word = _word(token)
            if word in _YES:
                yes += math.exp(logprob)
            elif word in _NO:
                no += math.exp(logprob)
            elif word in _GRADES:
                grades[_GRADES.index(word)] += math.exp(logprob)
        if sum(grades) > yes + no:
            # A 0-3 grade (UMBRELA's scale): its expected value, scaled to 0-1.
            expected = sum(n * p for n, p in enumerate(grades)) / sum(grades)
            return Reading(score=expected / (len(_GRADES) - 1), method="logprobs")
        if yes + no > 0:
            return Reading(score=yes / (yes + no), method="logprobs")
    word = _word(text.split(maxsplit=1)[0]) if text.strip() else ""
    if word in _YES:
        return Reading(score=1.0, method="label")
    if word in _NO:
        return Reading(score=0.0, method="label")
    if word in _GRADES:
        return Reading(score=_GRADES.index(word) / (len(_GRADES) - 1), method="label")
    return None


def apply_judgements(
    plan: EvidencePlan,
    readings: Mapping[str, Reading],
    coverage: Reading | None,
    rule: JudgeRule,
    task: str | None = None,
) -> EvidencePlan:
    """The plan with the model's readings applied by ``rule``, each decision recorded.

    ``readings`` are by source label; a source without one keeps the plan's judgement.
    The workflow skeleton is the plan's: only related papers change, never the models.
    ``task`` is the task as the model named it (cleaned): a candidate of origin
    'reader', which the task statement names beside the plan's.
    """
    papers = [s for s in plan.sources if s.relevance is not Relevance.RECOMMENDED]
    scored = {label: r for label, r in readings.items() if any(s.label == label for s in papers)}
    ranks = {
        label: n
        for n, (label, _) in enumerate(
            sorted(scored.items(), key=lambda item: -item[1].score), start=1
        )
    }
    values = [r.score for r in scored.values()]
    spread = statistics.pstdev(values) if len(values) >= MIN_PAPERS else 0.0
    mean = statistics.fmean(values) if values else 0.0
    judged = []
    for source in plan.sources:
        reading = readings.get(source.label)
        if reading is None or source.relevance is Relevance.RECOMMENDED:
            judged.append(source)
            continue
        rank = ranks.get(source.label, 1)
        said = f"the model rated it {_rank(rank, len(scored))}"
        plan_cites = source.relevance is Relevance.RELEVANT
        if source.evidence.rule in NAMED_RULES or spread < MIN_SPREAD:
            judged.append(
                _record(source, reading, rank, "plan", source.relevance, f"{source.reason}; {said}")
            )
            continue
        combined = _GRADE[source.relevance] + rule.weight * (reading.score - mean) / spread
        cites = combined >= rule.cite_at
        # The plan decided only what it found relevant; a borderline paper is the model's
        # to settle either way (the writer then has no keep/drop vote left to give).
        if plan_cites and cites:
            judged.append(
                _record(
                    source, reading, rank, "plan", Relevance.RELEVANT, f"{source.reason}; {said}"
                )
            )
        else:
            judged.append(
                _record(
                    source,
                    reading,
                    rank,
                    "model",
                    Relevance.RELEVANT if cites else Relevance.NOT_RELEVANT,
                    f"was read by the model and judged {'' if cites else 'not '}worth citing "
                    f"({said}; the plan had it {source.relevance.value.replace('_', ' ')})",
                )
            )
    verdict = plan.verdict
    if coverage is not None and plan.sources:
        verdict = _coverage_verdict(plan.verdict, coverage, rule)
    tasks = plan.tasks
    if task and not any(t.name.lower() == task.lower() for t in tasks):
        tasks = [*tasks, TaskCandidate(name=task, origin="reader", input="", output="", action="")]
    return _reordered(
        plan.model_copy(update={"sources": judged, "verdict": verdict, "tasks": tasks})
    )


def _record(
    source: PlannedSource,
    reading: Reading,
    rank: int,
    decided_by: Literal["plan", "model"],
    relevance: Relevance,
    reason: str,
) -> PlannedSource:
    judgement = Judgement(
        score=round(reading.score, 4),
        rank=rank,
        method=reading.method,
        decided_by=decided_by,
        reason=reason,
    )
    return source.model_copy(
        update={
            "judgement": judgement,
            "relevance": relevance,
            "reason": reason if decided_by == "model" else source.reason,
        }
    )


def _coverage_verdict(plan_verdict: Verdict, coverage: Reading, rule: JudgeRule) -> Verdict:
    said = f"P(yes) {coverage.score:.2f}, threshold {rule.coverage_min:.2f}"
    if not plan_verdict.answerable:
        return plan_verdict.model_copy(update={"score": round(coverage.score, 4)})
    if coverage.score >= rule.coverage_min:
        return Verdict(
            answerable=True,
            basis="model",
            score=round(coverage.score, 4),
            reason=f"{plan_verdict.reason} The language model read the question and what the "
            f"recommended models do, and found nothing against it ({said}).",
        )
    return Verdict(
        answerable=False,
        basis="model",
        score=round(coverage.score, 4),
        reason="The provided sources do not cover this question: the language model read "
        "it and what the recommended models do, and judged that the question does not ask "
        f"for what they do ({said}).",
    )


def _reordered(plan: EvidencePlan) -> EvidencePlan:
    """Sources in the plan's order again (models, relevant, borderline, the rest), relabelled.

    Models come first in both orders, so their labels (and the steps that use them) stay;
    papers are numbered after them in their new order, best rated first within a grade, and
    those the model did not read after those it did.
    """
    order = {
        Relevance.RECOMMENDED: 0,
        Relevance.RELEVANT: 1,
        Relevance.BORDERLINE: 2,
        Relevance.NOT_RELEVANT: 3,
    }
    position = {s.label: n for n, s in enumerate(plan.sources)}

    unread = len(plan.sources) + 1  # a paper the model did not read ranks last in its grade

    def key(source: PlannedSource) -> tuple[int, int, int]:
        if source.relevance is Relevance.RECOMMENDED:
            rank = 0
        else:
            rank = source.judgement.rank if source.judgement else unread
        return order[source.relevance], rank, position[source.label]

    ranked = [
        s.model_copy(update={"label": f"S{n}"})
        for n, s in enumerate(sorted(plan.sources, key=key), start=1)
    ]
    steps = plan.skeleton() if plan.verdict.answerable else []
    return plan.model_copy(update={"sources": ranked, "steps": steps})


def _rank(rank: int, count: int) -> str:
    return "highest" if rank == 1 else f"{_ordinal(rank)} of {count}"


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _word(token: str) -> str:
    return token.strip().strip(".,!?:;\"'`*()[]\u3002\u3001\uff01\uff1f").lower()

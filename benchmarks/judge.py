"""The judge stage alone: what the model reads into each source, what it costs, how to tune it.

For every labelled bundle of a split, the plan is made as ``explain()`` makes it (restating
a question that is not in English), then the judge stage asks the configured model about
the coverage and each related source. Each paper is recorded with its label (relevant,
optional or distractor by labels.json), the plan's verdict and rule, the model's P(yes), and
each call's seconds and prompt tokens. Printed and written to a JSON file:

- within-bundle ranking AUC (relevant above distractor), the plan's word/cosine signal beside;
- coverage scores of answerable vs off-topic questions;
- seconds per judgement (p50/p95) and prompt tokens, with the response cache off;
- with ``--tune``: the (weight, cite_at, coverage_min) grid on these scores, by the
  citation recall and precision and the answerable accuracy the rule would give. Tune on
  dev only; ``--rule-from FILE`` applies a tuned rule to another split's scores.

Usage: ``.venv/bin/python benchmarks/judge.py --bundles benchmarks/bundles/dev
[--model qwen1.5b] [--port N] [--tune] [--out FILE] [--scores FILE]``. It starts the
local server with scripts/local-llm (``--threads`` for llama-server), or uses
``--base-url`` when given. ``--scores FILE`` re-reads saved scores instead of calling.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from grounded_answer import load_bundle, load_settings
from grounded_answer.backends.base import Completion, CompletionRequest, make_backend
from grounded_answer.backends.cache import cached
from grounded_answer.embeddings import select_embedder
from grounded_answer.evals.answers import BundleLabel
from grounded_answer.grounding.links import link_key
from grounded_answer.pipeline import (
    english_question,
    plan_evidence,
    retrieve_passages,
    retriever_for,
)
from grounded_answer.pipeline._judge import judge_plan
from grounded_answer.pipeline._run import Run
from grounded_answer.planning import EvidencePlan, Relevance
from grounded_answer.planning.judge import JudgeRule, Reading, apply_judgements
from grounded_answer.writing.prompts import load_prompts

ROOT = Path(__file__).resolve().parent.parent


class Recorder:
    """The configured backend, recording each judgement's seconds and prompt tokens."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name, self.model, self.offline = inner.name, inner.model, inner.offline
        self.calls: list[dict[str, Any]] = []

    def complete(self, request: CompletionRequest) -> Completion:
        completion: Completion = self.inner.complete(request)
        if request.max_tokens == 1:
            self.calls.append(
                {
                    "seconds": completion.seconds,
                    "cached": completion.cached,
                    "prompt_tokens": completion.prompt_tokens,
                }
            )
        return completion


def planned(
    bundle: Any, settings: Any, backend: Any, embedder: Any, prompts: Any
) -> tuple[Run, EvidencePlan]:
    """The run state and the plan as ``explain()`` makes them, before the judge stage.

    A question not in English is restated first (``english_question``, as the pipeline
    does), so the judge sees the same plan it would in an answer.
    """
    question = bundle.question or ""
    run = Run(
        question=question,
        settings=settings,
        sources=bundle.corpus,
        backend=backend,
        embedder=embedder,
        prompts=prompts,
    )
    retriever = retriever_for(bundle.corpus, embedder, settings)
    restated = english_question(run)
    _, ranked = retrieve_passages(retriever, restated or question, settings)
    plan = plan_evidence(question, retriever, ranked, settings, run.withhold, restated=restated)
    return run, plan


def score_split(folder: Path, settings: Any) -> list[dict[str, Any]]:
    labels = {
        name: BundleLabel.model_validate(value)
        for name, value in json.loads((folder / "labels.json").read_text(encoding="utf-8")).items()
    }
    embedder = select_embedder(settings)
    backend = Recorder(cached(make_backend(settings.llm), settings.index.cache_dir, settings.llm))
    prompts = load_prompts(settings.answer.prompts_dir)
    rows = []
    for name, label in sorted(labels.items()):
        bundle = load_bundle(folder / name)
        run, plan = planned(bundle, settings, backend, embedder, prompts)
        events: list[tuple[str, dict[str, Any]]] = []
        run.on_event = lambda event, data, events=events: events.append((event, data))
        started = len(backend.calls)
        judge_plan(run, plan)
        relevant = {link_key(link) for link in label.relevant}
        optional = {link_key(link) for link in label.optional}
        kind = {}
        for source in bundle.corpus.sources:
            keys = source.link_keys
            kind[source.id] = (
                "relevant" if keys & relevant else "optional" if keys & optional else "distractor"
            )
        scores = {
            data["source_id"]: data["score"] for event, data in events if event == "judgement"
        }
        coverage = next((data["score"] for event, data in events if event == "coverage"), None)
        rows.append(
            {
                "bundle": name,
                "answerable": label.answerable,
                "coverage": coverage,
                "plan_answerable": plan.verdict.answerable,
                "plan": plan.model_dump(mode="json"),
                "papers": [
                    {
                        "source_id": s.source_id,
                        "label": s.label,
                        "kind": kind[s.source_id],
                        "plan": s.relevance.value,
                        "rule": s.evidence.rule,
                        "cosine": s.evidence.model_score or s.evidence.question_score,
                        "score": scores.get(s.source_id),
                    }
                    for s in plan.sources
                    if s.relevance is not Relevance.RECOMMENDED
                ],
                "calls": backend.calls[started:],
            }
        )
        print(
            f"{name}: coverage {coverage} "
            + " ".join(f"{p['kind'][0]}{p['score']}" for p in rows[-1]["papers"]),
            flush=True,
        )
    return rows


def auc(rows: list[dict[str, Any]], key: str) -> float | None:
    pairs = wins = 0.0
    for row in rows:
        good = [p[key] for p in row["papers"] if p["kind"] == "relevant" and p[key] is not None]
        bad = [p[key] for p in row["papers"] if p["kind"] == "distractor" and p[key] is not None]
        for g, b in itertools.product(good, bad):
            pairs += 1
            wins += 1.0 if g > b else 0.5 if g == b else 0.0
    return round(wins / pairs, 4) if pairs else None


def outcome(rows: list[dict[str, Any]], rule: JudgeRule | None) -> dict[str, float]:
    """Recall, precision and answerable accuracy the rule gives (None: the plan alone)."""
    hit = cited_total = relevant_total = right = 0
    for row in rows:
        plan = EvidencePlan.model_validate(row["plan"])
        if rule is not None:
            readings = {
                p["label"]: Reading(score=p["score"], method="logprobs")
                for p in row["papers"]
                if p["score"] is not None
            }
            coverage = (
                Reading(score=row["coverage"], method="logprobs")
                if row["coverage"] is not None
                else None
            )
            plan = apply_judgements(plan, readings, coverage, rule)
        right += plan.verdict.answerable == row["answerable"]
        if not row["answerable"]:
            continue
        kinds = {p["source_id"]: p["kind"] for p in row["papers"]}
        cited = (
            {s.source_id for s in plan.sources if s.relevance is Relevance.RELEVANT}
            if plan.verdict.answerable
            else set()
        )
        relevant = {sid for sid, kind in kinds.items() if kind == "relevant"}
        judged = {sid for sid in cited if kinds.get(sid) != "optional"}
        hit += len(cited & relevant)
        relevant_total += len(relevant)
        cited_total += len(judged)
    return {
        "recall": round(hit / relevant_total, 4) if relevant_total else 1.0,
        "precision": round(hit / cited_total, 4) if cited_total else 1.0,
        "answerable": round(right / len(rows), 4) if rows else 1.0,
    }


def tune(rows: list[dict[str, Any]]) -> tuple[JudgeRule, dict[str, float]]:
    """The rule that maximises the worst of recall and precision, then answerable accuracy.

    The coverage threshold is the middle of the widest gap below which only off-topic
    questions lie, so it does not sit on the edge of one dev score.
    """
    best: tuple[float, float, JudgeRule] | None = None
    for weight, cite_at in itertools.product(
        [0.25, 0.5, 0.75, 1.0, 1.5], [1.0, 1.25, 1.5, 1.75, 2.0, 2.25]
    ):
        rule = JudgeRule(weight=weight, cite_at=cite_at, coverage_min=0.0)
        papers = outcome(rows, rule)
        key = (min(papers["recall"], papers["precision"]), papers["recall"] + papers["precision"])
        if best is None or key > best[:2]:
            best = (*key, rule)
    assert best is not None
    rule = best[2]
    scores = sorted(r["coverage"] for r in rows if r["coverage"] is not None)
    cuts = [0.0, *((a + b) / 2 for a, b in itertools.pairwise(scores))]
    choice = max(
        cuts,
        key=lambda c: (
            outcome(rows, JudgeRule(weight=rule.weight, cite_at=rule.cite_at, coverage_min=c))[
                "answerable"
            ],
            -c,
        ),
    )
    final = JudgeRule(weight=rule.weight, cite_at=rule.cite_at, coverage_min=round(choice, 3))
    return final, outcome(rows, final)


def summary(rows: list[dict[str, Any]], rule: JudgeRule | None) -> dict[str, Any]:
    calls = [c for r in rows for c in r["calls"] if not c["cached"]]
    seconds = sorted(c["seconds"] for c in calls)
    tokens = sorted(c["prompt_tokens"] for c in calls if c["prompt_tokens"] is not None)
    on = [r["coverage"] for r in rows if r["answerable"] and r["coverage"] is not None]
    off = [r["coverage"] for r in rows if not r["answerable"] and r["coverage"] is not None]
    return {
        "bundles": len(rows),
        "papers": sum(len(r["papers"]) for r in rows),
        "auc_model": auc(rows, "score"),
        "auc_cosine": auc(rows, "cosine"),
        "coverage_on_topic": [min(on, default=None), max(on, default=None)],
        "coverage_off_topic": [min(off, default=None), max(off, default=None)],
        "judgement_seconds_p50": statistics.median(seconds) if seconds else None,
        "judgement_seconds_p95": seconds[int(len(seconds) * 0.95)] if seconds else None,
        "prompt_tokens_p50": statistics.median(tokens) if tokens else None,
        "calls_timed": len(seconds),
        "plan_alone": outcome(rows, None),
        "with_rule": outcome(rows, rule) if rule else None,
        "rule": rule.__dict__ if rule else None,
    }


def start_server(model: str, port: int, threads: int) -> dict[str, str]:
    env = {**os.environ, "GROUNDED_ANSWER_LOCAL_LLM_THREADS": str(threads)}
    started = subprocess.run(
        [str(ROOT / "scripts" / "local-llm"), "start", "--model", model, "--port", str(port)],
        capture_output=True,
        text=True,
        timeout=3600,
        env=env,
    )
    if started.returncode != 0 or "export" not in started.stdout:
        raise SystemExit(started.stderr[-2000:])
    return dict(
        line.removeprefix("export ").split("=", 1)
        for line in started.stdout.splitlines()
        if line.startswith("export ")
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bundles", default=str(ROOT / "benchmarks" / "bundles" / "dev"))
    parser.add_argument("--model", default="qwen1.5b")
    parser.add_argument("--port", type=int, default=8094)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--base-url", help="use this server instead of starting one")
    parser.add_argument("--model-name", default="qwen2.5-coder-1.5b-instruct")
    parser.add_argument("--cache", action="store_true", help="use the response cache")
    parser.add_argument("--prompts-dir", help="templates to judge with (answer.prompts_dir)")
    parser.add_argument("--scores", help="re-read scores saved by an earlier run")
    parser.add_argument("--tune", action="store_true")
    parser.add_argument("--rule-from", help="a JSON file whose 'rule' to apply")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "judge.json"))
    args = parser.parse_args()
    if args.scores:
        rows = json.loads(Path(args.scores).read_text())["rows"]
    else:
        started = None
        if args.base_url:
            url, name = args.base_url, args.model_name
        else:
            started = start_server(args.model, args.port, args.threads)
            url, name = (
                started["GROUNDED_ANSWER_LLM__BASE_URL"],
                started["GROUNDED_ANSWER_LLM__MODEL"],
            )
        settings = load_settings(
            llm={
                "backend": "openai",
                "base_url": url,
                "model": name,
                "api_key": "local",
                "timeout": 600,
                "max_retries": 1,
                "cache": args.cache,
            },
            judge={"enabled": "on"},
            answer={"prompts_dir": args.prompts_dir},
        )
        began = time.perf_counter()
        try:
            rows = score_split(Path(args.bundles), settings)
        finally:
            if started is not None:
                subprocess.run([str(ROOT / "scripts" / "local-llm"), "stop"], check=False)
        print(f"scored in {time.perf_counter() - began:.0f} s")
    rule = None
    if args.tune:
        rule, _ = tune(rows)
    elif args.rule_from:
        rule = JudgeRule(**json.loads(Path(args.rule_from).read_text())["summary"]["rule"])
    else:
        defaults = load_settings().judge
        rule = JudgeRule(
            weight=defaults.weight,
            cite_at=defaults.cite_at,
            coverage_min=defaults.coverage_min,
        )
    result = {"bundles": args.bundles, "summary": summary(rows, rule), "rows": rows}
    print(json.dumps(result["summary"], indent=2))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())

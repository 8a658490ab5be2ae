"""Wordings of the judge's coverage question, compared on a split: which puts off-topic low.

For each labelled bundle the plan is made as ``explain()`` makes it (a question not in
English restated first), the recommended models are described as the judge stage
describes them, and the configured model is asked the coverage question in each wording
behind the same shared system message. Printed per bundle, then per wording: the ranking
AUC of on-topic over off-topic questions, the lowest on-topic scores, and the off-topic
questions the plan answered with their scores. Bundles whose models have neither a known
task nor a summary are recorded but left out of the figures (coverage is not asked there).
``--traps`` adds the issue's two traps built on the seed (kitchen knives with a model
named Sharpen-DeblurGANv2; transformer oil).

Usage: ``.venv/bin/python benchmarks/coverage_prompts.py --bundles benchmarks/bundles/dev
--base-url http://127.0.0.1:8080/v1 --model qwen2.5-coder-1.5b-instruct [--traps]
[--out FILE]``. Responses go through the response cache under ``--cache-dir``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from judge import planned as plan_for

from grounded_answer import load_bundle, load_settings
from grounded_answer.backends.base import make_backend
from grounded_answer.backends.cache import cached
from grounded_answer.embeddings import select_embedder
from grounded_answer.evals.answers import BundleLabel
from grounded_answer.grounding.injection import QUESTION_WITHHELD
from grounded_answer.pipeline._judge import _ask, described_models
from grounded_answer.planning import PlannedStep
from grounded_answer.sources import Bundle, parse_bundle
from grounded_answer.writing.prompts import ChatMessage, load_prompts

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "benchmarks" / "bundles" / "dev" / "00_seed.txt"
SEED_QUESTION = (
    "I tried enlarging a low-quality image and was surprised that the outlines looked sharp "
    "and the background blur was smooth. Can AI really bring out this much detail even from "
    "poor originals?"
)
#: None: the packaged template (judge_coverage.j2); "io": built from the plan's steps.
WORDINGS: dict[str, str | None] = {
    "packaged": None,
    "about": "Is the user's question about what these AI models do? Answer yes or no.",
    "probe": "Is the user's question about a task that these AI models can help with? "
    "Answer yes or no.",
    "io": "io",
}


def io_question(steps: list[PlannedStep]) -> str | None:
    parts = [f"takes {step.input} and gives {step.output}" for step in steps if step.task]
    if not parts:
        return None
    return (
        f"The user needs a model that {'; or one that '.join(parts)}. Does the user's "
        "question ask for that? Judge by what the user has and wants, not by words the "
        "question shares with the models. Answer yes or no."
    )


def traps() -> list[tuple[str, Bundle, bool]]:
    seed = SEED.read_text(encoding="utf-8")
    knives = seed.replace(
        SEED_QUESTION, "How do I sharpen my kitchen knives at home without a whetstone?"
    ).replace("Model: Deblur-MSSNet-RealBlurR", "Model: Sharpen-DeblurGANv2")
    oil = seed.replace(
        SEED_QUESTION,
        "Which transformer oil should I use for a 20 kV substation transformer, and how "
        "often should it be tested?",
    )
    return [("trap: knives", parse_bundle(knives), False), ("trap: oil", parse_bundle(oil), False)]


def score(items: list[tuple[str, Bundle, bool]], settings: Any) -> list[dict[str, Any]]:
    embedder = select_embedder(settings)
    backend = cached(make_backend(settings.llm), settings.index.cache_dir, settings.llm)
    prompts = load_prompts(settings.answer.prompts_dir)
    rows = []
    for name, bundle, answerable in items:
        run, plan = plan_for(bundle, settings, backend, embedder, prompts)
        models, described = described_models(run, plan)
        asked = run.withhold(run.question, "question") or QUESTION_WITHHELD
        base = prompts.judge(asked, models, None)
        row: dict[str, Any] = {
            "bundle": name,
            "answerable": answerable,
            "plan_answerable": plan.verdict.answerable,
            "described": described,
        }
        for key, wording in WORDINGS.items():
            text = io_question(plan.skeleton()) if wording == "io" else wording
            if wording is not None and text is None:
                row[key] = None
                continue
            messages = base if text is None else [base[0], ChatMessage(role="user", content=text)]
            reading = _ask(run, messages)
            row[key] = round(reading.score, 4) if reading else None
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    kept = [row for row in rows if row["described"]]
    out = {}
    for key in WORDINGS:
        on = sorted((r[key], r["bundle"]) for r in kept if r["answerable"] and r[key] is not None)
        off = sorted(
            (r[key], r["bundle"]) for r in kept if not r["answerable"] and r[key] is not None
        )
        if not on or not off:
            continue
        wins = sum((a > b) + 0.5 * (a == b) for a, _ in on for b, _ in off)
        missed = [
            (s, b) for s, b in off if b in {r["bundle"] for r in kept if r["plan_answerable"]}
        ]
        out[key] = {
            "auc": round(wins / (len(on) * len(off)), 3),
            "on_topic": len(on),
            "off_topic": len(off),
            "lowest_on_topic": on[:3],
            "off_topic_the_plan_answered": missed,
            "below_the_lowest_on_topic": sum(s < on[0][0] for s, _ in missed),
        }
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bundles", default=str(ROOT / "benchmarks" / "bundles" / "dev"))
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--model", default="qwen2.5-coder-1.5b-instruct")
    parser.add_argument("--traps", action="store_true")
    parser.add_argument("--cache-dir", default=".grounded_answer_cache")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "coverage.json"))
    args = parser.parse_args()
    settings = load_settings(
        index={"cache_dir": args.cache_dir},
        llm={
            "backend": "openai",
            "base_url": args.base_url,
            "model": args.model,
            "api_key": "local",
            "timeout": 600,
        },
    )
    folder = Path(args.bundles)
    labels = json.loads((folder / "labels.json").read_text(encoding="utf-8"))
    items = [
        (name, load_bundle(folder / name), BundleLabel.model_validate(value).answerable)
        for name, value in sorted(labels.items())
    ]
    rows = score(items + (traps() if args.traps else []), settings)
    figures = summary(rows)
    print(json.dumps(figures, indent=2))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"summary": figures, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

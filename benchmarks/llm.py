"""Grounding with a real model: labelled bundles through the openai backend, guided vs free.

Starts llama.cpp's server with scripts/local-llm (installing it if needed), answers every
bundle of the held-out split (benchmarks/bundles/test) once per model and mode with
``explain(..., backend openai)``, the judge on for a model that reads (as ``scripts/local-llm
start`` sets it; ``judge_seconds_p50`` is the judge stage's seconds per answer), prints the
per-bundle tables and a side-by-side summary, writes everything to
benchmarks/results/llm.json, and stops the server. The response cache is off, so every
answer is a real call.

Usage: ``.venv/bin/python benchmarks/llm.py [--models qwen1.5b qwen] [--modes guided plan free]
[--bundles DIR] [--port N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from grounded_answer import load_settings
from grounded_answer.evals.answers import evaluate_answers, format_table

ROOT = Path(__file__).resolve().parent.parent
COLUMNS = [
    "foreign_links",
    "models_cited",
    "models_in_workflow",
    "answerable_accuracy",
    "citation_recall",
    "citation_precision",
    "task_named",
    "in_language",
    "completion_tokens_p50",
    "prompt_tokens_p50",
    "judgements",
    "judge_seconds_p50",
    "latency_p50_s",
    "latency_p95_s",
    "repairs",
]


def run(
    model: str, modes: list[str], bundles: str, port: int, timeout: float, threads: int = 2
) -> dict[str, Any]:
    script = ROOT / "scripts" / "local-llm"
    started = subprocess.run(
        [str(script), "start", "--model", model, "--port", str(port)],
        capture_output=True,
        text=True,
        timeout=3600,
        env={**os.environ, "GROUNDED_ANSWER_LOCAL_LLM_THREADS": str(threads)},
    )
    if started.returncode != 0 or "export" not in started.stdout:
        raise SystemExit(started.stderr[-2000:])
    env = dict(
        line.removeprefix("export ").split("=", 1)
        for line in started.stdout.splitlines()
        if line.startswith("export ")
    )
    results: dict[str, Any] = {}
    try:
        for mode in modes:
            settings = load_settings(
                llm={
                    "backend": "openai",
                    "base_url": env["GROUNDED_ANSWER_LLM__BASE_URL"],
                    "model": env["GROUNDED_ANSWER_LLM__MODEL"],
                    "api_key": "local",
                    "timeout": timeout,
                    "max_retries": 1,
                    "max_tokens": 900,
                    "cache": False,
                },
                answer={"mode": mode},
                # scripts/local-llm turns the judge off for a model that does not read.
                judge={"enabled": env.get("GROUNDED_ANSWER_JUDGE__ENABLED", "auto")},
            )
            began = time.perf_counter()
            scores, overall = evaluate_answers(bundles, settings=settings)
            latencies = sorted(s.seconds for s in scores if s.parsed)
            overall["latency_p95_s"] = latencies[int(len(latencies) * 0.95)] if latencies else None
            overall["wall_seconds"] = round(time.perf_counter() - began, 1)
            overall["model"] = env["GROUNDED_ANSWER_LLM__MODEL"]
            print(f"== {model} {mode}")
            print(format_table(scores))
            print(json.dumps(overall), flush=True)
            results[mode] = {"overall": overall, "bundles": [s.model_dump() for s in scores]}
    finally:
        subprocess.run([str(script), "stop"], capture_output=True, timeout=60)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--models", nargs="+", default=["qwen1.5b", "qwen"], choices=["qwen1.5b", "qwen", "smol"]
    )
    parser.add_argument(
        "--modes", nargs="+", default=["guided"], choices=["guided", "plan", "free"]
    )
    parser.add_argument(
        "--threads", type=int, default=2, help="llama-server threads (the whole 2-core machine)"
    )
    parser.add_argument("--bundles", default=str(ROOT / "benchmarks" / "bundles" / "test"))
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "llm.json"))
    parser.add_argument("--port", type=int, default=8093)
    parser.add_argument("--timeout", type=float, default=240.0)
    args = parser.parse_args()
    results = {
        model: run(model, args.modes, args.bundles, args.port, args.timeout, args.threads)
        for model in args.models
    }
    print("\nmodel  mode    " + "  ".join(COLUMNS))
    for model, by_mode in results.items():
        for mode, result in by_mode.items():
            print(
                f"{model:6} {mode:7} "
                + "  ".join(str(result["overall"].get(column)) for column in COLUMNS)
            )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"bundles": args.bundles, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

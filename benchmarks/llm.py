"""Grounding with a real model: the labelled bundles through the openai backend.

Starts llama.cpp's server with scripts/local-llm (installing it if needed), answers every
bundle in benchmarks/bundles with ``explain(..., backend openai)``, prints the per-bundle
table and the overall figures, writes them to benchmarks/results/llm.json, and stops the
server. Usage: ``.venv/bin/python benchmarks/llm.py [--model qwen|smol] [--bundles DIR]``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from grounded_answer import load_settings
from grounded_answer.answer_eval import evaluate_answers, format_table

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="qwen", choices=["qwen", "smol"])
    parser.add_argument("--bundles", default=str(ROOT / "benchmarks" / "bundles"))
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "llm.json"))
    parser.add_argument("--timeout", type=float, default=240.0)
    args = parser.parse_args()
    script = ROOT / "scripts" / "local-llm"
    started = subprocess.run([str(script), "start", "--model", args.model],
                             capture_output=True, text=True, timeout=3600)
    if started.returncode != 0 or "export" not in started.stdout:
        print(started.stderr[-2000:], file=sys.stderr)
        return 1
    env = dict(line.removeprefix("export ").split("=", 1)
               for line in started.stdout.splitlines() if line.startswith("export "))
    try:
        settings = load_settings(llm={
            "backend": "openai", "base_url": env["GROUNDED_ANSWER_LLM__BASE_URL"],
            "model": env["GROUNDED_ANSWER_LLM__MODEL"], "api_key": "local",
            "timeout": args.timeout, "max_retries": 1, "max_tokens": 900,
        })
        began = time.perf_counter()
        scores, overall = evaluate_answers(args.bundles, settings=settings)
        overall["wall_seconds"] = round(time.perf_counter() - began, 1)
        overall["model"] = env["GROUNDED_ANSWER_LLM__MODEL"]
    finally:
        subprocess.run([str(script), "stop"], capture_output=True, timeout=60)
    print(format_table(scores))
    print(json.dumps(overall))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"overall": overall, "bundles": [s.model_dump() for s in scores]},
                              indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What a plain ``explain()`` costs, part by part: cold (a fresh process) and warm.

Cold: each run is a fresh interpreter that imports the CLI, imports the pipeline, loads
the settings, chooses the embedder (the checked int8 ONNX export), runs its first encode
(the ONNX session), answers the default corpus's question and renders it, timing each
part; plus the wall time of the real ``grounded-answer explain`` command from outside.
Warm: ``explain(question)`` in one process, default settings, over varied questions.

Medians over ``--runs`` fresh processes (cold) and ``--questions`` calls (warm), with the
load average beside them, printed and written to a JSON file. Run it on a quiet machine:
a busy neighbour moves every number.

Usage: ``.venv/bin/python benchmarks/fast_path.py [--runs 7] [--questions 200] [--out F]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = Path(sys.executable)
CLI = PYTHON.parent / "grounded-answer"

PARTS = r"""
import json, sys, time
t0 = time.perf_counter()
import grounded_answer.cli
t1 = time.perf_counter()
from grounded_answer.pipeline import explain
t2 = time.perf_counter()
from grounded_answer.config import load_settings
settings = load_settings()
t3 = time.perf_counter()
from grounded_answer.embeddings import select_embedder
embedder = select_embedder(settings)
t4 = time.perf_counter()
embedder.encode(["warm up"])
t5 = time.perf_counter()
answer = explain(settings=settings, embedder=embedder)
t6 = time.perf_counter()
answer.to_markdown()
t7 = time.perf_counter()
print(json.dumps({"import_cli": t1 - t0, "import_pipeline": t2 - t1, "settings": t3 - t2,
                  "embedder": t4 - t3, "first_encode": t5 - t4, "explain": t6 - t5,
                  "render": t7 - t6}))
"""

WARM = r"""
import json, statistics, sys, time
from grounded_answer import explain
questions = [f"{q} ({n})" for n in range(int(sys.argv[1]) // 4 + 1) for q in (
    "Can AI remove motion blur from my photo?", "How do I sharpen a blurry picture?",
    "Make my old photo sharper", "Why do the edges look smooth after upscaling?")]
explain(questions[0])
times = []
for question in questions[: int(sys.argv[1])]:
    began = time.perf_counter()
    explain(question)
    times.append(time.perf_counter() - began)
times.sort()
print(json.dumps({"p50_ms": statistics.median(times) * 1000,
                  "p95_ms": times[int(len(times) * 0.95)] * 1000}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--questions", type=int, default=200)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "fast_path.json"))
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GROUNDED_ANSWER_")}
    subprocess.run([str(CLI), "explain"], env=env, capture_output=True, check=True)  # export
    load = os.getloadavg()[0]
    parts: list[dict[str, float]] = []
    walls: list[float] = []
    for _ in range(args.runs):
        began = time.perf_counter()
        subprocess.run([str(CLI), "explain"], env=env, capture_output=True, check=True)
        walls.append(time.perf_counter() - began)
        began = time.perf_counter()
        out = subprocess.run(
            [str(PYTHON), "-c", PARTS], env=env, capture_output=True, text=True, check=True
        )
        parts.append({**json.loads(out.stdout), "process": time.perf_counter() - began})
    warm = json.loads(
        subprocess.run(
            [str(PYTHON), "-c", WARM, str(args.questions)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    result = {
        "load_average_before": round(load, 2),
        "load_average_after": round(os.getloadavg()[0], 2),
        "cold_cli_explain_median_s": round(statistics.median(walls), 3),
        "cold_cli_explain_all_s": [round(w, 3) for w in walls],
        "cold_parts_median_s": {
            key: round(statistics.median(p[key] for p in parts), 4) for key in parts[0]
        },
        "warm_explain": {key: round(value, 2) for key, value in warm.items()},
        "targets": {"cold_cli_explain_s": 1.0, "warm_explain_p50_ms": 10.0},
    }
    print(json.dumps(result, indent=2))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

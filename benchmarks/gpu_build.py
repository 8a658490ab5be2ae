"""Index-build throughput by device: the library's GPU build path against its CPU path.

    .venv/bin/python benchmarks/gpu_build.py --quick          # any machine (CPU only here)
    python3 benchmarks/gpu_build.py --model DIR --n 1000000   # on a GPU machine

What it measures, all through the library's own classes (``build_embedder`` and the
parity-checked GPU embedder that ``grounded-answer index`` uses with
``embedding.device``):

1. **Parity**: passages of the labelled bundles encoded by the CPU path (fp32) and the
   GPU path (fp16); per-passage cosine, its minimum against the 0.999 an index build
   requires.
2. **Throughput by batch size** on synthetic passages of about 128 tokens (passages/s,
   tokenisation included, as a build pays it), with the tokenizer's thread pool on and off.
3. **A large build**: ``--n`` passages (1,000,000 on a GPU) embedded at the best batch
   size, then exact top-10 search over the vectors on the same device (one query, and
   batches of 1,000), as the issue's reference figures were taken.
4. **The CPU for comparison**: the same passages on this machine's CPU cores (fp32).

``--model`` names a sentence-transformers folder (default: the packaged
all-MiniLM-L6-v2); a half-precision copy of the packaged weights (45 MB) travels to a GPU
machine where the 90 MB original does not. Results are printed and written to
benchmarks/results/gpu_build.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _text import synthetic_texts  # noqa: E402

from grounded_answer.config import Settings  # noqa: E402
from grounded_answer.embeddings import (  # noqa: E402
    SentenceTransformerEmbedder,
    build_embedder,
    check_parity,
    resolve_device,
)
from grounded_answer.sources.bundle import load_bundle  # noqa: E402


def bundle_passages() -> list[str]:
    texts: list[str] = []
    for path in sorted((REPO / "benchmarks/bundles/dev").glob("*.txt")):
        corpus = load_bundle(path).corpus
        texts.extend(p.text for s in corpus.sources for p in s.passages())
    return texts


def rate(embedder: Any, texts: list[str], batch_size: int) -> float:
    started = time.perf_counter()
    embedder.encode(texts, batch_size=batch_size)
    return len(texts) / (time.perf_counter() - started)


def run(args: argparse.Namespace) -> dict[str, Any]:
    device = resolve_device(args.device)
    report: dict[str, Any] = {
        "benchmark": "gpu_build",
        "device": device,
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
    }
    import torch

    report["torch"] = torch.__version__
    if device == "cuda":
        report["gpu"] = torch.cuda.get_device_name(0)
    settings = Settings(
        embedding={
            "model": args.model,
            "backend": "torch",  # type: ignore[arg-type]
            "device": args.device,
            "threads": args.cpu_threads,
        }
    )
    cpu = SentenceTransformerEmbedder(args.model, threads=args.cpu_threads)
    build = build_embedder(settings, cpu)
    build.expect(args.n)  # what a store does before a build of this size

    # 1. parity on real passages
    texts = bundle_passages()
    reference = cpu.encode(texts, batch_size=64)
    candidate = build.encode(texts, batch_size=256)
    cosines = np.sum(reference * candidate, axis=1)
    report["parity"] = {
        "passages": len(texts),
        "min_cosine": float(cosines.min()),
        "median_cosine": float(np.median(cosines)),
        "check": check_parity(reference, candidate),
    }
    report["build_record"] = None if build.record is None else build.record.model_dump()
    print(
        f"parity over {len(texts)} bundle passages: min cosine {cosines.min():.6f}; "
        f"built on {report['build_record']}",
        file=sys.stderr,
    )

    # 2. throughput by batch size, tokenizer pool on and off
    sample = synthetic_texts(args.sample)
    build.encode(sample[:2048], batch_size=512)  # warm-up: kernels, allocator
    by_batch = []
    for parallel in ("false", "true"):
        os.environ["TOKENIZERS_PARALLELISM"] = parallel
        for batch in args.batches:
            runs = [rate(build, sample, batch) for _ in range(args.repeats)]
            by_batch.append(
                {
                    "batch_size": batch,
                    "tokenizer_parallel": parallel == "true",
                    "passages_per_s": round(statistics.median(runs)),
                }
            )
            print(
                f"batch {batch:>5} tokenizer parallel {parallel:>5}: "
                f"{statistics.median(runs):,.0f} passages/s",
                file=sys.stderr,
            )
    report["throughput"] = by_batch
    best = max(by_batch, key=lambda row: row["passages_per_s"])
    os.environ["TOKENIZERS_PARALLELISM"] = "true" if best["tokenizer_parallel"] else "false"

    # 3. the large build, then exact search on the device
    texts = synthetic_texts(args.n, seed=1)
    started = time.perf_counter()
    vectors = build.encode(texts, batch_size=best["batch_size"])
    seconds = time.perf_counter() - started
    if device == "cuda":
        report["gpu_peak_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    report["large_build"] = {
        "passages": args.n,
        "batch_size": best["batch_size"],
        "tokenizer_parallel": best["tokenizer_parallel"],
        "seconds": round(seconds, 2),
        "passages_per_s": round(args.n / seconds),
    }
    print(f"{args.n:,} passages embedded in {seconds:.1f} s", file=sys.stderr)
    matrix = torch.from_numpy(vectors).to(device)
    queries = matrix[torch.randperm(matrix.shape[0])[:1000]].clone()
    search = {}
    for label, batch in (("one_query_ms", queries[:1]), ("per_query_in_1000_ms", queries)):
        times = []
        for _ in range(5):
            if device == "cuda":
                torch.cuda.synchronize()
            started = time.perf_counter()
            torch.topk(batch @ matrix.T, 10, dim=1)
            if device == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - started)
        search[label] = round(statistics.median(times[1:]) * 1000 / len(batch), 4)
    report["exact_search"] = search

    # 4. the CPU on the same passages
    cpu_texts = sample[: args.cpu_sample]
    cpu_rate = statistics.median(rate(cpu, cpu_texts, 64) for _ in range(args.repeats))
    report["cpu"] = {
        "threads": args.cpu_threads or torch.get_num_threads(),
        "passages": len(cpu_texts),
        "passages_per_s": round(cpu_rate, 1),
    }
    report["speedup_build_vs_cpu"] = round(report["large_build"]["passages_per_s"] / cpu_rate, 1)
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help="sentence-transformers folder")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--sample", type=int, default=50_000)
    parser.add_argument("--cpu-sample", type=int, default=4_000)
    parser.add_argument("--cpu-threads", type=int, default=0, help="0: torch's default")
    parser.add_argument("--batches", type=int, nargs="+", default=[256, 1024, 2048])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="a small run on any machine")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/results/gpu_build.json")
    args = parser.parse_args()
    if args.quick:
        args.n, args.sample, args.cpu_sample, args.batches, args.repeats = 2000, 500, 300, [64], 1
    report = run(args)
    print(json.dumps(report, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

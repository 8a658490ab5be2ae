"""Sharded index builds: 1, 2 and 4 shard processes into one PostgreSQL + pgvector.

    .venv/bin/python benchmarks/shards.py                # 3,000 sources, a few minutes on 2 cores
    .venv/bin/python benchmarks/shards.py --n 500 --shards 1 2   # a quick run
    .venv/bin/python benchmarks/shards.py --dsn postgresql://...  # your own server

Each run is what a user types: N processes of ``grounded-answer index --corpus FILE
--shard K/N`` started together (each with the default embedder, the int8 ONNX export on
one thread), then one ``grounded-answer index --finalize`` (which checks every source is
stored once and builds the HNSW graph). Every shard count gets a fresh database. Each
source is one passage of about 100 words (~130 tokens), so passages/s compares with the
figures of a GPU build (benchmarks/gpu_build.py). Shards help as long as there are cores
(or machines) for them: on a 2-core machine 4 shards cannot beat 2.

Results are printed as a table and written to benchmarks/results/shards.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _text import synthetic_texts  # noqa: E402

from tests.integration.pg_server import PostgresServer  # noqa: E402


def write_corpus(path: Path, n: int, seed: int) -> int:
    """A JSONL corpus of ``n`` papers, one ~100-word passage each; returns the passages."""
    texts = synthetic_texts(n, seed)
    with path.open("w") as out:  # the corpus is named after the file: shardbench.jsonl
        for i, text in enumerate(texts):
            title, summary = text.split(": ", 1)
            out.write(
                json.dumps(
                    {
                        "id": f"p{i:07d}",
                        "role": "paper",
                        "title": title,
                        "summary": summary + ".",
                        "paper_url": f"https://arxiv.org/abs/2401.{i:05d}",
                    }
                )
                + "\n"
            )
    return n


def cli(args: Sequence[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(REPO / ".venv/bin/grounded-answer"), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str]) -> str:
    out, err = process.communicate()
    if process.returncode:
        raise SystemExit(f"{process.args} exited {process.returncode}: {err.strip()}")
    return out.strip()


def run(args: argparse.Namespace) -> dict[str, Any]:
    load_before = round(os.getloadavg()[0], 2)
    work = Path(tempfile.mkdtemp(prefix="shardbench-"))
    corpus = work / "shardbench.jsonl"
    passages = write_corpus(corpus, args.n, args.seed)
    base_env = {
        **os.environ,
        "GROUNDED_ANSWER_INDEX__STORE": "pgvector",
        "GROUNDED_ANSWER_INDEX__KIND": "hnsw",
        "GROUNDED_ANSWER_EMBEDDING__EXPORT_DIR": str(work / "exports"),
        "GROUNDED_ANSWER_EMBEDDING__THREADS": "1",
        "GROUNDED_ANSWER_INDEX__CACHE_DIR": str(work / "cache"),
    }
    server = None if args.dsn else PostgresServer().start()
    rows: list[dict[str, Any]] = []
    try:
        # Make the ONNX export once, outside every timing (a first run would include it).
        prepare = work / "tiny.jsonl"
        write_corpus(prepare, 3, 0)
        finish(
            cli(
                ["index", "--corpus", str(prepare)],
                {**base_env, "GROUNDED_ANSWER_INDEX__STORE": "faiss"},
            )
        )
        for count in args.shards:
            dsn = args.dsn or server.create_database(f"shards_{count}")  # type: ignore[union-attr]
            env = {**base_env, "GROUNDED_ANSWER_INDEX__DSN": dsn}
            print(f"{count} shard process(es) over {passages} passages ...", file=sys.stderr)
            started = time.perf_counter()
            processes = [
                cli(["index", "--corpus", str(corpus), "--shard", f"{k}/{count}"], env)
                for k in range(1, count + 1)
            ]
            outputs = [finish(p) for p in processes]
            shards_s = time.perf_counter() - started
            started = time.perf_counter()
            finalized = finish(cli(["index", "--corpus", str(corpus), "--finalize"], env))
            finalize_s = time.perf_counter() - started
            rows.append(
                {
                    "shards": count,
                    "passages": passages,
                    "shards_wall_s": round(shards_s, 2),
                    "passages_per_s": round(passages / shards_s, 1),
                    "finalize_s": round(finalize_s, 2),
                    "total_s": round(shards_s + finalize_s, 2),
                    "finalize": finalized,
                    "shard_outputs": outputs,
                }
            )
    finally:
        if server is not None:
            server.stop()
    one = next((r for r in rows if r["shards"] == 1), None)
    for row in rows:
        row["speedup_vs_1"] = round(one["shards_wall_s"] / row["shards_wall_s"], 2) if one else None
    return {
        "benchmark": "shards",
        "n_sources": args.n,
        "passages": passages,
        "embedder": "default (int8 ONNX export, 1 thread per process)",
        "kind": "hnsw",
        "cpu_count": os.cpu_count(),
        "load_before": load_before,
        "load_after": round(os.getloadavg()[0], 2),
        "platform": platform.platform(),
        "results": rows,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=3000, help="sources (one passage each)")
    parser.add_argument("--shards", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--dsn", help="an existing PostgreSQL with pgvector (else one is started)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/results/shards.json")
    args = parser.parse_args(argv)
    report = run(args)
    print(
        f"\n{'shards':>6} {'passages':>8} {'wall s':>8} {'passages/s':>10} "
        f"{'speed-up':>8} {'finalize s':>10}"
    )
    for row in report["results"]:
        print(
            f"{row['shards']:>6} {row['passages']:>8} {row['shards_wall_s']:>8} "
            f"{row['passages_per_s']:>10} {row['speedup_vs_1']:>8} {row['finalize_s']:>10}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwritten to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

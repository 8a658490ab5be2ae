"""Measurements that each need a fresh process, driven by run.py.

    python benchmarks/workers.py TASK JSON_ARGS

prints one JSON object on its last line of stdout. Every task reports its own peak
resident memory (``maxrss_mb``). Not meant to be run by hand, but it can be.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))


def _maxrss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    pos = (len(ordered) - 1) * q
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def _ms(values: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(_pct(values, 0.5) * 1000, 3),
        "p95_ms": round(_pct(values, 0.95) * 1000, 3),
        "mean_ms": round(statistics.fmean(values) * 1000, 3) if values else float("nan"),
        "n": len(values),
    }


def _set_faiss_threads(threads: int | None) -> None:
    if threads:
        import faiss

        faiss.omp_set_num_threads(threads)


def task_export(args: dict[str, Any]) -> dict[str, Any]:
    """Export the packaged model to ONNX in the cache and check parity (timed)."""
    from grounded_answer.embeddings.onnx_export import onnx_dir, prepare_onnx

    cache = Path(args["cache_dir"])
    started = time.perf_counter()
    embedder = prepare_onnx(None, cache, threads=1)
    seconds = time.perf_counter() - started
    manifest = embedder.manifest
    started = time.perf_counter()
    int8 = prepare_onnx(None, cache, threads=1, variant="int8").manifest
    int8_seconds = time.perf_counter() - started
    return {
        "int8": {
            "seconds": round(int8_seconds, 3),
            "onnx_mb": round(int8.onnx_bytes / 2**20, 1),
            "agreement_min_cosine": int8.agreement_min_cosine,
        },
        "seconds": round(seconds, 3),
        "dir": str(onnx_dir(cache)),
        "onnx_mb": round(manifest.onnx_bytes / 2**20, 1),
        "parity_max_abs_diff": manifest.parity_max_abs_diff,
        "parity_texts": manifest.parity_texts,
        "model_id": embedder.model_id,
        "maxrss_mb": _maxrss_mb(),
    }


def _embedder(kind: str, cache: Path, threads: int) -> Any:
    if kind == "torch":
        from grounded_answer.embeddings import SentenceTransformerEmbedder

        return SentenceTransformerEmbedder(threads=threads)
    from grounded_answer.embeddings.onnx import find_onnx

    found = find_onnx(
        None, cache, threads=threads, variant="int8" if kind == "onnx-int8" else "exact"
    )
    if found is None:
        raise SystemExit("no verified ONNX export in the cache: run the export task first")
    return found


class Precomputed:
    """An embedder whose answers for the given questions were computed beforehand."""

    def __init__(self, inner: Any, questions: list[str]) -> None:
        self.inner = inner
        # Keyed as explain() passes the question on: whitespace collapsed.
        self.vectors = {" ".join(q.split()): inner.encode([q]) for q in questions}

    @property
    def model_id(self) -> str:
        return str(self.inner.model_id)

    @property
    def dimension(self) -> int:
        return int(self.inner.dimension)

    def encode(
        self, texts: Sequence[str], *, batch_size: int = 64, show_progress: bool = False
    ) -> Any:
        key = " ".join(texts[0].split()) if len(texts) == 1 else None
        if key in self.vectors:
            return self.vectors[key]
        return self.inner.encode(texts, batch_size=batch_size, show_progress=show_progress)


def task_warm(args: dict[str, Any]) -> dict[str, Any]:
    """Warm explain over the 200 questions, plus the query encode alone."""
    import workload

    from grounded_answer import explain, load_bundle, load_settings

    cache = Path(args["cache_dir"])
    _set_faiss_threads(args.get("faiss_threads"))
    settings = load_settings(index={"cache_dir": str(cache)})
    embedder = _embedder(args["embedder"], cache, int(args.get("threads", 1)))
    pairs = workload.questions()[: int(args.get("questions", 200))]
    bundles = {f.name: load_bundle(f) for f in workload.bundle_files()}
    started = time.perf_counter()
    for bundle in bundles.values():  # opens (or builds) every index once
        explain(bundle=bundle, settings=settings, embedder=embedder)
    warmup_s = time.perf_counter() - started
    totals: list[float] = []
    parts: dict[str, list[float]] = {}
    for name, question in pairs:
        mark = time.perf_counter()
        answer = explain(question, bundle=bundles[name], settings=settings, embedder=embedder)
        totals.append(time.perf_counter() - mark)
        for key, value in answer.provenance.timings.items():
            parts.setdefault(key, []).append(value)
    embed = parts.get("embed_query", [])
    overhead = [t - e for t, e in zip(totals, embed, strict=True)]
    alone: list[float] = []
    for _, question in pairs:
        mark = time.perf_counter()
        embedder.encode([question])
        alone.append(time.perf_counter() - mark)
    # The encoder out of the loop: every question's vector computed beforehand (a new
    # cache directory, so new retrievers use it), so what is timed is our own work with
    # the CPU caches not evicted by a model run in between.
    precomputed_embedder = Precomputed(embedder, [q for _, q in pairs])
    settings = load_settings(index={"cache_dir": str(cache / "precomputed")})
    for name, question in pairs:
        explain(question, bundle=bundles[name], settings=settings, embedder=precomputed_embedder)
    precomputed: list[float] = []
    for name, question in pairs:
        mark = time.perf_counter()
        explain(question, bundle=bundles[name], settings=settings, embedder=precomputed_embedder)
        precomputed.append(time.perf_counter() - mark)
    return {
        "overhead_precomputed": _ms(precomputed),
        "embedder": args["embedder"],
        "model_id": embedder.model_id,
        "warmup_s": round(warmup_s, 3),
        "explain": _ms(totals),
        "embed_query_in_explain": _ms(embed),
        "overhead": _ms(overhead),
        "encode_alone": _ms(alone),
        "parts_p50_ms": {k: round(_pct(v, 0.5) * 1000, 3) for k, v in parts.items()},
        "torch_imported": "torch" in sys.modules,
        "maxrss_mb": _maxrss_mb(),
    }


def task_build(args: dict[str, Any]) -> dict[str, Any]:
    """Index build throughput against raw SentenceTransformer.encode, same passages."""
    import tempfile

    import workload

    from grounded_answer.embeddings import SentenceTransformerEmbedder
    from grounded_answer.stores import FaissStore, open_faiss_store

    threads = int(args.get("threads", 1))
    reps = int(args.get("reps", 2))
    corpus = workload.build_corpus(int(args["passages"]))
    texts = [p.text for p in corpus.passages()]
    embedder = SentenceTransformerEmbedder(threads=threads)
    model = embedder.loaded()
    model.encode(texts[:64], batch_size=64)  # warm-up: first batches allocate
    onnx = None
    if args.get("cache_dir"):
        from grounded_answer.embeddings.onnx import find_onnx

        onnx = find_onnx(None, Path(args["cache_dir"]), threads=threads)
        if onnx is not None:
            onnx.encode(texts[:64])
    runs: dict[str, list[float]] = {"raw_encode": [], "build_index": [], "open_index": []}
    if onnx is not None:
        runs["onnx_encode"] = []
    for _ in range(reps):
        mark = time.perf_counter()
        model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
        runs["raw_encode"].append(time.perf_counter() - mark)
        mark = time.perf_counter()
        FaissStore(model_id=embedder.model_id, dimension=embedder.dimension).sync(
            corpus, embedder, batch_size=64
        )
        runs["build_index"].append(time.perf_counter() - mark)
        with tempfile.TemporaryDirectory() as tmp:
            mark = time.perf_counter()
            open_faiss_store(corpus, embedder, Path(tmp), batch_size=64, check_passages=True)
            runs["open_index"].append(time.perf_counter() - mark)
        if onnx is not None:
            mark = time.perf_counter()
            onnx.encode(texts, batch_size=64)
            runs["onnx_encode"].append(time.perf_counter() - mark)
    import torch

    seconds = {k: statistics.median(v) for k, v in runs.items()}
    return {
        "passages": len(texts),
        "threads": threads,
        "torch_threads": torch.get_num_threads(),
        "reps": reps,
        "seconds": {k: round(v, 3) for k, v in seconds.items()},
        "all_seconds": {k: [round(x, 3) for x in v] for k, v in runs.items()},
        "passages_per_s": {k: round(len(texts) / v, 1) for k, v in seconds.items()},
        "maxrss_mb": _maxrss_mb(),
    }


def task_import(args: dict[str, Any]) -> dict[str, Any]:
    """Time one import statement in this fresh process."""
    import importlib

    mark = time.perf_counter()
    for name in args["modules"]:
        importlib.import_module(name)
    seconds = time.perf_counter() - mark
    heavy = ["torch", "sentence_transformers", "faiss", "onnxruntime", "openai", "numpy"]
    return {
        "seconds": round(seconds, 4),
        "loaded": [m for m in heavy if m in sys.modules],
        "maxrss_mb": _maxrss_mb(),
    }


def task_threads(args: dict[str, Any]) -> dict[str, Any]:
    """Single-query encode time by thread count, torch and onnxruntime, same questions."""
    import workload

    from grounded_answer.embeddings import SentenceTransformerEmbedder
    from grounded_answer.embeddings.onnx import find_onnx
    from grounded_answer.embeddings.onnx_format import Variant

    pairs = workload.questions()[: int(args.get("questions", 100))]
    out: dict[str, Any] = {}
    model = SentenceTransformerEmbedder(threads=1).loaded()
    import torch

    for threads in (1, 2):
        torch.set_num_threads(threads)
        model.encode(["warm up"])
        times = []
        for _, question in pairs:
            mark = time.perf_counter()
            model.encode([question], normalize_embeddings=True, convert_to_numpy=True)
            times.append(time.perf_counter() - mark)
        out[f"torch_threads{threads}"] = _ms(times)
    variants: tuple[tuple[Variant, str], ...] = (("exact", "onnx"), ("int8", "onnx-int8"))
    for variant, label in variants:
        for threads in (1, 2):
            onnx = find_onnx(None, Path(args["cache_dir"]), threads=threads, variant=variant)
            if onnx is None:
                break
            onnx.encode(["warm up"])
            times = []
            for _, question in pairs:
                mark = time.perf_counter()
                onnx.encode([question])
                times.append(time.perf_counter() - mark)
            out[f"{label}_threads{threads}"] = _ms(times)
    out["load_after"] = round(os.getloadavg()[0], 2)
    out["maxrss_mb"] = _maxrss_mb()
    return out


def task_cold_onnx(args: dict[str, Any]) -> dict[str, Any]:
    """What ``grounded-answer explain --bundle`` does once the CLI uses the ONNX export."""
    started = time.perf_counter()
    from grounded_answer import explain, load_settings
    from grounded_answer.embeddings.onnx import find_onnx

    settings = load_settings(index={"cache_dir": args["cache_dir"]})
    embedder = find_onnx(None, settings.index.cache_dir, threads=1)
    answer = explain(bundle=args["bundle"], settings=settings, embedder=embedder)
    text = answer.to_markdown()
    return {
        "seconds_in_process": round(time.perf_counter() - started, 3),
        "chars": len(text),
        "index_status": answer.provenance.index_status,
        "embedder": None if embedder is None else embedder.model_id,
        "torch_imported": "torch" in sys.modules,
        "timings": answer.provenance.timings,
        "maxrss_mb": _maxrss_mb(),
    }


def task_faiss(args: dict[str, Any]) -> dict[str, Any]:
    """Flat vs HNSW at one size: build time, memory, single-query latency, recall@10."""
    import faiss
    import workload

    n, kind = int(args["n"]), str(args["kind"])
    d, k, nq = 384, 10, int(args.get("queries", 200))
    build_threads = int(args.get("build_threads", 2))
    result: dict[str, Any] = {"n": n, "kind": kind, "d": d, "queries": nq}
    base_rss = _rss_mb()
    mark = time.perf_counter()
    x = workload.vectors(kind, n, seed=0, d=d)
    q = workload.vectors(kind, nq, seed=1, d=d)
    result["generate_s"] = round(time.perf_counter() - mark, 2)
    result["vectors_mb"] = round(_rss_mb() - base_rss, 1)

    faiss.omp_set_num_threads(build_threads)
    rss = _rss_mb()
    mark = time.perf_counter()
    flat = faiss.IndexFlatIP(d)
    flat.add(x)
    flat_build = time.perf_counter() - mark
    flat_mem = _rss_mb() - rss
    default_threshold = int(faiss.cvar.distance_compute_blas_threshold)
    mark = time.perf_counter()
    truth_scores, truth = flat.search(q, k)
    gt_batch = time.perf_counter() - mark
    result["neighbour_cosine"] = {
        "top1_mean": round(float(truth_scores[:, 0].mean()), 3),
        "top10_mean": round(float(truth_scores[:, k - 1].mean()), 3),
    }
    flat_info: dict[str, Any] = {
        "build_s": round(flat_build, 3),
        "memory_mb": round(flat_mem, 1),
        f"batch_{nq}_s_threads{build_threads}": round(gt_batch, 3),
    }
    single_n = min(nq, int(args.get("flat_single_queries", 50)))
    for threads in (1, 2):
        faiss.omp_set_num_threads(threads)
        times = []
        for i in range(single_n):
            mark = time.perf_counter()
            flat.search(q[i : i + 1], k)
            times.append(time.perf_counter() - mark)
        flat_info[f"single_threads{threads}"] = _ms(times)
    # Batched search: BLAS only past distance_compute_blas_threshold.
    batch = q[:100]
    for threads in (1, 2):
        faiss.omp_set_num_threads(threads)
        for label, threshold in (("default", default_threshold), ("20d", 20 * d)):
            faiss.cvar.distance_compute_blas_threshold = threshold
            times = []
            for _ in range(3):
                mark = time.perf_counter()
                flat.search(batch, k)
                times.append(time.perf_counter() - mark)
            flat_info[f"batch100_{label}_threads{threads}_s"] = round(statistics.median(times), 4)
        faiss.cvar.distance_compute_blas_threshold = default_threshold
    result["flat"] = flat_info
    result["blas_threshold_default"] = default_threshold
    del flat

    faiss.omp_set_num_threads(build_threads)
    rss = _rss_mb()
    mark = time.perf_counter()
    hnsw = faiss.IndexHNSWFlat(d, int(args.get("M", 32)), faiss.METRIC_INNER_PRODUCT)
    hnsw.hnsw.efConstruction = int(args.get("ef_construction", 40))
    hnsw.add(x)
    hnsw_build = time.perf_counter() - mark
    hnsw_info: dict[str, Any] = {
        "M": int(args.get("M", 32)),
        "ef_construction": int(args.get("ef_construction", 40)),
        "build_s": round(hnsw_build, 2),
        "memory_mb": round(_rss_mb() - rss, 1),
        "build_threads": build_threads,
        "sweep": [],
    }
    faiss.omp_set_num_threads(1)
    chosen = None
    for ef in args.get("ef_search", [16, 32, 48, 64, 96, 128, 256, 512]):
        hnsw.hnsw.efSearch = int(ef)
        times, hits = [], 0
        for i in range(nq):
            mark = time.perf_counter()
            _, found = hnsw.search(q[i : i + 1], k)
            times.append(time.perf_counter() - mark)
            hits += len(set(found[0].tolist()) & set(truth[i].tolist()))
        row = {"ef_search": int(ef), "recall_at_10": round(hits / (nq * k), 4), **_ms(times)}
        hnsw_info["sweep"].append(row)
        if chosen is None and row["recall_at_10"] >= 0.95:
            chosen = row
    hnsw_info["first_ef_at_recall_0.95"] = chosen
    result["hnsw"] = hnsw_info
    result["maxrss_mb"] = _maxrss_mb()
    return result


def task_warm_default(args: dict[str, Any]) -> dict[str, Any]:
    """Warm explain() with default settings (no embedder passed), as a library user calls it."""
    import workload

    from grounded_answer import explain, load_bundle, load_settings

    settings = load_settings(index={"cache_dir": args["cache_dir"]})
    pairs = workload.questions()[: int(args.get("questions", 200))]
    bundles = {f.name: load_bundle(f) for f in workload.bundle_files()}
    for bundle in bundles.values():
        explain(bundle=bundle, settings=settings)
    totals: list[float] = []
    models = set()
    for name, question in pairs:
        mark = time.perf_counter()
        answer = explain(question, bundle=bundles[name], settings=settings)
        totals.append(time.perf_counter() - mark)
        models.add(answer.provenance.embedding_model)
    return {
        "explain": _ms(totals),
        "embedding_models": sorted(models),
        "torch_imported": "torch" in sys.modules,
    }


TASKS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "warm_default": task_warm_default,
    "export": task_export,
    "warm": task_warm,
    "build": task_build,
    "import": task_import,
    "cold_onnx": task_cold_onnx,
    "threads": task_threads,
    "faiss": task_faiss,
}


def main() -> None:
    task, raw = sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "{}"
    result = TASKS[task](json.loads(raw))
    sys.stdout.write("\n" + json.dumps(result) + "\n")


if __name__ == "__main__":
    main()

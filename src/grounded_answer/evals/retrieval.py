"""Retrieval evaluation on BEIR-layout datasets (nDCG@10, recall@100).

A BEIR directory holds ``corpus.jsonl`` (``_id``, ``title``, ``text``), ``queries.jsonl``
(``_id``, ``text``) and ``qrels/<split>.tsv`` (``query-id``, ``corpus-id``, ``score``).
Documents are embedded as "title text" (the BEIR convention), and the embeddings are
cached on disk keyed by the model and the exact texts, so a second run does not
re-encode thousands of abstracts.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .._files import locked, write_atomic
from ..config import Fusion, Method
from ..embeddings import Embedder
from ..errors import ConfigError, CorpusError, IndexStoreError
from ..retrieval.bm25 import BM25Index
from ..retrieval.retrieve import fuse

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = ["BeirData", "cached_embeddings", "evaluate_retrieval", "load_beir", "ndcg_at_k"]


@dataclass(frozen=True)
class BeirData:
    """A BEIR dataset: documents, the queries that have judgements, and the judgements."""

    doc_ids: list[str]
    doc_texts: list[str]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]


def load_beir(directory: str | Path, split: str = "test") -> BeirData:
    """Read a BEIR directory; errors name the file and line at fault."""
    root = Path(directory)
    if not root.is_dir():
        raise ConfigError(f"BEIR directory {root} does not exist")
    doc_ids: list[str] = []
    doc_texts: list[str] = []
    for line, record in _jsonl(root / "corpus.jsonl"):
        try:
            doc_ids.append(str(record["_id"]))
            doc_texts.append(f"{record.get('title') or ''} {record.get('text') or ''}".strip())
        except (KeyError, TypeError):
            raise CorpusError(
                "expected an object with '_id'", path=root / "corpus.jsonl", line=line
            ) from None
    all_queries: dict[str, str] = {}
    for line, record in _jsonl(root / "queries.jsonl"):
        try:
            all_queries[str(record["_id"])] = str(record["text"])
        except (KeyError, TypeError):
            raise CorpusError(
                "expected an object with '_id' and 'text'", path=root / "queries.jsonl", line=line
            ) from None
    qrels_file = root / "qrels" / f"{split}.tsv"
    if not qrels_file.is_file():
        raise ConfigError(f"no judgements for split {split!r}: {qrels_file} does not exist")
    qrels: dict[str, dict[str, int]] = {}
    with qrels_file.open(encoding="utf-8") as handle:
        for line, row in enumerate(csv.reader(handle, delimiter="\t"), start=1):
            if line == 1 and row and row[0] == "query-id":
                continue
            try:
                query_id, doc_id, score = row[0], row[1], int(row[2])
            except (IndexError, ValueError):
                raise CorpusError(
                    "expected query-id, corpus-id, integer score", path=qrels_file, line=line
                ) from None
            if score > 0:
                qrels.setdefault(query_id, {})[doc_id] = score
    queries = {qid: all_queries[qid] for qid in qrels if qid in all_queries}
    if not queries:
        raise CorpusError("no judged query has a text in queries.jsonl", path=qrels_file)
    return BeirData(doc_ids, doc_texts, queries, qrels)


def cached_embeddings(
    texts: list[str],
    embedder: Embedder,
    cache_dir: Path,
    *,
    batch_size: int = 64,
    show_progress: bool = False,
) -> NDArray[np.float32]:
    """Embeddings of ``texts``, from the cache when the same model saw the same texts.

    The cache file is written under the same file lock and rename as every other cache
    entry (:mod:`grounded_answer._files`), so two runs encode a dataset once and a reader
    never sees half a file.
    """
    digest = hashlib.sha256(embedder.model_id.encode())
    for text in texts:
        digest.update(hashlib.sha256(text.encode()).digest())
    folder = cache_dir / "embeddings"
    target = folder / f"{digest.hexdigest()[:32]}.npy"
    found = _read_vectors(target, len(texts))
    if found is not None:
        return found
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with locked(target):
            found = _read_vectors(target, len(texts))  # another run may have written it
            if found is not None:
                return found
            vectors = embedder.encode(texts, batch_size=batch_size, show_progress=show_progress)
            buffer = io.BytesIO()
            np.save(buffer, vectors, allow_pickle=False)
            write_atomic(target, buffer.getvalue())
    except OSError as exc:
        raise IndexStoreError(f"cannot write embedding cache {target}: {exc}") from exc
    return vectors


def _read_vectors(target: Path, rows: int) -> NDArray[np.float32] | None:
    """The cached vectors in ``target``, or None when missing, truncated or corrupt."""
    if not target.is_file():
        return None
    try:
        vectors = np.load(target, allow_pickle=False)
    except (OSError, ValueError):
        return None
    if vectors.shape[0] == rows and vectors.dtype == np.float32:
        return np.asarray(vectors)
    return None


def evaluate_retrieval(
    data: BeirData,
    embedder: Embedder | None,
    cache_dir: Path,
    *,
    method: Method = "hybrid",
    fusion: Fusion = "weighted",
    alpha: float = 0.5,
    stemmer: str | None = "english",
    batch_size: int = 64,
    show_progress: bool = False,
) -> dict[str, Any]:
    """nDCG@10 and recall@100 of ``method`` over every judged query."""
    import faiss

    query_ids = list(data.queries)
    query_texts = [data.queries[q] for q in query_ids]
    depth, pool = 100, 200
    started = time.perf_counter()
    dense_runs: list[list[tuple[int, float]]] = [[] for _ in query_ids]
    sparse_runs: list[list[tuple[int, float]]] = [[] for _ in query_ids]
    if method in ("dense", "hybrid"):
        if embedder is None:
            raise ConfigError(f"method {method!r} needs an embedder")
        docs = cached_embeddings(
            data.doc_texts, embedder, cache_dir, batch_size=batch_size, show_progress=show_progress
        )
        queries = embedder.encode(query_texts, batch_size=batch_size)
        index = faiss.IndexFlatIP(docs.shape[1])
        index.add(docs)
        scores, ids = index.search(queries, pool)
        dense_runs = [
            [(int(i), float(s)) for i, s in zip(row_i, row_s, strict=True) if i >= 0]
            for row_i, row_s in zip(ids, scores, strict=True)
        ]
    if method in ("bm25", "hybrid"):
        sparse_runs = BM25Index(data.doc_texts, stemmer=stemmer).search_many(query_texts, pool)
    ndcgs, recalls = [], []
    for n, query_id in enumerate(query_ids):
        if method == "dense":
            ranked = dense_runs[n]
        elif method == "bm25":
            ranked = sparse_runs[n]
        else:
            ranked = fuse(dense_runs[n], sparse_runs[n], method=fusion, alpha=alpha)
        retrieved = [data.doc_ids[i] for i, _ in ranked[:depth]]
        relevant = data.qrels[query_id]
        ndcgs.append(ndcg_at_k(retrieved, relevant, 10))
        recalls.append(len(set(retrieved) & set(relevant)) / len(relevant))
    return {
        "method": method if method != "hybrid" else f"hybrid-{fusion}",
        "ndcg@10": round(sum(ndcgs) / len(ndcgs), 4),
        "recall@100": round(sum(recalls) / len(recalls), 4),
        "queries": len(query_ids),
        "seconds": round(time.perf_counter() - started, 2),
    }


def ndcg_at_k(retrieved: list[str], relevant: dict[str, int], k: int) -> float:
    """nDCG@k with graded relevance and linear gains (as trec_eval and BEIR compute it)."""
    gains = [relevant.get(doc, 0) for doc in retrieved[:k]]
    dcg = sum(g / math.log2(rank + 2) for rank, g in enumerate(gains))
    ideal = sorted(relevant.values(), reverse=True)[:k]
    idcg = sum(g / math.log2(rank + 2) for rank, g in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def _jsonl(path: Path) -> Any:
    if not path.is_file():
        raise ConfigError(f"{path} does not exist")
    with path.open(encoding="utf-8") as handle:
        for line, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                yield line, json.loads(raw)
            except json.JSONDecodeError as exc:
                raise CorpusError(f"invalid JSON ({exc.msg})", path=path, line=line) from None

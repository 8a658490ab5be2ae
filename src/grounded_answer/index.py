"""A FAISS index of a corpus's passages, persisted with a manifest that says what it is.

A cached index is only used when its manifest matches the corpus fingerprint, the
embedding model and dimension, and the format version, and when the files still have
the checksums recorded at build time. Anything else (a changed summary, another model, a
truncated or corrupted file, a half-written directory) means a rebuild, never a silently
stale or wrong result. Builds are written to a temporary directory and renamed into
place under a file lock, so concurrent processes never see a half-built index.
"""

from __future__ import annotations

import hashlib
import logging
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from filelock import FileLock, Timeout
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from ._files import replaced_dir, sha256
from .corpus import Corpus, Passage
from .embeddings import Embedder
from .errors import ConfigError, IndexStoreError

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = [
    "FORMAT_VERSION",
    "IndexManifest",
    "VectorIndex",
    "build_index",
    "configure_faiss",
    "open_index",
]

FORMAT_VERSION = 1
_log = logging.getLogger(__name__)
_PASSAGES = TypeAdapter(list[Passage])
_LOCK_TIMEOUT_S = 600.0


def configure_faiss(threads: int, dimension: int) -> None:
    """Set FAISS's process-wide OpenMP threads and its BLAS cut-over for ``dimension``.

    Both are globals inside faiss, shared with anything else in the process that uses it,
    and torch may have set OpenMP differently depending on import order, so they are set
    explicitly before every use. ``threads`` 0 leaves faiss's own default. faiss uses BLAS
    for a batch of queries only past ``distance_compute_blas_threshold`` (128000 in faiss
    1.15); ``20 * dimension`` made a 100-query batch over 100k vectors 9x faster on one
    thread and leaves single queries as they were (benchmarks/run.py, section faiss).
    """
    import faiss

    if threads > 0:
        faiss.omp_set_num_threads(threads)
    faiss.cvar.distance_compute_blas_threshold = 20 * dimension


class IndexManifest(BaseModel):
    """What an index on disk was built from; compared before every reuse."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format_version: int
    model_id: str
    dimension: int
    corpus_name: str
    fingerprint: str
    passages_digest: str = ""
    passages: int
    index_sha256: str
    passages_sha256: str
    build_seconds: float


@dataclass
class VectorIndex:
    """Passages and their vectors in a FAISS inner-product index (cosine on unit vectors)."""

    passages: list[Passage]
    faiss_index: Any
    manifest: IndexManifest
    status: str = "built"

    def search(self, vectors: NDArray[np.float32], k: int) -> list[list[tuple[int, float]]]:
        """Top-``k`` passage positions and cosine scores for each query row."""
        import numpy as np

        k = min(k, len(self.passages))
        scores, ids = self.faiss_index.search(np.ascontiguousarray(vectors, dtype=np.float32), k)
        return [
            [(int(i), float(s)) for i, s in zip(id_row, score_row, strict=True) if i >= 0]
            for id_row, score_row in zip(ids, scores, strict=True)
        ]


def build_index(
    corpus: Corpus, embedder: Embedder, *, batch_size: int = 64, show_progress: bool = False
) -> VectorIndex:
    """Embed every passage of ``corpus`` and index it in memory (nothing is written)."""
    import faiss

    started = time.perf_counter()
    passages = corpus.passages()
    vectors = embedder.encode(
        [p.text for p in passages], batch_size=batch_size, show_progress=show_progress
    )
    if vectors.shape[0] != len(passages) or vectors.ndim != 2:
        raise IndexStoreError(
            f"embedder {embedder.model_id!r} returned {vectors.shape} for {len(passages)} texts"
        )
    index = faiss.IndexFlatIP(int(vectors.shape[1]))
    index.add(vectors)
    manifest = IndexManifest(
        format_version=FORMAT_VERSION,
        model_id=embedder.model_id,
        dimension=int(vectors.shape[1]),
        corpus_name=corpus.name,
        fingerprint=corpus.fingerprint,
        passages_digest=_passages_digest(passages),
        passages=len(passages),
        index_sha256="",
        passages_sha256="",
        build_seconds=round(time.perf_counter() - started, 4),
    )
    return VectorIndex(passages=passages, faiss_index=index, manifest=manifest)


def open_index(
    corpus: Corpus,
    embedder: Embedder,
    cache_dir: Path,
    *,
    batch_size: int = 64,
    show_progress: bool = False,
) -> VectorIndex:
    """The cached index of ``corpus`` if it is valid, else a fresh one, persisted.

    ``VectorIndex.status`` tells what happened: ``loaded``, ``built`` (nothing cached)
    or ``rebuilt: <reason>``.
    """
    root = _ensure_dir(cache_dir / "indexes")
    target = root / _slot_name(corpus, embedder)
    loaded, reason = _try_load(target, corpus, embedder)
    if loaded is not None:
        return loaded
    lock = FileLock(str(target) + ".lock", timeout=_LOCK_TIMEOUT_S)
    try:
        with lock:
            # Another process may have built it while this one waited for the lock.
            loaded, reason = _try_load(target, corpus, embedder)
            if loaded is not None:
                return loaded
            if reason != "no cached index":
                _log.warning("rebuilding index %s: %s", target.name, reason)
            index = build_index(
                corpus, embedder, batch_size=batch_size, show_progress=show_progress
            )
            index.manifest = _persist(index, target)
            index.status = "built" if reason == "no cached index" else f"rebuilt: {reason}"
            return index
    except Timeout:
        raise IndexStoreError(f"timed out waiting for the lock on {target}") from None
    except OSError as exc:
        raise IndexStoreError(f"cannot write index {target}: {exc}") from exc


def _ensure_dir(path: Path) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".probe-"):
            pass
    except OSError as exc:
        raise ConfigError(
            f"index cache directory {path} is not writable ({exc.strerror or exc}); "
            "set GROUNDED_ANSWER_INDEX__CACHE_DIR to a writable directory"
        ) from None
    return path


def _slot_name(corpus: Corpus, embedder: Embedder) -> str:
    # One slot per corpus name and model: a changed corpus is rebuilt in place instead
    # of leaving a new directory behind on every edit.
    slug = re.sub(r"[^a-z0-9]+", "-", corpus.name.lower()).strip("-")[:40] or "corpus"
    digest = hashlib.sha256(f"{corpus.name}\0{embedder.model_id}".encode()).hexdigest()[:12]
    return f"{slug}-{digest}"


def _passages_digest(passages: list[Passage]) -> str:
    digest = hashlib.sha256()
    for passage in passages:
        digest.update(f"{passage.id}\0{passage.text}\0".encode())
    return digest.hexdigest()


def _try_load(
    target: Path, corpus: Corpus, embedder: Embedder
) -> tuple[VectorIndex | None, str]:
    import faiss

    manifest_file = target / "manifest.json"
    if not manifest_file.exists():
        return None, "no cached index"
    try:
        manifest = IndexManifest.model_validate_json(manifest_file.read_bytes())
    except (ValidationError, OSError) as exc:
        return None, f"unreadable manifest ({type(exc).__name__})"
    expected = {
        "format_version": FORMAT_VERSION,
        "model_id": embedder.model_id,
        "fingerprint": corpus.fingerprint,
        # The same sources cut into passages differently (a new library version) is a
        # different index too.
        "passages_digest": _passages_digest(corpus.passages()),
    }
    for key, value in expected.items():
        if getattr(manifest, key) != value:
            return None, f"{key} changed"
    index_file, passages_file = target / "index.faiss", target / "passages.json"
    try:
        if sha256(index_file) != manifest.index_sha256:
            return None, "index file checksum mismatch"
        if sha256(passages_file) != manifest.passages_sha256:
            return None, "passages file checksum mismatch"
        passages = _PASSAGES.validate_json(passages_file.read_bytes())
        faiss_index = faiss.read_index(str(index_file))
    except (OSError, ValidationError, RuntimeError) as exc:
        return None, f"unreadable index files ({type(exc).__name__})"
    if faiss_index.ntotal != manifest.passages or len(passages) != manifest.passages:
        return None, "passage count mismatch"
    if faiss_index.d != manifest.dimension:
        return None, "dimension mismatch"
    return VectorIndex(passages, faiss_index, manifest, status="loaded"), ""


def _persist(index: VectorIndex, target: Path) -> IndexManifest:
    import faiss

    with replaced_dir(target) as staging:
        index_file, passages_file = staging / "index.faiss", staging / "passages.json"
        faiss.write_index(index.faiss_index, str(index_file))
        passages_file.write_bytes(_PASSAGES.dump_json(index.passages))
        manifest = index.manifest.model_copy(
            update={
                "index_sha256": sha256(index_file),
                "passages_sha256": sha256(passages_file),
            }
        )
        (staging / "manifest.json").write_text(manifest.model_dump_json(indent=2))
    return manifest


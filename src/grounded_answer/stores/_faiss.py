"""The embedded store: a FAISS ``IndexIDMap2`` over a flat or HNSW index, kept in the cache dir.

This is the library's one FAISS path: a large corpus gets a store of the configured kind,
and a bundle (a corpus scored whole) a small flat one, persisted the same way.

Every passage vector carries a stable 64-bit label, so a sync removes and adds labels
instead of rebuilding. A flat index deletes for real. FAISS HNSW graphs cannot delete,
so removed labels become tombstones that searches skip (an ``IDSelector``), and the
graph is rebuilt from its own stored vectors (nothing is re-embedded) once tombstones
pass a fifth of it. Switching ``kind`` or the HNSW build settings reuses the stored
vectors the same way.

On disk a store is ``index.faiss``, ``state.json`` (labels, passages, per-source hashes,
tombstones) and ``manifest.json`` with both files' checksums, written to a staging
directory and renamed into place under a file lock (:mod:`grounded_answer._files`).
A store whose files do not match their manifest is rebuilt, never used.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError

from .._files import locked, replaced_dir, sha256, writable_dir
from ..embeddings import BuildEmbedder, BuildRecord, Embedder
from ..errors import IndexStoreError
from ..sources.corpus import Corpus, Passage
from ._base import (
    FORMAT_VERSION,
    HnswParams,
    Kind,
    StoreManifest,
    SyncState,
    embed_passages,
    plan_sync,
    store_slug,
)

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = ["FaissStore", "configure_faiss", "open_faiss_store"]

#: Share of an HNSW graph that may be tombstones before it is rebuilt from its vectors.
COMPACT_RATIO = 0.2


def configure_faiss(threads: int, dimension: int) -> None:
    """Set FAISS's process-wide OpenMP threads and its BLAS cut-over for ``dimension``.

    Both are globals inside faiss, shared with anything else in the process that uses it,
    and torch may have set OpenMP differently depending on import order, so they are set
    explicitly before every use. ``threads`` 0 leaves faiss's own default. faiss uses BLAS
    for a batch of queries only past ``distance_compute_blas_threshold``; ``20 *
    dimension`` makes large query batches much faster and leaves single queries as they
    were (benchmarks/run.py, section faiss, measures it).
    """
    faiss = _faiss()
    if threads > 0:
        faiss.omp_set_num_threads(threads)
    faiss.cvar.distance_compute_blas_threshold = 20 * dimension


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    label: int
    id: str
    source_id: str
    text: str


class _State(BaseModel):
    """Everything but the vectors: written as ``state.json``."""

    model_config = ConfigDict(extra="forbid")

    sources: dict[str, str]
    passages: list[_Entry]
    dead: list[int]
    next_label: int


class _DiskManifest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    format_version: int
    kind: Kind
    hnsw_m: int
    hnsw_ef_construction: int
    model_id: str
    dimension: int
    corpus_name: str
    fingerprint: str
    passages: int
    sources: int
    ntotal: int
    index_sha256: str
    state_sha256: str
    sync_seconds: float
    build: BuildRecord | None = None


@dataclass(frozen=True)
class _Snapshot:
    """One consistent version of the store; searches read it without locks."""

    index: Any
    kind: Kind
    passages: list[Passage]
    labels: list[int]  # parallel to passages
    hashes: dict[str, str]
    dead: frozenset[int]
    next_label: int
    fingerprint: str
    corpus_name: str
    label_pos: NDArray[np.int64] = field(repr=False)
    selector: Any = field(default=None, repr=False)  # keeps the FAISS selectors alive


class FaissStore:
    """A corpus's passage vectors in an embedded FAISS index, updated source by source.

    Use :func:`open_faiss_store` to get one synced with a corpus and persisted; a store
    made directly lives in memory unless ``path`` is given.
    """

    def __init__(
        self,
        *,
        model_id: str,
        dimension: int,
        kind: Kind = "flat",
        hnsw: HnswParams | None = None,
        path: Path | None = None,
    ) -> None:
        self.model_id = model_id
        self.dimension = dimension
        self.kind: Kind = kind
        self.hnsw = hnsw or HnswParams()
        self.path = path
        self._status = "empty"
        self._sync_seconds = 0.0
        #: Where the latest embedded vectors were made (see BuildRecord).
        self.build: BuildRecord | None = None
        self._write_lock = threading.Lock()
        self._snap = _make_snapshot(self._new_index(), kind, [], [], {}, frozenset(), 0, "", "")

    # -- the VectorStore surface -------------------------------------------------------

    @property
    def passages(self) -> list[Passage]:
        """The live passages in corpus order."""
        return self._snap.passages

    @property
    def status(self) -> str:
        """What the last open or sync did."""
        return self._status

    @status.setter
    def status(self, value: str) -> None:
        self._status = value

    @property
    def manifest(self) -> StoreManifest:
        """What the store holds now."""
        snap = self._snap
        return StoreManifest(
            format_version=FORMAT_VERSION,
            store="faiss",
            kind=self.kind,
            model_id=self.model_id,
            dimension=self.dimension,
            corpus_name=snap.corpus_name,
            fingerprint=snap.fingerprint,
            passages=len(snap.passages),
            sources=len(snap.hashes),
            build=self.build,
        )

    def vectors(self) -> NDArray[np.float32]:
        """The stored vector of every live passage, one row per :attr:`passages` entry.

        Read back from the index, so nothing is embedded again (the evidence plan compares
        a bundle's sources with each other this way).
        """
        snap = self._snap
        if not snap.labels:
            return np.zeros((0, self.dimension), dtype=np.float32)
        keys = np.asarray(snap.labels, dtype=np.int64)
        return np.ascontiguousarray(snap.index.reconstruct_batch(keys), dtype=np.float32)

    @property
    def tombstones(self) -> int:
        """Removed vectors still in the HNSW graph (always 0 for flat)."""
        return len(self._snap.dead)

    def search(self, vectors: NDArray[np.float32], k: int) -> list[list[tuple[int, float]]]:
        """Top-``k`` passage positions and cosine scores for each query row."""
        faiss = _faiss()
        snap = self._snap
        queries = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, snap.index.d)
        k = min(k, len(snap.passages))
        if k <= 0:
            return [[] for _ in range(queries.shape[0])]
        params = None
        if snap.kind == "hnsw":
            params = faiss.SearchParametersHNSW(efSearch=max(self.hnsw.ef_search, k))
            if snap.selector is not None:
                params.sel = snap.selector[0]
        scores, labels = snap.index.search(queries, k, params=params)
        rows: list[list[tuple[int, float]]] = []
        for label_row, score_row in zip(labels, scores, strict=True):
            valid = label_row >= 0
            positions = snap.label_pos[label_row[valid]]
            rows.append(
                [
                    (int(p), float(s))
                    for p, s in zip(positions, score_row[valid], strict=True)
                    if p >= 0
                ]
            )
        return rows

    def sync(
        self,
        corpus: Corpus,
        embedder: Embedder,
        *,
        batch_size: int = 64,
        show_progress: bool = False,
    ) -> str:
        """Bring the store in line with ``corpus``, embedding only new or changed sources.

        With a ``path``, the result is persisted (under the store's file lock) before this
        returns. Searches running meanwhile see the old version until the new one is ready.
        """
        if self.path is None:
            with self._write_lock:
                return self._sync(corpus, embedder, batch_size, show_progress)[1]
        try:
            with self._write_lock, locked(self.path):
                state, status = self._sync(corpus, embedder, batch_size, show_progress)
                if state != "unchanged":
                    self.save(self.path)
                return status
        except OSError as exc:
            raise IndexStoreError(f"cannot write store {self.path}: {exc}") from exc

    def close(self) -> None:
        """Nothing to release: the index lives in memory."""

    # -- sync --------------------------------------------------------------------------

    def _sync(
        self, corpus: Corpus, embedder: Embedder, batch_size: int, show_progress: bool
    ) -> tuple[SyncState, str]:
        """What this sync did, as a state for code and as the ``status`` text for people."""
        faiss = _faiss()
        snap = self._snap
        reason = ""
        if snap.hashes and embedder.model_id != self.model_id:
            reason = "model_id changed"
        plan = plan_sync({} if reason else snap.hashes, corpus)
        if snap.hashes and plan.to_embed and embedder.dimension != self.dimension:
            reason = reason or "dimension changed"
            plan = plan_sync({}, corpus)
        if not reason and plan.empty and snap.fingerprint == corpus.fingerprint:
            self._status = "unchanged"
            return "unchanged", self._status
        started = time.perf_counter()
        fresh = not snap.hashes or bool(reason)
        if fresh:  # an empty store takes the embedder's model, whatever it was made with
            self.model_id, self.dimension = embedder.model_id, embedder.dimension
        vectors = embed_passages(
            embedder,
            plan.to_embed,
            self.dimension,
            batch_size=batch_size,
            show_progress=show_progress,
        )
        if plan.to_embed and isinstance(embedder, BuildEmbedder):
            self.build = embedder.record
        index = self._new_index() if fresh else faiss.clone_index(snap.index)
        kept: dict[str, int] = {}
        stale: list[int] = []
        if not fresh:
            stale_sources = set(plan.stale)
            for passage, label in zip(snap.passages, snap.labels, strict=True):
                if passage.source_id in stale_sources:
                    stale.append(label)
                else:
                    kept[passage.id] = label
        dead = set() if fresh else set(snap.dead)
        if stale:
            if self.kind == "flat":
                index.remove_ids(np.asarray(stale, dtype=np.int64))
            else:
                dead.update(stale)
        next_label = 0 if fresh else snap.next_label
        new_labels = np.arange(next_label, next_label + len(plan.to_embed), dtype=np.int64)
        if len(new_labels):
            index.add_with_ids(vectors, new_labels)
        next_label += len(new_labels)
        kept.update(zip((p.id for p in plan.to_embed), (int(x) for x in new_labels), strict=True))
        labels = [kept[p.id] for p in plan.passages]
        if dead and len(dead) > COMPACT_RATIO * index.ntotal:
            index = self._rebuilt(index, labels)
            dead = set()
        self._snap = _make_snapshot(
            index,
            self.kind,
            plan.passages,
            labels,
            plan.hashes,
            frozenset(dead),
            next_label,
            corpus.fingerprint,
            corpus.name,
        )
        state: SyncState
        if reason:
            state, self._status = "rebuilt", f"rebuilt: {reason}"
        elif fresh:
            state, self._status = "built", "built"
        else:
            state, self._status = "updated", plan.describe()
        self._sync_seconds = round(time.perf_counter() - started, 4)
        return state, self._status

    def convert(self, kind: Kind, hnsw: HnswParams | None = None) -> None:
        """Switch to another index kind or HNSW build settings, reusing the stored vectors."""
        hnsw = hnsw or self.hnsw
        with self._write_lock:
            snap = self._snap
            same_graph = (hnsw.m, hnsw.ef_construction) == (self.hnsw.m, self.hnsw.ef_construction)
            self.hnsw = hnsw
            if kind == self.kind and (kind == "flat" or same_graph):
                return
            self.kind = kind
            index = self._rebuilt(snap.index, snap.labels)
            self._snap = _make_snapshot(
                index,
                kind,
                snap.passages,
                snap.labels,
                snap.hashes,
                frozenset(),
                snap.next_label,
                snap.fingerprint,
                snap.corpus_name,
            )

    def _new_index(self) -> Any:
        faiss = _faiss()
        if self.kind == "flat":
            inner = faiss.IndexFlatIP(self.dimension)
        else:
            inner = faiss.IndexHNSWFlat(self.dimension, self.hnsw.m, faiss.METRIC_INNER_PRODUCT)
            inner.hnsw.efConstruction = self.hnsw.ef_construction
        return faiss.IndexIDMap2(inner)

    def _rebuilt(self, index: Any, labels: Sequence[int]) -> Any:
        """A new index of ``self.kind`` holding ``labels``' vectors taken from ``index``."""
        fresh = self._new_index()
        if labels:
            keys = np.asarray(labels, dtype=np.int64)
            fresh.add_with_ids(np.ascontiguousarray(index.reconstruct_batch(keys)), keys)
        return fresh

    # -- persistence -------------------------------------------------------------------

    def save(self, target: Path) -> None:
        """Write the store to ``target`` atomically (staging directory, then rename)."""
        faiss = _faiss()
        snap = self._snap
        with replaced_dir(target) as staging:
            index_file, state_file = staging / "index.faiss", staging / "state.json"
            faiss.write_index(snap.index, str(index_file))
            state = _State(
                sources=snap.hashes,
                passages=[
                    _Entry(label=label, id=p.id, source_id=p.source_id, text=p.text)
                    for p, label in zip(snap.passages, snap.labels, strict=True)
                ],
                dead=sorted(snap.dead),
                next_label=snap.next_label,
            )
            state_file.write_text(state.model_dump_json())
            manifest = _DiskManifest(
                format_version=FORMAT_VERSION,
                kind=self.kind,
                hnsw_m=self.hnsw.m,
                hnsw_ef_construction=self.hnsw.ef_construction,
                model_id=self.model_id,
                dimension=self.dimension,
                corpus_name=snap.corpus_name,
                fingerprint=snap.fingerprint,
                passages=len(snap.passages),
                sources=len(snap.hashes),
                ntotal=int(snap.index.ntotal),
                index_sha256=sha256(index_file),
                state_sha256=sha256(state_file),
                sync_seconds=self._sync_seconds,
                build=self.build,
            )
            (staging / "manifest.json").write_text(manifest.model_dump_json(indent=2))

    @classmethod
    def load(
        cls, target: Path, *, ef_search: int | None = None
    ) -> tuple[FaissStore | None, str | None]:
        """The store saved in ``target``, or why there is none to use.

        Returns ``(store, None)`` when it loaded, ``(None, None)`` when nothing is stored
        there yet, and ``(None, reason)`` when what is stored cannot be used.
        """
        faiss = _faiss()
        manifest_file = target / "manifest.json"
        if not manifest_file.exists():
            return None, None
        try:
            manifest = _DiskManifest.model_validate_json(manifest_file.read_bytes())
        except (ValidationError, OSError) as exc:
            return None, f"unreadable manifest ({type(exc).__name__})"
        if manifest.format_version != FORMAT_VERSION:
            return None, "format_version changed"
        index_file, state_file = target / "index.faiss", target / "state.json"
        try:
            if sha256(index_file) != manifest.index_sha256:
                return None, "index file checksum mismatch"
            if sha256(state_file) != manifest.state_sha256:
                return None, "state file checksum mismatch"
            state = _State.model_validate_json(state_file.read_bytes())
            index = faiss.read_index(str(index_file))
        except (OSError, ValidationError, RuntimeError) as exc:
            return None, f"unreadable store files ({type(exc).__name__})"
        if index.d != manifest.dimension or index.ntotal != manifest.ntotal:
            return None, "index does not match its manifest"
        if len(state.passages) + len(state.dead) != index.ntotal:
            return None, "passage count mismatch"
        hnsw = HnswParams(
            m=manifest.hnsw_m,
            ef_construction=manifest.hnsw_ef_construction,
            **({} if ef_search is None else {"ef_search": ef_search}),
        )
        store = cls(
            model_id=manifest.model_id,
            dimension=manifest.dimension,
            kind=manifest.kind,
            hnsw=hnsw,
            path=target,
        )
        store.build = manifest.build
        passages = [Passage(id=e.id, source_id=e.source_id, text=e.text) for e in state.passages]
        store._snap = _make_snapshot(
            index,
            manifest.kind,
            passages,
            [e.label for e in state.passages],
            state.sources,
            frozenset(state.dead),
            state.next_label,
            manifest.fingerprint,
            manifest.corpus_name,
        )
        store._status = "loaded"
        return store, None


def _make_snapshot(
    index: Any,
    kind: Kind,
    passages: list[Passage],
    labels: list[int],
    hashes: dict[str, str],
    dead: frozenset[int],
    next_label: int,
    fingerprint: str,
    corpus_name: str,
) -> _Snapshot:
    faiss = _faiss()
    label_pos = np.full(max(next_label, 1), -1, dtype=np.int64)
    if labels:
        label_pos[np.asarray(labels, dtype=np.int64)] = np.arange(len(labels), dtype=np.int64)
    selector = None
    if dead:
        batch = faiss.IDSelectorBatch(np.asarray(sorted(dead), dtype=np.int64))
        selector = (faiss.IDSelectorNot(batch), batch)
    return _Snapshot(
        index=index,
        kind=kind,
        passages=passages,
        labels=labels,
        hashes=hashes,
        dead=dead,
        next_label=next_label,
        fingerprint=fingerprint,
        corpus_name=corpus_name,
        label_pos=label_pos,
        selector=selector,
    )


def _faiss() -> Any:
    # Imported on first use, and typed loosely: faiss's bundled stubs miss much of its API.
    import faiss

    return faiss


def open_faiss_store(
    corpus: Corpus,
    embedder: Embedder,
    cache_dir: Path,
    *,
    kind: Kind = "flat",
    hnsw: HnswParams | None = None,
    batch_size: int = 64,
    show_progress: bool = False,
    check_passages: bool = False,
) -> FaissStore:
    """The persisted FAISS store of ``corpus`` for ``embedder``, synced and saved.

    ``status`` says what happened: ``loaded`` (nothing changed), ``built`` (nothing
    cached), ``updated: ...`` (only changed sources embedded) or ``rebuilt: <reason>``.

    A stored corpus with the same fingerprint is reused as it is, unless
    ``check_passages``: then every source is cut into passages again and compared with
    what is stored, so a new way of cutting (another library version) is caught too. That
    costs tens of microseconds a source: right for a bundle, opened on every answer, and
    left to the fingerprint for a large corpus.
    """
    hnsw = hnsw or HnswParams()
    root = writable_dir(cache_dir / "stores")
    target = root / f"faiss-{store_slug(corpus.name, embedder.model_id)}"
    store, reason = FaissStore.load(target, ef_search=hnsw.ef_search)
    if (
        store is not None
        and store.model_id == embedder.model_id
        and store.manifest.fingerprint == corpus.fingerprint
        and store.kind == kind
        and (kind == "flat" or store.hnsw == hnsw)
        and not (check_passages and not plan_sync(store._snap.hashes, corpus).empty)
    ):
        return store
    try:
        with locked(target):
            # Another process may have synced it while this one waited for the lock.
            store, reason = FaissStore.load(target, ef_search=hnsw.ef_search)
            notes = []
            if store is None:
                store = FaissStore(
                    model_id=embedder.model_id, dimension=embedder.dimension, kind=kind, hnsw=hnsw
                )
                if reason is not None:
                    notes.append(f"rebuilt: {reason}")
            elif store.kind != kind or (kind == "hnsw" and store.hnsw != hnsw):
                store.convert(kind, hnsw)
                notes.append("rebuilt: index settings changed (vectors reused)")
            state, status = store._sync(corpus, embedder, batch_size, show_progress)
            store.path = target
            if state != "unchanged" or notes:
                store.save(target)
            if state == "updated" or not notes:
                notes.append("loaded" if state == "unchanged" else status)
            store.status = "; ".join(notes)
            return store
    except OSError as exc:
        raise IndexStoreError(f"cannot write store {target}: {exc}") from exc

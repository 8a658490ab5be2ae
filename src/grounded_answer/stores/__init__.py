"""Vector stores behind one interface: embedded FAISS (the default) or PostgreSQL + pgvector.

This package is the library's only vector persistence: a bundle gets a small flat FAISS
store (:func:`open_faiss_store`), a larger corpus the store its settings name
(:func:`open_store`).

Both keep a hash of each source's passages, so a changed corpus costs only the embedding
of its added and changed sources. Both search flat (exact) or HNSW (approximate); the
store, the kind and the HNSW parameters come from :class:`~grounded_answer.config.IndexSettings`::

    store = open_store(corpus, embedder, settings.index)
    store.search(embedder.encode(["question"]), k=8)  # [[(position, cosine), ...]]
    store.passages[position]                          # the passage a hit points to

A pgvector store can also be built by many processes at once, each embedding the
sources that hash to its shard (:func:`build_shard`, ``grounded-answer index --shard
K/N``), then checked and indexed once (:func:`finalize_shards`, ``--finalize``).

psycopg and pgvector are imported only when a pgvector store is opened.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..embeddings import Embedder
from ..errors import ConfigError
from ..sources.corpus import Corpus
from ._base import (
    HnswParams,
    Shard,
    StoreManifest,
    VectorStore,
    passages_hash,
    plan_sync,
    shard_of,
)
from ._faiss import FaissStore, configure_faiss, open_faiss_store
from ._pgvector import PgVectorStore, open_pgvector_store

if TYPE_CHECKING:
    from ..config import IndexSettings

__all__ = [
    "FaissStore",
    "HnswParams",
    "PgVectorStore",
    "Shard",
    "StoreManifest",
    "VectorStore",
    "build_shard",
    "configure_faiss",
    "finalize_shards",
    "hnsw_params",
    "open_faiss_store",
    "open_pgvector_store",
    "open_store",
    "passages_hash",
    "plan_sync",
    "shard_of",
]


def hnsw_params(settings: IndexSettings) -> HnswParams:
    """The HNSW parameters named by ``settings``."""
    return HnswParams(
        m=settings.hnsw_m,
        ef_construction=settings.hnsw_ef_construction,
        ef_search=settings.hnsw_ef_search,
    )


def _pgvector(settings: IndexSettings, action: str) -> PgVectorStore:
    if settings.store != "pgvector" or settings.dsn is None:
        raise ConfigError(
            f"{action} writes into the shared PostgreSQL store: set index.store to 'pgvector' "
            "and index.dsn (GROUNDED_ANSWER_INDEX__STORE=pgvector, "
            "GROUNDED_ANSWER_INDEX__DSN=postgresql://user:password@host:5432/dbname)"
        )
    return PgVectorStore(
        settings.dsn.get_secret_value(), kind=settings.kind, hnsw=hnsw_params(settings)
    )


def build_shard(
    corpus: Corpus,
    embedder: Embedder,
    settings: IndexSettings,
    shard: Shard,
    *,
    batch_size: int = 64,
    show_progress: bool = False,
) -> str:
    """Embed shard ``shard`` of ``corpus`` into the pgvector store; returns what it did.

    Run every shard (in any order, on any machines, at the same time or not), then
    :func:`finalize_shards` once.
    """
    with _pgvector(settings, f"--shard {shard}") as store:
        return store.sync_shard(
            corpus, embedder, shard, batch_size=batch_size, show_progress=show_progress
        )


def finalize_shards(corpus: Corpus, embedder: Embedder, settings: IndexSettings) -> str:
    """Check the sharded build of ``corpus`` is complete and build its index once."""
    with _pgvector(settings, "--finalize") as store:
        return store.finalize(corpus, embedder)


def open_store(
    corpus: Corpus,
    embedder: Embedder,
    settings: IndexSettings,
    *,
    batch_size: int = 64,
    show_progress: bool = False,
) -> FaissStore | PgVectorStore:
    """The store ``settings`` name, synced with ``corpus`` (only changes are embedded)."""
    hnsw = hnsw_params(settings)
    if settings.store == "pgvector":
        if settings.dsn is None:
            raise ConfigError(
                "index.store is 'pgvector' but index.dsn is not set; set "
                "GROUNDED_ANSWER_INDEX__DSN=postgresql://user:password@host:5432/dbname"
            )
        return open_pgvector_store(
            corpus,
            embedder,
            settings.dsn.get_secret_value(),
            kind=settings.kind,
            hnsw=hnsw,
            batch_size=batch_size,
            show_progress=show_progress,
        )
    return open_faiss_store(
        corpus,
        embedder,
        settings.cache_dir,
        kind=settings.kind,
        hnsw=hnsw,
        batch_size=batch_size,
        show_progress=show_progress,
    )

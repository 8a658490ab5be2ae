"""What every vector store shares: the protocol, its manifest, and the per-source sync plan.

A store holds one corpus's passages and their vectors for one embedding model. Syncing
it to a new version of the corpus compares a hash of each source's passages with the
hash stored for that source: only added or changed sources are embedded, removed and
changed ones lose their old rows, and everything else stays as it is.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

import numpy as np
from pydantic import BaseModel, ConfigDict

from ..config import IndexKind as Kind
from ..embeddings import BuildEmbedder, BuildRecord, Embedder
from ..errors import ConfigError, IndexStoreError
from ..sources.corpus import Corpus, Passage, Source

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = [
    "FORMAT_VERSION",
    "HnswParams",
    "Kind",
    "Shard",
    "StoreManifest",
    "SyncPlan",
    "SyncState",
    "VectorStore",
    "embed_passages",
    "passages_hash",
    "plan_sync",
    "shard_of",
    "store_slug",
]

#: Bumped when the stored layout changes; a store of another version is rebuilt.
FORMAT_VERSION = 1
#: What one sync did, for code to act on; a store's ``status`` says the same in words.
SyncState = Literal["unchanged", "built", "updated", "rebuilt"]


@dataclass(frozen=True)
class HnswParams:
    """HNSW graph settings: build-time ``m`` and ``ef_construction``, query-time ``ef_search``.

    ``ef_search`` is raised to ``k`` for a query that asks for more than it (an HNSW search
    never returns more than its candidate list).
    """

    m: int = 16
    ef_construction: int = 64
    ef_search: int = 200

    def __post_init__(self) -> None:
        if self.m < 2 or self.ef_construction < 1 or self.ef_search < 1:
            raise ConfigError(f"invalid HNSW settings {self}: m >= 2, ef values >= 1")
        if self.ef_construction < 2 * self.m:
            # pgvector refuses this; FAISS builds a poor graph with it.
            raise ConfigError(
                f"index.hnsw_ef_construction ({self.ef_construction}) must be at least "
                f"2 * index.hnsw_m ({2 * self.m})"
            )


def shard_of(source_id: str, count: int) -> int:
    """The shard (1 to ``count``) that holds ``source_id``: a stable hash, not an order.

    Hashing the id keeps a source in its shard whatever else is added or removed, so any
    number of processes agree on the split without talking to each other.
    """
    digest = hashlib.sha256(source_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") % count + 1


@dataclass(frozen=True)
class Shard:
    """Shard ``number`` of ``count`` (1-based, as ``grounded-answer index --shard K/N``)."""

    number: int
    count: int

    def __post_init__(self) -> None:
        if not 1 <= self.number <= self.count:
            raise ConfigError(
                f"shard {self.number}/{self.count} does not exist: K/N needs 1 <= K <= N"
            )

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``"2/4"`` -> ``Shard(2, 4)``; anything else is a :class:`ConfigError`."""
        match = re.fullmatch(r"\s*(\d{1,6})\s*/\s*(\d{1,6})\s*", text)
        if match is None:
            raise ConfigError(f"--shard {text!r} is not K/N (e.g. 2/4: the second of four)")
        return cls(int(match[1]), int(match[2]))

    def holds(self, source_id: str) -> bool:
        """Whether ``source_id`` belongs to this shard."""
        return shard_of(source_id, self.count) == self.number

    def __str__(self) -> str:
        return f"{self.number}/{self.count}"


class StoreManifest(BaseModel):
    """What a store holds, as recorded when it was last synced."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format_version: int
    store: str
    kind: str
    model_id: str
    dimension: int
    corpus_name: str
    fingerprint: str
    passages: int
    sources: int
    #: Where the latest sync's vectors were made (a GPU build's parity check); None when
    #: that sync embedded nothing or its embedder was not a build embedder.
    build: BuildRecord | None = None


@runtime_checkable
class VectorStore(Protocol):
    """The duck type :class:`grounded_answer.retrieval.retrieve.Retriever` searches.

    ``search`` returns, per query row, ``(position, cosine)`` pairs best first, where
    ``position`` indexes :attr:`passages` (which follow the corpus's source order).
    """

    @property
    def passages(self) -> Sequence[Passage]:
        """The passages in corpus order; search results point into this list."""
        ...

    @property
    def status(self) -> str:
        """What the last open or sync did: ``loaded``, ``built``, ``updated: ...``, ``rebuilt:``."""
        ...

    @property
    def manifest(self) -> StoreManifest:
        """Model, dimension, corpus fingerprint and counts of what is stored."""
        ...

    def sync(
        self,
        corpus: Corpus,
        embedder: Embedder,
        *,
        batch_size: int = 64,
        show_progress: bool = False,
    ) -> str:
        """Bring the store in line with ``corpus``, embedding only new or changed sources."""
        ...

    def search(self, vectors: NDArray[np.float32], k: int) -> list[list[tuple[int, float]]]:
        """Top-``k`` passage positions and cosine scores for each query row."""
        ...

    def close(self) -> None:
        """Release connections or files (the store is unusable afterwards)."""
        ...


def passages_hash(source: Source, passages: Sequence[Passage] | None = None) -> str:
    """A hash of what is embedded for ``source``: its passages' ids and texts.

    It changes with anything that changes a passage (title, summary, links that name the
    repository, and the chunking itself), and not with fields that are never embedded.
    """
    parts = [(p.id, p.text) for p in (source.passages() if passages is None else passages)]
    return hashlib.sha256(json.dumps(parts, ensure_ascii=False).encode()).hexdigest()


@dataclass
class SyncPlan:
    """The difference between what a store holds and a corpus, source by source."""

    corpus: Corpus
    passages: list[Passage] = field(default_factory=list)
    hashes: dict[str, str] = field(default_factory=dict)
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    to_embed: list[Passage] = field(default_factory=list)

    @property
    def stale(self) -> list[str]:
        """Source ids whose stored rows must go (removed or changed)."""
        return self.removed + self.changed

    @property
    def empty(self) -> bool:
        """True when no source was added, changed or removed."""
        return not (self.added or self.changed or self.removed)

    def describe(self) -> str:
        """A one-line summary for ``status``, e.g. ``updated: 1 added, 2 changed ...``."""
        counts = (
            (len(self.added), "added"),
            (len(self.changed), "changed"),
            (len(self.removed), "removed"),
        )
        parts = ", ".join(f"{n} {what}" for n, what in counts if n) or "no passage changed"
        return f"updated: {parts} ({len(self.to_embed)} passages embedded)"


def plan_sync(
    stored: Mapping[str, str], corpus: Corpus, *, sources: Sequence[Source] | None = None
) -> SyncPlan:
    """What to embed and what to drop to turn ``stored`` (source id -> hash) into ``corpus``.

    ``sources`` narrows the plan to part of the corpus (one shard): ``stored`` should then
    hold only that part's sources, or the others would be planned for removal.
    """
    plan = SyncPlan(corpus=corpus)
    for source in corpus.sources if sources is None else sources:
        passages = source.passages()
        digest = passages_hash(source, passages)
        plan.passages.extend(passages)
        plan.hashes[source.id] = digest
        before = stored.get(source.id)
        if before == digest:
            continue
        (plan.added if before is None else plan.changed).append(source.id)
        plan.to_embed.extend(passages)
    plan.removed = [source_id for source_id in stored if source_id not in plan.hashes]
    return plan


def embed_passages(
    embedder: Embedder,
    passages: Sequence[Passage],
    dimension: int,
    *,
    batch_size: int = 64,
    show_progress: bool = False,
) -> NDArray[np.float32]:
    """The vectors of ``passages``, checked for shape, as a contiguous float32 array.

    With ``show_progress`` the passages go to the embedder in blocks of a few batches, so
    a progress bar on stderr counts passages and shows passages/s for any embedder (the
    ONNX runtime has no bar of its own, and sentence-transformers' counts batches).
    """
    if not passages:
        return np.zeros((0, dimension), dtype=np.float32)
    if isinstance(embedder, BuildEmbedder):
        embedder.expect(len(passages))  # a large build may go to a GPU
    texts = [p.text for p in passages]
    if show_progress:
        from tqdm import tqdm

        block = max(batch_size * 8, 512)
        parts = []
        with tqdm(
            total=len(texts), unit="passage", unit_scale=True, desc="embedding", smoothing=0.1
        ) as bar:
            for start in range(0, len(texts), block):
                chunk = texts[start : start + block]
                parts.append(
                    _checked(
                        embedder,
                        embedder.encode(chunk, batch_size=batch_size),
                        len(chunk),
                        dimension,
                    )
                )
                bar.update(len(chunk))
        return np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)
    vectors = embedder.encode(texts, batch_size=batch_size)
    return np.ascontiguousarray(
        _checked(embedder, vectors, len(texts), dimension), dtype=np.float32
    )


def _checked(
    embedder: Embedder, vectors: NDArray[np.float32], count: int, dimension: int
) -> NDArray[np.float32]:
    if vectors.ndim != 2 or vectors.shape != (count, dimension):
        raise IndexStoreError(
            f"embedder {embedder.model_id!r} returned {vectors.shape} for {count} "
            f"texts; expected ({count}, {dimension})"
        )
    return vectors


def store_slug(*parts: str) -> str:
    """A short, stable, identifier-safe name for a corpus and model (file or table name)."""
    slug = re.sub(r"[^a-z0-9]+", "_", parts[0].lower()).strip("_")[:24] or "corpus"
    digest = hashlib.sha256("\0".join(parts).encode()).hexdigest()[:12]
    return f"{slug}_{digest}"


def positions_of(passages: Iterable[Passage]) -> dict[str, int]:
    """Passage id -> position in ``passages``."""
    return {passage.id: position for position, passage in enumerate(passages)}

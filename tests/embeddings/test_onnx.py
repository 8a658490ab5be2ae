"""The ONNX embedder: export, parity with sentence-transformers, no torch, typed failures."""

from __future__ import annotations

import importlib
import json
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from grounded_answer.config import Settings, load_settings
from grounded_answer.embeddings import (
    PACKAGED_MODEL,
    Embedder,
    OnnxEmbedder,
    SentenceTransformerEmbedder,
)
from grounded_answer.embeddings import select_embedder as select_for_settings
from grounded_answer.embeddings.onnx import OPTIMIZED_FILE, OPTIMIZED_STAMP, find_onnx
from grounded_answer.embeddings.onnx_export import (
    export_onnx,
    prepare_onnx,
    verify_parity,
    verify_quantized,
)
from grounded_answer.embeddings.onnx_format import INT8_SUFFIX, MANIFEST_FILE, MODEL_FILE, onnx_dir
from grounded_answer.errors import ConfigError, IndexStoreError
from grounded_answer.sources.bundle import Bundle
from grounded_answer.sources.corpus import Corpus
from grounded_answer.stores import FaissStore

from ..support.fakes import HashEmbedder

TEXTS = [
    "",
    " ",
    "super-resolution",
    "Can AI really bring out this much detail even from poor originals?",
    "Restoring faces in old group photos. " * 60,  # well past 256 tokens
    "Je dois traduire des centaines de fiches produits du français vers l'anglais.",
    "사진 한 장만으로 카메라에서 각 물체까지의 거리를 알 수 있나요?",
    "Zählen Sie die Autos auf dem Parkplatz — größer, schärfer, ruhiger.",
    "Кто может убрать шум с ночных фотографий?",  # noqa: RUF001
    "😀 emoji, tabs\tand\nnewlines",
]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One verified export of the packaged model, shared by the module's slow tests."""
    cache = tmp_path_factory.mktemp("onnx-cache")
    prepare_onnx(None, cache)
    return onnx_dir(cache, None)


@pytest.fixture(scope="module")
def quantized(exported: Path) -> Path:
    """The int8 variant, made from the module's exact export."""
    prepare_onnx(None, exported.parent.parent, variant="int8")
    return onnx_dir(exported.parent.parent, None, "int8")


def build_index(data: Corpus, embedder: Embedder) -> FaissStore:
    """An in-memory flat store of ``data`` (nothing written)."""
    store = FaissStore(model_id=embedder.model_id, dimension=embedder.dimension)
    store.sync(data, embedder)
    return store


def _settings(model: Path | None, cache: Path, backend: str = "auto") -> Settings:
    return load_settings(
        embedding={
            "model": None if model is None else str(model),
            "export_dir": str(cache),
            "backend": backend,
        },
    )


def select_embedder(model: Path | None, cache: Path, *, backend: str = "auto") -> Embedder:
    """The library's choice for these settings (what explain() and the CLI get)."""
    return select_for_settings(_settings(model, cache, backend))


def _copy(exported: Path, tmp_path: Path, variant: Any = "exact") -> Path:
    target = onnx_dir(tmp_path / "cache", None, variant)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(exported, target)
    return target


def _edit_manifest(directory: Path, **changes: Any) -> None:
    path = directory / MANIFEST_FILE
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def test_importing_the_module_does_not_import_torch() -> None:
    code = (
        "import sys\n"
        "import grounded_answer.embeddings.onnx as m\n"
        "m.find_onnx(None, __import__('pathlib').Path('/nonexistent-cache'))\n"
        "heavy = [n for n in ('torch', 'sentence_transformers', 'onnxruntime') "
        "if n in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_missing_export_is_a_typed_error_and_find_gives_none(tmp_path: Path) -> None:
    with pytest.raises(IndexStoreError, match="no ONNX export"):
        OnnxEmbedder(tmp_path / "nothing")
    assert find_onnx(None, tmp_path) is None


def test_unreadable_manifest_is_a_typed_error(tmp_path: Path) -> None:
    (tmp_path / MANIFEST_FILE).write_text("{not json")
    with pytest.raises(IndexStoreError, match="unreadable ONNX manifest"):
        OnnxEmbedder(tmp_path)


def test_export_dir_is_per_model_and_inside_the_cache(tmp_path: Path) -> None:
    packaged = onnx_dir(tmp_path, None)
    assert packaged == onnx_dir(tmp_path, PACKAGED_MODEL)
    assert packaged != onnx_dir(tmp_path, "/models/other")
    assert packaged.is_relative_to(tmp_path)


def test_auto_falls_back_to_torch_with_the_reason_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no-such-model"
    chosen = select_embedder(missing, tmp_path)
    assert isinstance(chosen, SentenceTransformerEmbedder)
    assert isinstance(chosen, SentenceTransformerEmbedder)
    assert chosen.fallback_reason and "does not exist" in chosen.fallback_reason
    assert "preparing the fast query encoder" in capsys.readouterr().err
    again = select_embedder(missing, tmp_path)  # the failure is remembered, not retried
    assert isinstance(again, SentenceTransformerEmbedder)
    assert again.fallback_reason == chosen.fallback_reason
    assert "preparing" not in capsys.readouterr().err
    assert isinstance(select_embedder(None, tmp_path, backend="torch"), SentenceTransformerEmbedder)
    with pytest.raises(ConfigError, match=r"embedding\.backend"):  # refused by the settings
        select_embedder(None, tmp_path, backend="tensorflow")
    unchecked = Settings.model_construct(
        embedding=_settings(None, tmp_path).embedding.model_copy(update={"backend": "tf"}),
        index=_settings(None, tmp_path).index,
    )
    with pytest.raises(ConfigError, match="unknown embedding backend"):
        select_for_settings(unchecked)


@pytest.mark.slow
def test_select_embedder_prefers_a_verified_export(exported: Path, tmp_path: Path) -> None:
    _copy(exported, tmp_path)
    chosen = select_embedder(None, tmp_path / "cache", backend="onnx")
    assert isinstance(chosen, OnnxEmbedder)
    assert chosen.model_id == PACKAGED_MODEL
    # auto makes the int8 variant from the exact export it finds (no torch needed).
    fast = select_embedder(None, tmp_path / "cache")
    assert isinstance(fast, OnnxEmbedder) and fast.model_id == PACKAGED_MODEL + INT8_SUFFIX
    assert isinstance(
        select_embedder(None, tmp_path / "cache", backend="torch"), SentenceTransformerEmbedder
    )


@pytest.mark.slow
def test_export_layout_and_manifest(exported: Path) -> None:
    manifest = json.loads((exported / MANIFEST_FILE).read_text())
    assert (exported / MODEL_FILE).stat().st_size == manifest["onnx_bytes"]
    assert (exported / "tokenizer.json").is_file()
    assert manifest["source_model_id"] == PACKAGED_MODEL
    assert manifest["opset"] == 17
    assert manifest["max_seq_length"] == 256
    assert manifest["parity_max_abs_diff"] <= 1e-5
    assert "site-packages" not in str(exported)


@pytest.mark.slow
def test_parity_with_sentence_transformers(exported: Path, real_embedder: Any) -> None:
    onnx = OnnxEmbedder(exported)
    assert onnx.model_id == real_embedder.model_id == PACKAGED_MODEL
    assert onnx.dimension == 384
    expected = real_embedder.encode(TEXTS)
    batched = onnx.encode(TEXTS, batch_size=4)  # several batches, padded, reordered
    assert batched.shape == (len(TEXTS), 384)
    assert batched.dtype == np.float32
    assert np.abs(batched - expected).max() <= 1e-5
    singles = np.vstack([onnx.encode([text]) for text in TEXTS])
    assert np.abs(singles - expected).max() <= 1e-5
    assert np.allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)
    assert onnx.encode([]).shape == (0, 384)


@pytest.mark.slow
def test_same_ranking_on_the_seed_bundle(
    exported: Path, real_embedder: Any, seed_bundle: Bundle
) -> None:
    index = build_index(seed_bundle.corpus, real_embedder)
    onnx = OnnxEmbedder(exported)
    questions = [seed_bundle.question or "", "sharpen a blurry photo", "image quality"]
    for question in questions:
        want = index.search(real_embedder.encode([question]), 12)[0]
        got = index.search(onnx.encode([question]), 12)[0]
        assert [i for i, _ in got] == [i for i, _ in want]
        assert max(abs(a - b) for (_, a), (_, b) in zip(got, want, strict=True)) <= 1e-5


@pytest.mark.slow
def test_query_path_does_not_import_torch(exported: Path) -> None:
    cache = exported.parent.parent
    code = (
        "import sys, pathlib\n"
        "from grounded_answer.embeddings.onnx import find_onnx\n"
        f"e = find_onnx(None, pathlib.Path({str(cache)!r}))\n"
        "v = e.encode(['a question about photos'])\n"
        "assert v.shape == (1, 384), v.shape\n"
        "print(e.model_id, 'torch' in sys.modules, 'sentence_transformers' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == [PACKAGED_MODEL, "False", "False"]


def _loads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The files onnxruntime is asked to load from here on."""
    onnxruntime: Any = importlib.import_module("onnxruntime")  # ships no type information
    loaded: list[str] = []
    real = onnxruntime.InferenceSession

    def recording(path: str, **options: Any) -> Any:
        loaded.append(path)
        return real(path, **options)

    monkeypatch.setattr(onnxruntime, "InferenceSession", recording)
    return loaded


@pytest.mark.slow
def test_the_optimised_graph_is_saved_once_then_loaded_as_it_is(
    exported: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = _copy(exported, tmp_path / "first")
    for name in (OPTIMIZED_FILE, OPTIMIZED_STAMP):
        (target / name).unlink(missing_ok=True)
    first = OnnxEmbedder(target).encode(TEXTS)
    stamp = json.loads((target / OPTIMIZED_STAMP).read_text())
    assert stamp["source_sha256"] == json.loads((target / MANIFEST_FILE).read_text())["onnx_sha256"]
    assert stamp["bytes"] == (target / OPTIMIZED_FILE).stat().st_size
    loaded = _loads(monkeypatch)
    again = _copy(target, tmp_path / "again")  # another directory: loaded afresh
    second = OnnxEmbedder(again).encode(TEXTS)
    assert loaded == [str(again / OPTIMIZED_FILE)]
    assert np.array_equal(first, second)  # the same vectors, bit for bit


@pytest.mark.slow
def test_a_changed_optimised_graph_is_made_again(
    exported: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = _copy(exported, tmp_path)
    want = OnnxEmbedder(exported).encode(TEXTS[:3])
    OnnxEmbedder(target).encode(["x"])
    (target / OPTIMIZED_FILE).write_bytes(b"not the graph it was")
    loaded = _loads(monkeypatch)
    moved = _copy(target, tmp_path / "moved")
    got = OnnxEmbedder(moved).encode(TEXTS[:3])
    assert loaded == [str(moved / MODEL_FILE)]
    assert np.allclose(got, want, atol=1e-6)
    assert (moved / OPTIMIZED_FILE).stat().st_size > 1000


@pytest.mark.slow
def test_a_cache_that_cannot_hold_the_optimised_graph_only_costs_time(
    exported: Path, tmp_path: Path
) -> None:
    target = _copy(exported, tmp_path)
    for name in (OPTIMIZED_FILE, OPTIMIZED_STAMP):
        (target / name).unlink(missing_ok=True)
    (target / OPTIMIZED_FILE).mkdir()  # the name is taken: the save must fail
    got = OnnxEmbedder(target).encode(TEXTS[:3])
    assert np.allclose(got, OnnxEmbedder(exported).encode(TEXTS[:3]), atol=1e-6)
    assert sorted(p.name for p in target.iterdir()) == sorted(
        [MANIFEST_FILE, MODEL_FILE, "tokenizer.json", OPTIMIZED_FILE]
    )


@pytest.mark.slow
def test_corrupted_model_file_is_a_typed_error(exported: Path, tmp_path: Path) -> None:
    target = _copy(exported, tmp_path)
    model = target / MODEL_FILE
    data = bytearray(model.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 64] = b"\xff" * 64
    model.write_bytes(bytes(data))
    with pytest.raises(IndexStoreError, match="checksum"):
        OnnxEmbedder(target).encode(["x"])


@pytest.mark.slow
def test_unloadable_model_file_is_a_typed_error(exported: Path, tmp_path: Path) -> None:
    # Garbage whose manifest entries match, so onnxruntime itself has to refuse it.
    from grounded_answer._files import sha256 as _sha256

    target = _copy(exported, tmp_path)
    model = target / MODEL_FILE
    model.write_bytes(b"this is not an onnx model" * 100)
    stat = model.stat()
    _edit_manifest(
        target, onnx_sha256=_sha256(model), onnx_bytes=stat.st_size, onnx_mtime_ns=stat.st_mtime_ns
    )
    with pytest.raises(IndexStoreError, match="cannot load the ONNX export"):
        OnnxEmbedder(target).encode(["x"])


@pytest.mark.slow
def test_unverified_or_stale_export_does_not_claim_the_model_id(
    exported: Path, tmp_path: Path
) -> None:
    target = _copy(exported, tmp_path)
    cache = tmp_path / "cache"
    assert find_onnx(None, cache) is not None
    _edit_manifest(target, parity_max_abs_diff=None)
    assert OnnxEmbedder(target).model_id.startswith("onnx:")
    assert find_onnx(None, cache) is None
    _edit_manifest(target, parity_max_abs_diff=1e-7, source_signature="0" * 64)
    assert OnnxEmbedder(target).model_id.startswith("onnx:")
    assert find_onnx(None, cache) is None


@pytest.mark.slow
def test_failed_parity_is_recorded_and_not_retried(exported: Path, tmp_path: Path) -> None:
    target = _copy(exported, tmp_path)
    cache = tmp_path / "cache"
    wrong = HashEmbedder(dimension=384)
    with pytest.raises(IndexStoreError, match="differs from sentence-transformers"):
        verify_parity(target, wrong)
    manifest = json.loads((target / MANIFEST_FILE).read_text())
    assert manifest["parity_max_abs_diff"] > 1e-5
    with pytest.raises(ConfigError, match="at least one text"):
        verify_parity(target, wrong, texts=[])  # nothing checked must not pass
    assert find_onnx(None, cache) is None
    # prepare_onnx must refuse at once instead of exporting again on every index build.
    with pytest.raises(IndexStoreError, match="not used"):
        prepare_onnx(None, cache)


@pytest.mark.slow
def test_concurrent_encodes_agree(exported: Path) -> None:
    onnx = OnnxEmbedder(exported)
    expected = onnx.encode(TEXTS)
    results: list[np.ndarray] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(3):
                results.append(onnx.encode(TEXTS))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(results) == 12
    assert all(np.abs(r - expected).max() <= 1e-6 for r in results)


@pytest.mark.slow
def test_export_of_a_missing_model_path_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        export_onnx(tmp_path / "no-such-model", tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_int8_export_is_checked_against_the_exact_one(exported: Path, quantized: Path) -> None:
    exact = json.loads((exported / MANIFEST_FILE).read_text())
    manifest = json.loads((quantized / MANIFEST_FILE).read_text())
    assert manifest["variant"] == "int8"
    assert manifest["quantized_from_sha256"] == exact["onnx_sha256"]
    assert manifest["agreement_min_cosine"] >= manifest["agreement_tolerance"] == 0.97
    assert manifest["parity_max_abs_diff"] is None  # no exact-parity claim for int8
    # Quantized for real: smaller on disk, and its vectors are not the exact ones.
    assert (quantized / MODEL_FILE).stat().st_size < 0.8 * (exported / MODEL_FILE).stat().st_size
    int8, onnx = OnnxEmbedder(quantized), OnnxEmbedder(exported)
    assert int8.model_id == PACKAGED_MODEL + INT8_SUFFIX
    got, want = int8.encode(TEXTS, batch_size=4), onnx.encode(TEXTS)
    cosines = np.sum(got * want, axis=1)
    assert cosines.min() >= 0.97
    assert np.abs(got - want).max() > 1e-4
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


@pytest.mark.slow
def test_int8_is_the_default_and_exact_is_chosen_when_asked(
    exported: Path, quantized: Path, tmp_path: Path
) -> None:
    _copy(exported, tmp_path)
    _copy(quantized, tmp_path, "int8")
    cache = tmp_path / "cache"
    assert select_embedder(None, cache).model_id == PACKAGED_MODEL + INT8_SUFFIX
    assert select_embedder(None, cache, backend="onnx").model_id == PACKAGED_MODEL
    chosen = select_embedder(None, cache, backend="onnx-int8")
    assert isinstance(chosen, OnnxEmbedder)
    assert chosen.model_id == PACKAGED_MODEL + INT8_SUFFIX
    assert find_onnx(None, cache, variant="int8") is not None


@pytest.mark.slow
def test_int8_ranks_the_seed_bundle_like_the_exact_model(
    exported: Path, quantized: Path, seed_bundle: Bundle
) -> None:
    onnx, int8 = OnnxEmbedder(exported), OnnxEmbedder(quantized)
    exact_index = build_index(seed_bundle.corpus, onnx)
    int8_index = build_index(seed_bundle.corpus, int8)
    # Its own id: an index built from int8 vectors is never taken for an exact one.
    assert int8_index.manifest.model_id != exact_index.manifest.model_id
    for question in [seed_bundle.question or "", "sharpen a blurry photo", "image quality"]:
        want = exact_index.search(onnx.encode([question]), 12)[0]
        got = int8_index.search(int8.encode([question]), 12)[0]
        # The two best passages agree; further down, scores within 0.02 of each other may
        # swap, as every score moves by at most a few hundredths.
        assert [i for i, _ in got[:2]] == [i for i, _ in want[:2]]
        exact = dict(want)
        assert max(abs(score - exact[i]) for i, score in got) <= 0.05


@pytest.mark.slow
def test_failed_int8_agreement_is_recorded_and_not_retried(
    exported: Path, quantized: Path, tmp_path: Path
) -> None:
    _copy(exported, tmp_path)
    target = _copy(quantized, tmp_path, "int8")
    cache = tmp_path / "cache"
    with pytest.raises(IndexStoreError, match="cosine of only"):
        verify_quantized(target, HashEmbedder(dimension=384))
    manifest = json.loads((target / MANIFEST_FILE).read_text())
    assert manifest["agreement_min_cosine"] < 0.97
    assert find_onnx(None, cache, variant="int8") is None
    assert OnnxEmbedder(target).model_id.startswith("onnx:")
    with pytest.raises(IndexStoreError, match="not used"):
        prepare_onnx(None, cache, variant="int8")
    assert find_onnx(None, cache) is not None  # the exact export is untouched

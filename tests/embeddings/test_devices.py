"""Where index builds run: device choice and its fallback, the parity check, the record.

No GPU is needed: the accelerated branch runs the real model in float16 on the CPU (the
same code path a GPU build takes, with the same numerics question), and a deliberately
perturbed accelerator shows that a build whose vectors disagree is refused.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from grounded_answer.cli import main
from grounded_answer.config import EmbeddingSettings, IndexSettings, Settings
from grounded_answer.embeddings import (
    BuildEmbedder,
    SentenceTransformerEmbedder,
    build_embedder,
    check_parity,
    resolve_device,
)
from grounded_answer.embeddings.devices import GPU_MIN_PASSAGES
from grounded_answer.errors import ConfigError, IndexStoreError
from grounded_answer.sources.corpus import Corpus, Source
from grounded_answer.stores import open_faiss_store, open_store

from ..support.fakes import HashEmbedder

torch = pytest.importorskip("torch")


def corpus(n: int = 12) -> Corpus:
    topics = [
        "removes motion blur from photos",
        "transcribes meeting audio",
        "upsamples old photos four times",
        "translates product sheets to French",
    ]
    return Corpus(
        name="devices",
        sources=tuple(
            Source(
                id=f"s{i}",
                role="paper",
                title=f"Method {i}",
                summary=f"Method {i} {topics[i % len(topics)]}.",
                paper_url=f"https://example.org/{i}",
            )
            for i in range(n)
        ),
    )


class Perturbed(HashEmbedder):
    """The reference's vectors with one row pushed off: what a broken accelerator gives."""

    def __init__(self, row: int = 3, amount: float = 0.2) -> None:
        super().__init__()
        self.row, self.amount = row, amount

    def encode(
        self, texts: Sequence[str], *, batch_size: int = 64, show_progress: bool = False
    ) -> np.ndarray:
        vectors = super().encode(texts)
        if len(vectors) > self.row:
            vectors[self.row] += self.amount * np.roll(vectors[self.row], 7)
            vectors[self.row] /= np.linalg.norm(vectors[self.row])
        return vectors


def test_auto_falls_back_to_the_cpu_and_a_named_gpu_that_is_absent_is_an_error() -> None:
    expected = (
        "cuda"
        if torch.cuda.is_available()
        else ("mps" if torch.backends.mps.is_available() else "cpu")
    )
    assert resolve_device("auto") == expected
    assert resolve_device("cpu") == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match=r"embedding\.device is 'cuda'.*'auto'"):
            resolve_device("cuda")
    if not torch.backends.mps.is_available():
        with pytest.raises(ConfigError, match=r"embedding\.device is 'mps'"):
            resolve_device("mps")
    with pytest.raises(ConfigError, match=r"unknown embedding\.device 'tpu'"):
        resolve_device("tpu")


def test_the_parity_check_passes_equal_vectors_and_refuses_a_perturbed_set() -> None:
    vectors = HashEmbedder().encode([f"passage {i} about blur" for i in range(20)])
    assert check_parity(vectors, vectors.copy()) == pytest.approx(1.0)
    # float16 rounding alone stays far above the tolerance
    assert check_parity(vectors, vectors.astype(np.float16).astype(np.float32)) > 0.9999
    perturbed = vectors.copy()
    perturbed[7] = vectors[7] + 0.1 * np.roll(vectors[7], 3)
    with pytest.raises(IndexStoreError, match=r"sample passage 7 has cosine 0\.99[0-8]"):
        check_parity(vectors, perturbed)
    with pytest.raises(IndexStoreError, match="shapes"):
        check_parity(vectors, vectors[:5])


def test_a_small_auto_build_stays_on_the_cpu_without_importing_torch(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "from grounded_answer.config import EmbeddingSettings\n"
        "from grounded_answer.embeddings import BuildEmbedder\n"
        "from tests.support.fakes import HashEmbedder\n"
        "build = BuildEmbedder(HashEmbedder(), EmbeddingSettings())\n"
        f"build.expect({GPU_MIN_PASSAGES - 1})\n"
        "build.encode(['a passage'])\n"
        "print(build.record.device, 'torch' in sys.modules)\n"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", script],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": f"{root}:{root / 'src'}"},
    )
    assert out.stdout.split() == ["cpu", "False"]


def test_a_perturbed_accelerator_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    settings = Settings(index=IndexSettings(cache_dir=tmp_path))
    build = build_embedder(settings, HashEmbedder(), accelerator=Perturbed())
    with pytest.raises(IndexStoreError, match="disagree with the CPU's"):
        open_store(corpus(), build, settings.index)
    assert not list(tmp_path.rglob("manifest.json"))
    # The same accelerator giving the reference's vectors passes and is recorded.
    good = build_embedder(settings, HashEmbedder(), accelerator=HashEmbedder())
    store = open_store(corpus(), good, settings.index)
    assert store.manifest.build is not None
    assert store.manifest.build.parity_min_cosine == pytest.approx(1.0)
    assert store.manifest.build.parity_sample == len(corpus().passages())


@pytest.mark.slow
def test_a_half_precision_build_matches_the_cpu_and_its_manifest_says_so(tmp_path: Path) -> None:
    query = SentenceTransformerEmbedder()
    half = SentenceTransformerEmbedder(half=True)  # the GPU path's model, run on the CPU
    build = BuildEmbedder(query, EmbeddingSettings(), accelerator=half)
    store = open_faiss_store(corpus(), build, tmp_path / "half")
    record = store.manifest.build
    assert record is not None and record.precision == "float16" and record.device == "cpu"
    assert record.parity_min_cosine is not None and record.parity_min_cosine >= 0.999
    assert store.manifest.model_id == query.model_id  # searched by CPU-encoded questions
    reference = open_faiss_store(corpus(), query, tmp_path / "cpu")
    questions = query.encode(["my photo is blurry", "a meeting recording to text"])
    assert [[p for p, _ in row] for row in store.search(questions, 3)] == [
        [p for p, _ in row] for row in reference.search(questions, 3)
    ]
    again = open_faiss_store(corpus(), query, tmp_path / "half")
    assert again.status == "loaded" and again.manifest.build == record


def test_the_cli_names_a_missing_gpu(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    lines = [
        f'{{"id": "s{i}", "role": "paper", "title": "Method {i}", '
        f'"paper_url": "https://example.org/{i}"}}'
        for i in range(3)
    ]
    path = tmp_path / "corpus.jsonl"
    path.write_text("\n".join(lines) + "\n")
    code = main(
        ["index", "--corpus", str(path), "--cache-dir", str(tmp_path / "c"), "--device", "cuda"]
    )
    err = capsys.readouterr().err
    assert code == 2 and "embedding.device is 'cuda', but torch" in err, err


@pytest.mark.slow
def test_the_pipelined_gpu_encoder_gives_sentence_transformers_vectors() -> None:
    from grounded_answer.embeddings.sentence_transformers import encode_pipelined

    embedder = SentenceTransformerEmbedder()
    texts = [
        "A multi-scale network removes motion blur.",
        "x",
        "Speech recognition of long meetings. " * 40,  # truncated at 256 word pieces
        "Ünïcode and emoji 📷 in a title",
        "",
    ] * 7
    reference = embedder.encode(texts)
    got = encode_pipelined(embedder.loaded(), texts, batch_size=4)
    np.testing.assert_allclose(got, reference, atol=1e-5)


def test_a_non_finite_vector_fails_the_parity_check() -> None:
    vectors = HashEmbedder().encode([f"passage {i}" for i in range(6)])
    for bad in (np.nan, np.inf):
        broken = vectors.copy()
        broken[2, 5] = bad
        with pytest.raises(IndexStoreError, match="sample passage 2"):
            check_parity(vectors, broken)


def test_an_empty_first_call_does_not_switch_the_parity_check_off() -> None:
    build = BuildEmbedder(HashEmbedder(), EmbeddingSettings(), accelerator=Perturbed())
    assert build.encode([]).shape == (0, 256) and build.record is None
    with pytest.raises(IndexStoreError, match="disagree"):
        build.encode([f"passage {i} about blur" for i in range(10)])


def test_an_accelerator_that_overflows_is_refused() -> None:
    class Overflows(HashEmbedder):
        def encode(
            self, texts: Sequence[str], *, batch_size: int = 64, show_progress: bool = False
        ) -> np.ndarray:
            vectors = super().encode(texts)
            if len(texts) > 64:  # passes the 64-passage sample, overflows later
                vectors[-1, 0] = np.inf
            return vectors

    build = BuildEmbedder(HashEmbedder(), EmbeddingSettings(), accelerator=Overflows())
    with pytest.raises(IndexStoreError, match="not finite"):
        build.encode([f"passage {i}" for i in range(100)])


def test_a_built_store_opens_wherever_the_gpu_named_for_builds_is_missing(tmp_path: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    built = open_faiss_store(corpus(), HashEmbedder(), tmp_path)
    settings = Settings(index=IndexSettings(cache_dir=tmp_path), embedding={"device": "cuda"})
    build = build_embedder(settings, HashEmbedder())  # no error: nothing to embed yet
    again = open_faiss_store(corpus(), build, tmp_path)
    assert again.status == "loaded" and again.manifest == built.manifest
    with pytest.raises(ConfigError, match=r"embedding\.device is 'cuda'"):
        open_faiss_store(corpus(20), build, tmp_path)  # 8 new sources must be embedded


def test_the_cli_checks_the_batch_size(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["index", "--corpus", "x.jsonl", "--batch-size", "0"])
    assert caught.value.code == 2 and "not between 1 and 65536" in capsys.readouterr().err

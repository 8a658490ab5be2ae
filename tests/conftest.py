"""Shared fixtures: a fake embedder whose vectors vary with the text, small corpora."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from grounded_answer import Settings, load_settings
from grounded_answer.bundle import Bundle, load_bundle

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
# A byte-for-byte copy of the shared seed.
SEED = REPO / "benchmarks" / "bundles" / "dev" / "00_seed.txt"
BUNDLES = REPO / "benchmarks" / "bundles" / "dev"  # tuned on; test/ beside it is held out


class HashEmbedder:
    """Hashed bag of words and character trigrams: similar texts get similar vectors.

    Different texts give different vectors, so ranking is really exercised (unlike a
    constant fake), and it needs no model, so index and pipeline tests run in milliseconds.
    """

    def __init__(self, dimension: int = 256, model_id: str = "test/hash-embedder") -> None:
        self._dimension = dimension
        self._model_id = model_id
        self.calls = 0

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def dimension(self) -> int:
        return self._dimension

    def encode(
        self, texts: Sequence[str], *, batch_size: int = 64, show_progress: bool = False
    ) -> np.ndarray:
        self.calls += 1
        out = np.zeros((len(texts), self._dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            words = re.findall(r"[a-z0-9]+", text.lower())
            features = words + [w[i : i + 3] for w in words for i in range(max(1, len(w) - 2))]
            for feature in features:
                digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
                out[row, int.from_bytes(digest[:4], "little") % self._dimension] += 1.0
            norm = float(np.linalg.norm(out[row]))
            if norm:
                out[row] /= norm
        return out


@pytest.fixture
def embedder() -> HashEmbedder:
    return HashEmbedder()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(index={"cache_dir": str(tmp_path / "cache")})


@pytest.fixture
def seed_bundle() -> Bundle:
    return load_bundle(SEED)


@pytest.fixture(scope="session")
def export_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One ONNX export of the packaged model for the whole session (made on first use)."""
    return tmp_path_factory.mktemp("onnx-exports")


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, export_dir: Path) -> None:
    """No test reads the developer's config or cache, or reaches a real OpenAI key.

    Exports of the embedding model are shared by the session (``embedding.export_dir``):
    making one takes seconds, and each test's cache directory is new.
    """
    for name in list(__import__("os").environ):
        if name.startswith("GROUNDED_ANSWER_"):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GROUNDED_ANSWER_EMBEDDING__EXPORT_DIR", str(export_dir))
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def real_embedder() -> object:
    """The packaged all-MiniLM-L6-v2, loaded once per test session."""
    from grounded_answer.embeddings import SentenceTransformerEmbedder

    embedder = SentenceTransformerEmbedder()
    embedder.encode(["warm up"])
    return embedder

"""Shared fixtures: the fake embedder, settings with a private cache, the seed bundle."""

from __future__ import annotations

from pathlib import Path

import pytest

from grounded_answer import Settings, load_settings
from grounded_answer.sources.bundle import Bundle, load_bundle

from .support.fakes import HashEmbedder
from .support.paths import SEED

# Fixtures only: helpers live in tests/support/, imported from there.


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

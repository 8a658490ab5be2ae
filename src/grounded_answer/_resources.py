"""Where the packaged default corpus and prompt templates live.

A wheel carries ``corpus/`` and ``prompts/`` inside the package (``_data/``); an editable
install reads them from the repository root, so edits there take effect at once.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["default_corpus_path", "default_prompts_dir"]

_PACKAGE = Path(__file__).resolve().parent


def _data_dir(name: str) -> Path:
    packaged = _PACKAGE / "_data" / name
    if packaged.is_dir():
        return packaged
    return _PACKAGE.parent.parent / name


def default_corpus_path() -> Path:
    """The default corpus: the seed bundle's four sources and its question."""
    return _data_dir("corpus") / "default.yaml"


def default_prompts_dir() -> Path:
    """The shipped system, user and repair templates."""
    return _data_dir("prompts")

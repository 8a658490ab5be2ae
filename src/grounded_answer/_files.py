"""Writing files and cache directories so that readers never see half of one; checksums.

Indexes, vector stores and ONNX exports are each a directory of files plus a manifest of
their checksums. Each is written into a staging directory beside its target and swapped
in by renames, so a crash or a concurrent reader sees the old directory or the new one,
never a mixture; callers hold a file lock so two writers do not swap at once. Single
files (the batch command's answers) are written beside their target and renamed the same
way, so a file that exists is a whole one.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["replaced_dir", "sha256", "write_atomic"]


def sha256(path: Path) -> str:
    """The hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


@contextmanager
def replaced_dir(target: Path) -> Iterator[Path]:
    """A staging directory that replaces ``target`` when the body succeeds.

    If the body (or the swap) raises, the staging directory is removed and the exception
    propagates unchanged; ``target`` is left as it was.
    """
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        yield staging
        if target.exists():
            trash = Path(tempfile.mkdtemp(prefix=f".{target.name}-old-", dir=target.parent))
            target.rename(trash / target.name)
            shutil.rmtree(trash, ignore_errors=True)
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename (all or nothing)."""
    handle, staging = tempfile.mkstemp(prefix=f".{path.name}-", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(staging, 0o644)  # mkstemp's 0600 is for the staging file only
        os.replace(staging, path)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise

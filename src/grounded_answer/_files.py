"""Writing files and cache directories so that readers never see half of one; checksums.

Indexes, vector stores and ONNX exports are each a directory of files plus a manifest of
their checksums. Each is written into a staging directory beside its target and swapped
in by renames, so a crash or a concurrent reader sees the old directory or the new one,
never a mixture; callers hold a file lock so two writers do not swap at once. Single
files (the batch command's answers) are written beside their target and renamed the same
way, so a file that exists is a whole one.

:func:`locked` is the one file lock: every writer of a cache directory holds it, and a
wait that runs out is the library's own :class:`~grounded_answer.errors.IndexStoreError`,
never a raw ``filelock.Timeout``.

Input files (bundles, corpora) are read by :func:`read_limited`: regular files only, and
no more than a limit, so ``/dev/zero`` cannot exhaust memory and a FIFO cannot hang.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from .errors import ConfigError, IndexStoreError

__all__ = [
    "LOCK_TIMEOUT_S",
    "UnreadableFileError",
    "locked",
    "read_limited",
    "replaced_dir",
    "sha256",
    "writable_dir",
    "write_atomic",
]

#: How long a writer waits for another process's build of the same cache entry. Builds
#: embed whole corpora or export a model, which can take minutes on a small machine.
LOCK_TIMEOUT_S = 600.0

_KINDS = (
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


class UnreadableFileError(Exception):
    """An input file that :func:`read_limited` refused; the message says why."""


def read_limited(path: Path, limit: int, *, setting: str, expected: str) -> bytes:
    """The bytes of the regular file ``path``, refusing anything else or anything larger.

    The file is opened without blocking (a FIFO with no writer would otherwise hang the
    open) and checked with ``fstat`` on the open descriptor, so a path swapped between a
    check and the read cannot slip a device in. At most ``limit`` + 1 bytes are read,
    which also catches a file that grows after the size check.

    Args:
        path: The file to read.
        limit: The most bytes accepted.
        setting: The setting that sets ``limit``, named in the message.
        expected: What the file should be ("a bundle text file"), for the message.

    Raises:
        UnreadableFileError: missing, unreadable, not a regular file, or too large; the
            caller turns it into its own typed error with the path.

    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        descriptor = os.open(path, flags | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise UnreadableFileError("file does not exist") from None
    except IsADirectoryError:
        raise UnreadableFileError(f"is a directory, expected {expected}") from None
    except OSError as exc:
        raise UnreadableFileError(f"cannot read ({exc.strerror})") from None
    try:
        info = os.fstat(descriptor)
        if stat.S_ISDIR(info.st_mode):
            raise UnreadableFileError(f"is a directory, expected {expected}")
        if not stat.S_ISREG(info.st_mode):
            kind = next((name for test, name in _KINDS if test(info.st_mode)), "not a file")
            raise UnreadableFileError(f"is {kind}, not a regular file; expected {expected}")
        too_big = UnreadableFileError(f"is larger than {limit:,} bytes, the limit ({setting})")
        if info.st_size > limit:
            raise too_big
        chunks: list[bytes] = []
        size = 0
        while size <= limit and (chunk := os.read(descriptor, min(1 << 20, limit + 1 - size))):
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:
            raise too_big
        return b"".join(chunks)
    except OSError as exc:
        raise UnreadableFileError(f"cannot read ({exc.strerror})") from None
    finally:
        os.close(descriptor)


@contextmanager
def locked(target: Path, *, timeout: float = LOCK_TIMEOUT_S) -> Iterator[None]:
    """Hold the file lock of ``target`` (``<target>.lock`` beside it) for the body.

    Processes that share a cache take it before building or replacing an entry, so one
    builds and the others then find the result. Locks are not re-entrant across
    ``locked`` calls: code that already holds one passes that on instead of locking again.

    Raises:
        IndexStoreError: the lock was not free within ``timeout`` seconds.

    """
    lock = FileLock(str(target) + ".lock", timeout=timeout)
    try:
        lock.acquire()
    except Timeout:
        raise IndexStoreError(f"timed out waiting for the lock on {target}") from None
    try:
        yield
    finally:
        lock.release()


def writable_dir(path: Path) -> Path:
    """``path``, created if needed and checked writable before anything is built for it.

    A cache directory that cannot be written is the caller's setting to fix, so this is
    a :class:`~grounded_answer.errors.ConfigError` naming the setting, raised before any
    embedding work is spent.
    """
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".probe-"):
            pass
    except OSError as exc:
        raise ConfigError(
            f"index cache directory {path} is not writable ({exc.strerror or exc}); "
            "set GROUNDED_ANSWER_INDEX__CACHE_DIR to a writable directory"
        ) from None
    return path


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


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename (all or nothing).

    Text is written as UTF-8. Readers see the old file or the whole new one, never a
    part: a file that exists is complete, which is what lets a batch resume.
    """
    handle, staging = tempfile.mkstemp(prefix=f".{path.name}-", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data.encode() if isinstance(data, str) else data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(staging, 0o644)  # mkstemp's 0600 is for the staging file only
        os.replace(staging, path)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise

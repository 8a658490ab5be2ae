"""The one file lock: typed errors, never a raw filelock.Timeout."""

from __future__ import annotations

from pathlib import Path

import pytest

from grounded_answer._files import locked, write_atomic
from grounded_answer.errors import IndexStoreError


def test_a_lock_held_elsewhere_times_out_as_the_librarys_error(tmp_path: Path) -> None:
    target = tmp_path / "entry"
    waiting = pytest.raises(IndexStoreError, match="timed out waiting for the lock")
    with locked(target), waiting, locked(target, timeout=0.05):
        pass  # pragma: no cover - never entered
    with locked(target, timeout=0.05):  # released on exit: free again
        pass


def test_the_lock_is_released_when_the_body_raises(tmp_path: Path) -> None:
    target = tmp_path / "entry"
    with pytest.raises(RuntimeError), locked(target):
        raise RuntimeError("boom")
    with locked(target, timeout=0.05):
        pass


def test_write_atomic_takes_text_and_bytes(tmp_path: Path) -> None:
    write_atomic(tmp_path / "a.txt", "é\n")
    write_atomic(tmp_path / "b.bin", b"\x00\xff")
    assert (tmp_path / "a.txt").read_bytes() == "é\n".encode()
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\xff"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.bin"]

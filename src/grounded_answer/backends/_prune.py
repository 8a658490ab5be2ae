"""When a bounded response store prunes itself: shared by the SQLite and PostgreSQL stores."""

from __future__ import annotations

import random

__all__ = ["PRUNE_EVERY", "prune_due"]

#: On average one write in this many prunes the store to its bounds (chosen at random:
#: the pipeline wraps a new backend per answer, so a per-object count would never run).
PRUNE_EVERY = 64


def prune_due(prune_every: int) -> bool:
    """True on about one call in ``prune_every`` (always for 1)."""
    return prune_every <= 1 or random.random() < 1.0 / prune_every

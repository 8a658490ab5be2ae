"""Where the tests find the repository's own files (bundles, the seed, shared data)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
# A byte-for-byte copy of the shared seed.
SEED = REPO / "benchmarks" / "bundles" / "dev" / "00_seed.txt"
BUNDLES = REPO / "benchmarks" / "bundles" / "dev"  # tuned on; test/ beside it is held out

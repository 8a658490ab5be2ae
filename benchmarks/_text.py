"""Synthetic passages for the build benchmarks: about 100 words (~128 word pieces) each.

The length the issue's reference figures used; 10,000 word sequences numbered apart,
so every text differs and a million of them are made in a second.
"""

from __future__ import annotations

import numpy as np

WORDS = (  # noqa: SIM905 (a word list read as prose)
    "image video audio speech text model network layer attention diffusion noise "
    "resolution blur sharp detail frame pixel feature encoder decoder token train loss "
    "dataset benchmark accuracy latency transformer convolution signal spectrum music "
    "voice language translate summary document table chart graph depth motion flow "
    "segment object detect track pose face restore enhance generate prior sample"
).split()


def synthetic_texts(n: int, seed: int = 0) -> list[str]:
    """``n`` different passages of about 100 words."""
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(WORDS), size=(min(n, 10_000), 100))
    pool = [" ".join(WORDS[j] for j in row) for row in picks]
    return [f"Paper {i}: {pool[i % len(pool)]}" for i in range(n)]

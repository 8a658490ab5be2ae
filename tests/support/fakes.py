"""The one fake embedder: vectors that vary with the text, and a record of what it encoded."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np


class HashEmbedder:
    """Hashed bag of words and character trigrams: similar texts get similar vectors.

    Different texts give different vectors, so ranking is really exercised (unlike a
    constant fake), and it needs no model, so index and pipeline tests run in milliseconds.
    ``calls`` counts encode calls and ``texts`` keeps every text encoded, in order, so a
    test can tell what was (re-)embedded. Subclasses change the vectors in ``vectors``.
    """

    def __init__(self, dimension: int = 256, model_id: str = "test/hash-embedder") -> None:
        self._dimension = dimension
        self._model_id = model_id
        self.calls = 0
        self.texts: list[str] = []

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
        self.texts.extend(texts)
        return self.vectors(texts)

    def vectors(self, texts: Sequence[str]) -> np.ndarray:
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

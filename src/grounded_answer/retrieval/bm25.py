"""BM25 over passage texts (bm25s, English stop words, Snowball stemming by default).

Dense embeddings miss exact terms a user types (model names, rare words such as
"MSSNet" or "RealBlurR"); BM25 catches them. It is built in memory from the passages:
a few milliseconds for a bundle, about a second for ten thousand passages.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

__all__ = ["BM25Index"]


class BM25Index:
    """Lucene-variant BM25 over ``texts``; positions in results index into ``texts``."""

    def __init__(
        self,
        texts: Sequence[str],
        *,
        stemmer: str | None = "english",
        k1: float = 1.2,
        b: float = 0.75,
    ) -> None:
        import bm25s
        import Stemmer

        self._bm25s = bm25s
        self._stemmer: Any = Stemmer.Stemmer(stemmer) if stemmer else None
        self._size = len(texts)
        self._lock = threading.Lock()
        tokens = bm25s.tokenize(
            list(texts), stopwords="en", stemmer=self._stemmer, show_progress=False
        )
        self._model: Any = bm25s.BM25(k1=k1, b=b)
        self._model.index(tokens, show_progress=False)
        self._vocab: dict[str, int] = dict(tokens.vocab)

    def search(self, query: str, k: int) -> list[tuple[int, float]]:
        """Top-``k`` positions with a positive BM25 score, best first."""
        return self.search_many([query], k)[0]

    def search_many(self, queries: Sequence[str], k: int) -> list[list[tuple[int, float]]]:
        """:meth:`search` for many queries at once."""
        import numpy as np

        k = min(k, self._size)
        results: list[list[tuple[int, float]]] = []
        stem = self._stemmer.stemWords if self._stemmer else list
        tokenized = self._bm25s.tokenize(
            list(queries), stopwords="en", return_ids=False, show_progress=False
        )
        for words in tokenized:
            # Only words the corpus knows can score; an empty query scores nothing.
            known = [w for w in stem(words) if w in self._vocab]
            if not known or k <= 0:
                results.append([])
                continue
            with self._lock:
                scores = self._model.get_scores(known)
            top = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
            ordered = top[np.argsort(-scores[top], kind="stable")]
            results.append([(int(i), float(scores[i])) for i in ordered if scores[i] > 0])
        return results

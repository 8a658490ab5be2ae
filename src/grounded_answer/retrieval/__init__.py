"""Question -> ranked passages: dense, BM25 and hybrid retrieval over one corpus.

:mod:`.retrieve` holds the shared :class:`Retriever` (one per corpus, model and cache
directory, kept warm per process); :mod:`.bm25` the exact-term index it fuses with the
dense one.
"""

from .bm25 import BM25Index
from .retrieve import Hit, Retriever, fuse, get_retriever

__all__ = ["BM25Index", "Hit", "Retriever", "fuse", "get_retriever"]

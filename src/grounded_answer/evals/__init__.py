"""Measuring the library: the two halves of ``grounded-answer eval``.

    retrieval   nDCG@10 and recall@100 on a BEIR-layout dataset (dense, BM25, hybrid)
    answers     the answers to labelled bundles: grounding, citations, verdicts, language

Nothing is re-exported: each half imports what it measures (the answers half the whole
pipeline), and asking for one should not load the other.
"""

__all__: list[str] = []

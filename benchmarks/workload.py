"""The benchmark's inputs, made deterministically from the bundles in benchmarks/bundles.

* 200 varied questions, 10 per bundle, each asked against its own bundle's sources;
* a larger synthetic corpus for index-build throughput: every source of every bundle,
  copied with its summary sentences rotated, so passage lengths stay realistic;
* synthetic vectors for the FAISS scaling runs (see ``vectors``).

Written to JSON for the peer (LlamaIndex), which runs in another environment and must
see exactly the same texts.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
BUNDLES = HERE / "bundles" / "dev"  # the original 20 (NN_*.txt); a* and b* came later
SEED = BUNDLES / "00_seed.txt"


def bundle_files() -> list[Path]:
    return sorted(BUNDLES.glob("[0-9][0-9]_*.txt"))


def _sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+", " ".join(text.split())) if s]


def question_variants(question: str, keywords: list[str]) -> list[str]:
    """Ten different phrasings of one question: short, long, noisy, keyword-only."""
    sentences = _sentences(question) or [question]
    words = question.split()
    swapped = " ".join(
        (w[1] + w[0] + w[2:]) if len(w) > 4 and n % 3 == 0 else w for n, w in enumerate(words)
    )
    return [
        question,
        sentences[0],
        sentences[-1],
        "Which model would you use for this? " + question,
        " ".join(words[:12]),
        (" ".join(keywords) or sentences[0]) + "?",
        question + " Please keep the answer short and practical.",
        question.upper(),
        swapped,
        "Explain like I'm five: " + sentences[0],
    ]


def questions() -> list[tuple[str, str]]:
    """(bundle file name, question): 10 variants for each of the 20 bundles = 200."""
    from grounded_answer import load_bundle

    labels = json.loads((BUNDLES / "labels.json").read_text())
    pairs: list[tuple[str, str]] = []
    for file in bundle_files():
        bundle = load_bundle(file)
        keywords = list(labels.get(file.name, {}).get("task_keywords", []))
        base = bundle.question or "What does this model do?"
        pairs.extend((file.name, q) for q in question_variants(base, keywords))
    return pairs


def build_corpus(passages: int) -> Any:
    """A corpus of about ``passages`` passages made from every bundle's sources."""
    from grounded_answer import Corpus, Source, load_bundle

    originals = [s for f in bundle_files() for s in load_bundle(f).corpus.sources]
    sources: list[Source] = []
    total, copy = 0, 0
    while total < passages:
        for number, source in enumerate(originals):
            sentences = _sentences(source.summary)
            if sentences:
                shift = copy % len(sentences)
                sentences = sentences[shift:] + sentences[:shift]
            made = source.model_copy(
                update={
                    "id": f"c{copy}-s{number}",
                    "title": f"{source.title} ({copy})",
                    "summary": " ".join(sentences),
                }
            )
            sources.append(made)
            total += len(made.passages())
            if total >= passages:
                break
        copy += 1
    return Corpus(name=f"synthetic-{passages}", sources=tuple(sources))


def vectors(kind: str, n: int, seed: int, d: int = 384, latent: int = 24) -> np.ndarray:
    """Unit vectors: ``uniform`` on the sphere, or ``latent`` (a ``latent``-dim manifold).

    Uniform vectors in 384 dimensions are the worst case for any ANN index: every
    distance is about the same, so "the 10 nearest" is nearly arbitrary. Sentence
    embeddings are far from uniform (low intrinsic dimension); ``latent`` mimics that:
    a random linear map of a 24-dim Gaussian plus isotropic noise, which gives
    nearest-neighbour cosines (top-1 ~0.70, top-10 ~0.63) like MiniLM's on real text.
    The map depends only on ``d`` and ``latent``, so base and query sets share it.
    """
    rng = np.random.default_rng(seed)
    if kind == "uniform":
        x = rng.standard_normal((n, d), dtype=np.float32)
    elif kind == "latent":
        basis = np.random.default_rng(12345).standard_normal((latent, d), dtype=np.float32)
        basis /= np.float32(np.sqrt(d))
        x = np.empty((n, d), dtype=np.float32)
        for start in range(0, n, 100_000):  # in chunks: 1M x 384 temporaries add up
            m = min(100_000, n - start)
            z = rng.standard_normal((m, latent), dtype=np.float32)
            noise = rng.standard_normal((m, d), dtype=np.float32)
            x[start : start + m] = z @ basis + noise * np.float32(0.3 * np.sqrt(latent / d))
    else:
        raise ValueError(f"unknown vector kind {kind!r}")
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return np.ascontiguousarray(x, dtype=np.float32)


def write_peer_workload(path: Path, build_passages: int) -> dict[str, Any]:
    """The texts the peer needs, as JSON: bundle passages, questions, build passages."""
    from grounded_answer import load_bundle

    bundles = {
        file.name: [
            {"id": p.id, "source_id": p.source_id, "text": p.text}
            for p in load_bundle(file).corpus.passages()
        ]
        for file in bundle_files()
    }
    data = {
        "bundles": bundles,
        "questions": [list(pair) for pair in questions()],
        "build_texts": [p.text for p in build_corpus(build_passages).passages()],
    }
    path.write_text(json.dumps(data, ensure_ascii=False))
    return data

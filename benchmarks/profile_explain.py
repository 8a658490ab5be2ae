"""Where a warm ``explain`` spends its time: a cProfile of the 200 benchmark questions.

Two profiles, written to ``benchmarks/results/profile-<embedder>.txt`` and summarised on
stdout:

* ``whole``: explain as users run it, query encoder included;
* ``overhead``: the same calls with each question's vector computed beforehand, so what
  is left is our own per-query work (retrieval, prompt, backend, validation, Answer).

    .venv/bin/python benchmarks/profile_explain.py [--embedder onnx|onnx-int8|torch] [--rounds 3]

The export the embedder needs is made in a scratch cache first (a minute, once).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import workload  # noqa: E402
from workers import Precomputed  # noqa: E402

from grounded_answer import explain, load_bundle, load_settings  # noqa: E402
from grounded_answer.embeddings import select_embedder  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embedder", default="onnx", choices=["onnx", "onnx-int8", "torch"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()

    cache = Path(tempfile.mkdtemp(prefix="grounded-answer-profile-"))
    embedder = select_embedder(
        load_settings(
            index={"cache_dir": str(cache)},
            embedding={"backend": args.embedder, "export_dir": str(cache)},
        )
    )
    pairs = workload.questions()
    bundles = {f.name: load_bundle(f) for f in workload.bundle_files()}
    report = [f"embedder {embedder.model_id}, {len(pairs)} questions x {args.rounds} rounds"]
    for label, chosen in (
        ("whole", embedder),
        ("overhead", Precomputed(embedder, [q for _, q in pairs])),
    ):
        # A cache directory per run: retrievers are shared per (directory, corpus, model id).
        settings = load_settings(index={"cache_dir": str(cache / label)})
        for name, question in pairs:  # warm: indexes built, caches filled
            explain(question, bundle=bundles[name], settings=settings, embedder=chosen)
        times = []
        profile = cProfile.Profile()
        for _ in range(args.rounds):
            for name, question in pairs:
                mark = time.perf_counter()
                profile.enable()
                explain(question, bundle=bundles[name], settings=settings, embedder=chosen)
                profile.disable()
                times.append(time.perf_counter() - mark)
        # Timed under the profiler, so slower than benchmarks/run.py; the shares count.
        text = io.StringIO()
        stats = pstats.Stats(profile, stream=text).sort_stats("cumulative")
        stats.print_stats(args.top)
        stats.sort_stats("tottime").print_stats(args.top)
        head = (
            f"[{label}] explain p50 {statistics.median(times) * 1000:.2f} ms under "
            f"cProfile, {len(times)} calls"
        )
        explain_s = _cumulative(stats, "pipeline.py", "explain")
        encode_s = _cumulative(
            stats, ("embeddings/onnx.py", "embeddings/sentence_transformers.py"), "encode"
        )
        if label == "whole" and explain_s:
            head += f"; query encode {100 * encode_s / explain_s:.0f}% of explain"
        report += ["", head, text.getvalue()]
        print(head)
    args.out.mkdir(parents=True, exist_ok=True)
    target = args.out / f"profile-{args.embedder}.txt"
    target.write_text("\n".join(report))
    print(f"written to {target}")


def _cumulative(stats: pstats.Stats, file_suffix: str | tuple[str, ...], function: str) -> float:
    """Cumulative seconds of the outermost matching function (recursion counted once)."""
    rows: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    return float(
        sum(
            row[3]
            for (path, _, name), row in rows.items()
            if path.endswith(file_suffix) and name == function
        )
    )


if __name__ == "__main__":
    main()

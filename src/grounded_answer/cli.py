"""The ``grounded-answer`` command: a thin layer over the library's functions.

Errors print one line on stderr and exit 2 for bad input, 1 for runtime failures, with no
traceback unless ``--debug`` is given.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .errors import GroundedAnswerError, UserInputError

__all__ = ["main"]

_PROGRESS_ABOVE = 500  # passages; smaller corpora build in a blink


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help(sys.stderr)
        return 2
    try:
        handler: Callable[[argparse.Namespace], int] = args.run
        return handler(args)
    except GroundedAnswerError as exc:
        if args.debug:
            raise
        kind = "error" if isinstance(exc, UserInputError) else "failed"
        print(f"grounded-answer: {kind}: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, UserInputError) else 1
    except KeyboardInterrupt:
        print("grounded-answer: interrupted", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="grounded-answer",
        description="Explain recommended AI models from the provided sources only.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    commands = parser.add_subparsers(title="commands")

    def sources(sub: argparse.ArgumentParser) -> None:
        group = sub.add_mutually_exclusive_group()
        group.add_argument("--bundle", metavar="FILE",
                           help="a bundle file in the platform's format")
        group.add_argument("--corpus", metavar="PATH", help="a corpus file (YAML or JSONL)")
        sub.add_argument("--cache-dir", metavar="DIR", help="index cache directory")
        sub.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                         help="show tracebacks on errors")

    explain = commands.add_parser("explain", help="answer a question in three sections")
    explain.add_argument("question", nargs="?", help="default: the bundle's or corpus's question")
    sources(explain)
    explain.add_argument("--backend", help="LLM backend: stub (offline) or openai")
    explain.add_argument("--format", choices=["markdown", "json"], default="markdown")
    explain.set_defaults(run=_explain)

    search = commands.add_parser("search", help="show the passages retrieved for a question")
    search.add_argument("question", nargs="?", help="default: the bundle's or corpus's question")
    sources(search)
    search.add_argument("-k", type=int, default=None, help="passages to show")
    search.add_argument("--format", choices=["text", "json"], default="text")
    search.set_defaults(run=_search)

    index = commands.add_parser("index", help="build (or verify) the index of a corpus")
    sources(index)
    index.set_defaults(run=_index)

    evaluate = commands.add_parser("eval", help="measure retrieval or answer quality")
    kinds = evaluate.add_subparsers(title="what to evaluate")
    retrieval = kinds.add_parser("retrieval", help="nDCG@10 / recall@100 on a BEIR directory")
    retrieval.add_argument("--beir", metavar="DIR", required=True, help="BEIR-layout directory")
    retrieval.add_argument("--split", default="test", help="qrels split (default: test)")
    retrieval.add_argument("--method", choices=["dense", "bm25", "hybrid"], default=None,
                           help="default: the configured retrieval.method")
    retrieval.add_argument("--cache-dir", metavar="DIR", help="embedding cache directory")
    retrieval.add_argument("--threads", type=int, default=None,
                           help="threads for encoding the corpus (torch or onnxruntime)")
    retrieval.add_argument("--debug", action="store_true", default=argparse.SUPPRESS)
    retrieval.set_defaults(run=_eval_retrieval)
    answers = kinds.add_parser("answers", help="answer quality over labelled bundles")
    answers.add_argument("--bundles", metavar="DIR", required=True,
                         help="folder of bundle files with a labels.json, or a folder of "
                         "such folders (dev/, test/), each reported on its own")
    answers.add_argument("--labels", metavar="FILE", help="default: DIR/labels.json")
    answers.add_argument("--backend", help="LLM backend: stub (offline) or openai")
    answers.add_argument("--cache-dir", metavar="DIR", help="index cache directory")
    answers.add_argument("--json", metavar="FILE", dest="json_out", help="also write JSON here")
    answers.add_argument("--debug", action="store_true", default=argparse.SUPPRESS)
    answers.set_defaults(run=_eval_answers)
    return parser


def _settings(args: argparse.Namespace) -> Any:
    from .config import load_settings

    overrides: dict[str, Any] = {}
    if getattr(args, "cache_dir", None):
        overrides["index"] = {"cache_dir": args.cache_dir}
    if getattr(args, "backend", None):
        overrides["llm"] = {"backend": args.backend}
    if getattr(args, "k", None) is not None:
        overrides["retrieval"] = {"k": args.k}
    if not overrides:
        return load_settings()
    # Explicit flags win over environment and file, section by section.
    base = load_settings()
    merged = base.model_dump()
    for section, values in overrides.items():
        merged[section].update(values)
    if base.llm.api_key is not None:
        merged["llm"]["api_key"] = base.llm.api_key.get_secret_value()
    return load_settings(**merged)


def _explain(args: argparse.Namespace) -> int:
    from .pipeline import explain

    answer = explain(args.question, bundle=args.bundle, corpus=args.corpus,
                     settings=_settings(args))
    print(answer.to_json() if args.format == "json" else answer.to_markdown(), end="\n"
          if args.format == "json" else "")
    return 0


def _search(args: argparse.Namespace) -> int:
    from .pipeline import (
        _check_question,
        default_embedder,
        resolve_sources,
        retrieve_passages,
        retriever_for,
    )

    settings = _settings(args)
    corpus, default_question = resolve_sources(args.bundle, args.corpus, settings)
    question = _check_question(args.question or default_question, settings)
    embedder = default_embedder(settings)
    retriever = retriever_for(corpus, embedder, settings)
    hits, _ = retrieve_passages(retriever, question, settings)
    rows = []
    for hit in hits:
        source = corpus.get(hit.source_id)
        rows.append({**hit.model_dump(), "title": source.title, "role": source.role.value,
                     "links": list(source.links)})
    if args.format == "json":
        print(json.dumps({"question": question, "corpus": corpus.name,
                          "index": retriever.index.status, "hits": rows},
                         indent=2, ensure_ascii=False))
    else:
        print(f"Question: {question}\n")
        for row in rows:
            print(f"{row['rank']:>2}. {row['score']:.3f}  {row['title']}  [{row['passage_id']}]")
            print(f"    {row['text'][:160]}")
    return 0


def _index(args: argparse.Namespace) -> int:
    from .pipeline import default_embedder, resolve_sources, retriever_for

    settings = _settings(args)
    corpus, _ = resolve_sources(args.bundle, args.corpus, settings)
    # Passages are embedded by the model queries will use (the same choice as explain()).
    embedder = default_embedder(settings)
    started = time.perf_counter()
    passages = sum(len(s.passages()) for s in corpus.sources)
    index = retriever_for(
        corpus, embedder, settings,
        show_progress=passages > _PROGRESS_ABOVE and sys.stderr.isatty(),
    ).index
    seconds = time.perf_counter() - started
    reason = getattr(embedder, "fallback_reason", None)
    print(f"queries: {embedder.model_id}" + (f" ({reason})" if reason else ""),
          file=sys.stderr)
    print(f"{corpus.name}: {len(corpus.sources)} sources, {index.manifest.passages} passages, "
          f"{index.status} in {seconds:.2f}s (model {index.manifest.model_id}, "
          f"fingerprint {index.manifest.fingerprint[:12]})")
    return 0


def _eval_retrieval(args: argparse.Namespace) -> int:
    from .evaluation import evaluate_retrieval, load_beir
    from .index import configure_faiss
    from .pipeline import default_embedder

    settings = _settings(args)
    method = args.method or settings.retrieval.method
    data = load_beir(args.beir, args.split)
    if args.threads is not None:
        settings = settings.model_copy(update={"embedding": settings.embedding.model_copy(
            update={"threads": args.threads})})
    embedder = None if method == "bm25" else default_embedder(settings)
    if embedder is not None:
        configure_faiss(settings.index.threads, embedder.dimension)
    print(f"{args.beir} [{args.split}]: {len(data.doc_ids)} documents, "
          f"{len(data.queries)} queries, method {method}", file=sys.stderr)
    result = evaluate_retrieval(
        data, embedder, settings.index.cache_dir, method=method,
        fusion=settings.retrieval.fusion, alpha=settings.retrieval.alpha,
        stemmer=settings.retrieval.stemmer, batch_size=settings.embedding.batch_size,
        show_progress=sys.stderr.isatty(),
    )
    print(f"nDCG@10     {result['ndcg@10']:.4f}")
    print(f"recall@100  {result['recall@100']:.4f}")
    print(f"queries     {result['queries']}")
    print(json.dumps({key: result[key] for key in ("ndcg@10", "recall@100", "queries")}))
    return 0


def _eval_answers(args: argparse.Namespace) -> int:
    from .answer_eval import evaluate_answers, format_table, splits_of

    settings = _settings(args)
    splits = {"": Path(args.bundles)} if args.labels else splits_of(args.bundles)
    results = {}
    for name, folder in splits.items():
        scores, overall = evaluate_answers(folder, settings=settings, labels_file=args.labels)
        if len(splits) > 1:
            print(f"== {name} ({folder})")
        print(format_table(scores))
        print()
        print(json.dumps(overall))
        print()
        results[name] = {"overall": overall, "bundles": [s.model_dump() for s in scores]}
    if args.json_out:
        data = results[""] if args.labels else results
        Path(args.json_out).write_text(json.dumps(data, indent=2))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

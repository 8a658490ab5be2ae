"""The ``grounded-answer`` command: a thin layer over the library's functions.

Errors print one line on stderr and exit 2 for bad input, 1 for runtime failures, with no
traceback unless ``--debug`` is given. A batch (``explain --bundles DIR --out DIR``)
exits 0 when every bundle has its answer, 1 when any bundle failed (the summary table
says which and why), 2 when the command itself is wrong.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

from .errors import GroundedAnswerError, UserInputError

if TYPE_CHECKING:
    from .batch import BatchItem
    from .embeddings import BuildRecord

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
    from .config import AnswerFormat, Method  # the choices are declared once, in config

    parser = argparse.ArgumentParser(
        prog="grounded-answer",
        description="Explain recommended AI models from the provided sources only.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    commands = parser.add_subparsers(title="commands")

    def sources(sub: argparse.ArgumentParser) -> None:
        group = sub.add_mutually_exclusive_group()
        group.add_argument(
            "--bundle", metavar="FILE", help="a bundle file in the platform's format"
        )
        group.add_argument("--corpus", metavar="PATH", help="a corpus file (YAML or JSONL)")
        sub.add_argument("--cache-dir", metavar="DIR", help="index cache directory")
        sub.add_argument(
            "--debug",
            action="store_true",
            default=argparse.SUPPRESS,
            help="show tracebacks on errors",
        )

    explain = commands.add_parser(
        "explain", help="answer a question in three sections (or a folder of bundles)"
    )
    explain.add_argument("question", nargs="?", help="default: the bundle's or corpus's question")
    sources(explain)
    explain.add_argument("--backend", help="LLM backend: stub (offline) or openai")
    explain.add_argument(
        "--format",
        choices=get_args(AnswerFormat),
        default=None,
        help="default: markdown; json for a batch",
    )
    batch = explain.add_argument_group(
        "batch", "answer every *.txt bundle in a folder, one file each; resumable"
    )
    batch.add_argument("--bundles", metavar="DIR", help="a folder of bundle files")
    batch.add_argument("--out", metavar="DIR", help="where the answers go (with --bundles)")
    batch.add_argument(
        "--jobs", type=int, default=1, metavar="N", help="bundles answered at once (default 1)"
    )
    explain.set_defaults(run=_explain)

    serve = commands.add_parser(
        "serve",
        help="the HTTP API, the answer page, /healthz, /readyz and /metrics",
        description="Serve the HTTP API. Beyond loopback it needs API keys "
        "(serve.api_keys or serve.api_keys_file; clients send 'Authorization: Bearer KEY') "
        "unless --insecure is given. SIGTERM drains: new requests get 503 and /readyz says "
        "draining while the answers in flight finish (serve.drain_timeout), then it exits.",
    )
    serve.add_argument("--host", help="interface (default: serve.host, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default: serve.port, 8000)")
    serve.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="server processes sharing the port, the metrics and the response "
        "cache (default: serve.workers, 1)",
    )
    serve.add_argument(
        "--insecure",
        action="store_true",
        help="listen beyond loopback without API keys (a proxy in front authenticates)",
    )
    serve.add_argument("--backend", help="default LLM backend: stub (offline) or openai")
    serve.add_argument("--cache-dir", metavar="DIR", help="index cache directory")
    serve.add_argument("--debug", action="store_true", default=argparse.SUPPRESS)
    serve.set_defaults(run=_serve)

    mcp = commands.add_parser(
        "mcp",
        help="an MCP server on stdio with the explain_bundle tool",
        description="Serve the explain_bundle tool over the Model Context Protocol on "
        "stdin/stdout (for an MCP client that starts this command). The tool takes a "
        "bundle's text, optionally a question and a backend (one of serve.backends), and "
        "returns the Answer as structured content and as Markdown.",
    )
    mcp.add_argument("--backend", help="default LLM backend: stub (offline) or openai")
    mcp.add_argument("--cache-dir", metavar="DIR", help="index cache directory")
    mcp.add_argument("--debug", action="store_true", default=argparse.SUPPRESS)
    mcp.set_defaults(run=_mcp)

    search = commands.add_parser("search", help="show the passages retrieved for a question")
    search.add_argument("question", nargs="?", help="default: the bundle's or corpus's question")
    sources(search)
    search.add_argument("-k", type=int, default=None, help="passages to show")
    search.add_argument("--format", choices=["text", "json"], default="text")
    search.set_defaults(run=_search)

    index = commands.add_parser("index", help="build (or verify) the index of a corpus")
    sources(index)
    sharded = index.add_argument_group(
        "sharded builds",
        "many processes or machines build one pgvector index: run "
        "--shard K/N for every K (any order, in parallel), then --finalize once",
    )
    steps = sharded.add_mutually_exclusive_group()
    steps.add_argument(
        "--shard", metavar="K/N", help="embed only the sources whose id hashes to shard K of N"
    )
    steps.add_argument(
        "--finalize",
        action="store_true",
        help="check every source is stored once, then build the vector index",
    )
    index.add_argument(
        "--device",
        choices=["auto", "cpu", "cuda", "mps"],
        default=None,
        help="where passages are embedded (embedding.device; default auto)",
    )
    index.add_argument(
        "--batch-size",
        type=_batch_size,
        default=None,
        metavar="N",
        help="texts per encode batch (embedding.batch_size; 1024+ on a GPU)",
    )
    index.set_defaults(run=_index)

    evaluate = commands.add_parser("eval", help="measure retrieval or answer quality")
    kinds = evaluate.add_subparsers(title="what to evaluate")
    retrieval = kinds.add_parser("retrieval", help="nDCG@10 / recall@100 on a BEIR directory")
    retrieval.add_argument("--beir", metavar="DIR", required=True, help="BEIR-layout directory")
    retrieval.add_argument("--split", default="test", help="qrels split (default: test)")
    retrieval.add_argument(
        "--method",
        choices=get_args(Method),
        default=None,
        help="default: the configured retrieval.method",
    )
    retrieval.add_argument("--cache-dir", metavar="DIR", help="embedding cache directory")
    retrieval.add_argument(
        "--threads",
        type=int,
        default=None,
        help="threads for encoding the corpus (torch or onnxruntime)",
    )
    retrieval.add_argument("--debug", action="store_true", default=argparse.SUPPRESS)
    retrieval.set_defaults(run=_eval_retrieval)
    answers = kinds.add_parser("answers", help="answer quality over labelled bundles")
    answers.add_argument(
        "--bundles",
        metavar="DIR",
        required=True,
        help="folder of bundle files with a labels.json, or a folder of "
        "such folders (dev/, test/), each reported on its own",
    )
    answers.add_argument("--labels", metavar="FILE", help="default: DIR/labels.json")
    answers.add_argument("--backend", help="LLM backend: stub (offline) or openai")
    answers.add_argument("--cache-dir", metavar="DIR", help="index cache directory")
    answers.add_argument("--json", metavar="FILE", dest="json_out", help="also write JSON here")
    answers.add_argument(
        "--answers",
        metavar="DIR",
        dest="answers_dir",
        help="also keep every answer here (JSON and Markdown), per split",
    )
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
    serve = {
        name: getattr(args, name)
        for name in ("host", "port", "workers")
        if getattr(args, name, None) is not None
    }
    if serve:
        overrides["serve"] = serve
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
    from .batch import render
    from .errors import ConfigError
    from .pipeline import explain

    if args.bundles is not None or args.out is not None:
        if args.bundles is None or args.out is None:
            raise ConfigError("a batch needs both --bundles DIR and --out DIR")
        if args.question or args.bundle or args.corpus:
            raise ConfigError(
                "--bundles answers each bundle's own question: give no "
                "question, --bundle or --corpus with it"
            )
        return _explain_batch(args)
    answer = explain(
        args.question, bundle=args.bundle, corpus=args.corpus, settings=_settings(args)
    )
    print(render(answer, args.format or "markdown"), end="")
    return 0


def _explain_batch(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .batch import bundle_files, run_batch

    total = len(bundle_files(args.bundles))
    started = time.perf_counter()
    # A bar on a terminal; in a log (not a TTY) only the failures, one line each.
    with tqdm(
        total=total,
        unit="bundle",
        file=sys.stderr,
        disable=not sys.stderr.isatty(),
        dynamic_ncols=True,
        leave=False,
    ) as bar:

        def progress(item: BatchItem) -> None:
            bar.update(1)
            bar.set_postfix_str(item.bundle, refresh=False)
            if item.status == "failed":
                line = f"grounded-answer: {item.bundle}: {item.error}"
                if bar.disable:
                    print(line, file=sys.stderr)
                else:
                    bar.write(line, file=sys.stderr)

        items = run_batch(
            args.bundles,
            args.out,
            fmt=args.format or "json",
            jobs=args.jobs,
            settings=_settings(args),
            on_item=progress,
        )
    print(_batch_table(items))
    counts = {
        status: sum(item.status == status for item in items)
        for status in ("answered", "skipped", "failed")
    }
    print(
        f"\n{len(items)} bundles: {counts['answered']} answered, {counts['skipped']} "
        f"skipped (answer already in {args.out}), {counts['failed']} failed, in "
        f"{time.perf_counter() - started:.1f}s"
    )
    return 1 if counts["failed"] else 0


def _batch_table(items: Sequence[BatchItem]) -> str:
    rows = [("bundle", "status", "answerable", "refs", "seconds", "output / error")]
    for item in items:
        rows.append(
            (
                item.bundle,
                item.status,
                "" if item.answerable is None else ("yes" if item.answerable else "no"),
                "" if item.references is None else str(item.references),
                f"{item.seconds:.2f}" if item.status != "skipped" else "",
                f"{item.category}: {item.error}" if item.status == "failed" else item.output or "",
            )
        )
    widths = [max(len(row[n]) for row in rows) for n in range(len(rows[0]) - 1)]
    lines = []
    for n, row in enumerate(rows):
        lines.append(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False))
            + "  "
            + row[-1]
        )
        if n == 0:
            lines.append("  ".join("-" * width for width in widths) + "  " + "-" * 14)
    return "\n".join(line.rstrip() for line in lines)


def _serve(args: argparse.Namespace) -> int:
    from .serve import check_binding, run

    settings = _settings(args)
    check_binding(settings, insecure=args.insecure)  # before saying it serves
    serve = settings.serve
    keyed = bool(serve.api_keys or serve.api_keys_file)
    if args.insecure and not keyed:
        print(
            f"grounded-answer: warning: listening on {serve.host} without API keys (--insecure)",
            file=sys.stderr,
        )
    print(
        f"grounded-answer: serving on http://{serve.host}:{serve.port}/ "
        f"(backend {settings.llm.backend}, {serve.workers} worker(s), "
        f"{'API keys required' if keyed else 'no API keys'})",
        file=sys.stderr,
    )
    run(settings, insecure=args.insecure)
    return 0


def _mcp(args: argparse.Namespace) -> int:
    from .serve import run_mcp

    run_mcp(_settings(args))
    return 0


def _search(args: argparse.Namespace) -> int:
    from .embeddings import select_embedder
    from .pipeline import (
        check_question,
        resolve_sources,
        retrieve_passages,
        retriever_for,
    )

    settings = _settings(args)
    corpus, default_question = resolve_sources(args.bundle, args.corpus, settings)
    question = check_question(args.question or default_question, settings)
    embedder = select_embedder(settings)
    retriever = retriever_for(corpus, embedder, settings)
    hits, _ = retrieve_passages(retriever, question, settings)
    rows = []
    for hit in hits:
        source = corpus.get(hit.source_id)
        rows.append(
            {
                **hit.model_dump(),
                "title": source.title,
                "role": source.role.value,
                "links": list(source.links),
            }
        )
    if args.format == "json":
        print(
            json.dumps(
                {
                    "question": question,
                    "corpus": corpus.name,
                    "index": retriever.index.status,
                    "hits": rows,
                },
                indent=2,
                ensure_ascii=False,
            )
        )
    else:
        print(f"Question: {question}\n")
        for row in rows:
            print(f"{row['rank']:>2}. {row['score']:.3f}  {row['title']}  [{row['passage_id']}]")
            print(f"    {row['text'][:160]}")
    return 0


def _index(args: argparse.Namespace) -> int:
    from .embeddings import build_embedder, resolve_device
    from .pipeline import resolve_sources, retriever_for

    settings = _settings(args)
    embedding = {
        key: value
        for key, value in (("device", args.device), ("batch_size", args.batch_size))
        if value is not None
    }
    if embedding:
        settings = settings.model_copy(
            update={
                "embedding": settings.embedding.model_validate(
                    {**settings.embedding.model_dump(), **embedding}
                )
            }
        )
    corpus, _ = resolve_sources(args.bundle, args.corpus, settings)
    # Passages are embedded by the model queries will use (the same choice as explain()).
    if not args.finalize and settings.embedding.device not in ("auto", "cpu"):
        resolve_device(settings.embedding.device)  # a GPU that is not there fails first
    build = build_embedder(settings)
    embedder = build.query
    started = time.perf_counter()
    # Cutting every source into passages is a pass over the corpus: only for a terminal.
    progress = (
        sys.stderr.isatty() and sum(len(s.passages()) for s in corpus.sources) > _PROGRESS_ABOVE
    )
    if args.shard or args.finalize:
        from .stores import Shard, build_shard, finalize_shards

        if args.shard:
            status = build_shard(
                corpus,
                build,
                settings.index,
                Shard.parse(args.shard),
                batch_size=settings.embedding.batch_size,
                show_progress=progress,
            )
        else:
            status = finalize_shards(corpus, embedder, settings.index)
        where = "" if build.record is None else f", built on {_where(build.record)}"
        print(
            f"{corpus.name}: {status} in {time.perf_counter() - started:.2f}s "
            f"(model {embedder.model_id}{where})"
        )
        return 0
    index = retriever_for(corpus, embedder, settings, show_progress=progress).index
    seconds = time.perf_counter() - started
    reason = getattr(embedder, "fallback_reason", None)
    print(f"queries: {embedder.model_id}" + (f" ({reason})" if reason else ""), file=sys.stderr)
    record = getattr(index.manifest, "build", None)
    where = "" if record is None else f", built on {_where(record)}"
    print(
        f"{corpus.name}: {len(corpus.sources)} sources, {index.manifest.passages} passages, "
        f"{index.status} in {seconds:.2f}s (model {index.manifest.model_id}, "
        f"fingerprint {index.manifest.fingerprint[:12]}{where})"
    )
    return 0


def _batch_size(text: str) -> int:
    """``--batch-size``: a whole number from 1 to 65,536 (argparse reports anything else)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= value <= 65536:
        raise argparse.ArgumentTypeError(f"{value} is not between 1 and 65536")
    return value


def _where(record: BuildRecord) -> str:
    if record.parity_min_cosine is None:
        return record.device
    return (
        f"{record.device} ({record.precision}; parity with the CPU on "
        f"{record.parity_sample} passages, least cosine {record.parity_min_cosine:.5f})"
    )


def _eval_retrieval(args: argparse.Namespace) -> int:
    from .embeddings import select_embedder
    from .evals.retrieval import evaluate_retrieval, load_beir
    from .stores import configure_faiss

    settings = _settings(args)
    method = args.method or settings.retrieval.method
    data = load_beir(args.beir, args.split)
    if args.threads is not None:
        settings = settings.model_copy(
            update={"embedding": settings.embedding.model_copy(update={"threads": args.threads})}
        )
    embedder = None if method == "bm25" else select_embedder(settings)
    if embedder is not None:
        configure_faiss(settings.index.threads, embedder.dimension)
    print(
        f"{args.beir} [{args.split}]: {len(data.doc_ids)} documents, "
        f"{len(data.queries)} queries, method {method}",
        file=sys.stderr,
    )
    result = evaluate_retrieval(
        data,
        embedder,
        settings.index.cache_dir,
        method=method,
        fusion=settings.retrieval.fusion,
        alpha=settings.retrieval.alpha,
        stemmer=settings.retrieval.stemmer,
        batch_size=settings.embedding.batch_size,
        show_progress=sys.stderr.isatty(),
    )
    print(f"nDCG@10     {result['ndcg@10']:.4f}")
    print(f"recall@100  {result['recall@100']:.4f}")
    print(f"queries     {result['queries']}")
    print(json.dumps({key: result[key] for key in ("ndcg@10", "recall@100", "queries")}))
    return 0


def _eval_answers(args: argparse.Namespace) -> int:
    from .evals.answers import evaluate_answers, format_table, splits_of

    settings = _settings(args)
    splits = {"": Path(args.bundles)} if args.labels else splits_of(args.bundles)
    results = {}
    for name, folder in splits.items():
        keep = Path(args.answers_dir) / name if args.answers_dir and name else args.answers_dir
        scores, overall = evaluate_answers(
            folder, settings=settings, labels_file=args.labels, answers_dir=keep
        )
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

"""Answering a folder of bundles: one output file each, in parallel, resumable.

Every ``*.txt`` file in the folder is a bundle. Its answer goes to ``OUT/<name>.json``
(or ``.md``, ``.html``), written through a temporary file and a rename, so an answer
file that exists is complete; a second run skips the bundles whose answer exists and
answers the rest, which makes an interrupted batch resumable. A bundle that cannot be
answered (malformed, or the backend failed on it) is recorded with its error and the
batch goes on. The embedding model is loaded once and shared by the worker threads
(``explain`` is thread-safe).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from ._files import write_atomic
from .answer import Answer
from .config import AnswerFormat, ErrorCategory, Settings, load_settings
from .embeddings import Embedder, select_embedder
from .errors import ConfigError, GroundedAnswerError, UserInputError
from .pipeline import explain

__all__ = ["FORMATS", "BatchItem", "Format", "bundle_files", "render", "run_batch"]

Format = AnswerFormat

#: Output format -> file suffix.
FORMATS: dict[str, str] = {"json": ".json", "markdown": ".md", "html": ".html"}


class BatchItem(BaseModel):
    """What happened to one bundle of a batch."""

    bundle: str = Field(description="The bundle file's name.")
    status: Literal["answered", "skipped", "failed"] = Field(
        description="'skipped': its answer file existed already (a resumed batch)."
    )
    output: str | None = Field(default=None, description="The answer file, if any.")
    seconds: float = Field(default=0.0, description="Time spent answering it.")
    answerable: bool | None = Field(default=None, description="The answer's verdict.")
    references: int | None = Field(default=None, description="References in the answer.")
    error: str | None = Field(default=None, description="Why it failed: one line.")
    category: ErrorCategory | None = Field(
        default=None,
        description="'user_input': the bundle is bad; 'runtime': the backend "
        "or the machine failed (retrying may help).",
    )


def bundle_files(folder: str | Path) -> list[Path]:
    """The bundles of ``folder``: its ``*.txt`` files, by name.

    Raises:
        ConfigError: the folder does not exist or holds no ``*.txt`` file.

    """
    root = Path(folder)
    if not root.is_dir():
        raise ConfigError(f"{folder}: no such folder of bundles")
    files = sorted(path for path in root.glob("*.txt") if path.is_file())
    if not files:
        raise ConfigError(f"{folder}: no bundle files (*.txt) in it")
    return files


def run_batch(
    bundles: str | Path,
    out: str | Path,
    *,
    fmt: Format = "json",
    jobs: int = 1,
    settings: Settings | None = None,
    embedder: Embedder | None = None,
    on_item: Callable[[BatchItem], None] | None = None,
) -> list[BatchItem]:
    """Answer every bundle in ``bundles`` into ``out``; returns one item per bundle, by name.

    Args:
        bundles: The folder of bundle files.
        out: The folder for the answers; created if missing.
        fmt: ``json``, ``markdown`` or ``html``.
        jobs: Bundles answered at once (threads); the LLM call dominates, so match it to
            what the LLM server runs in parallel.
        settings: Configuration; default :func:`load_settings`.
        embedder: An embedder to share instead of the configured one.
        on_item: Called (in the calling thread) as each bundle is done, for progress.

    Raises:
        ConfigError: no such folder, no bundles, an unusable output folder or option.

    """
    if fmt not in FORMATS:
        raise ConfigError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    if jobs < 1:
        raise ConfigError(f"--jobs must be at least 1, not {jobs}")
    files = bundle_files(bundles)
    target = Path(out)
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{out}: cannot create the output folder ({exc.strerror})") from None
    settings = settings or load_settings()
    items: dict[str, BatchItem] = {}
    todo: list[tuple[Path, Path]] = []
    for path in files:
        output = target / (path.stem + FORMATS[fmt])
        if output.is_file() and output.stat().st_size > 0:
            items[path.name] = BatchItem(bundle=path.name, status="skipped", output=str(output))
            if on_item:
                on_item(items[path.name])
        else:
            todo.append((path, output))
    if todo:
        shared = embedder or select_embedder(settings)
        for item in _answer_all(todo, fmt, jobs, settings, shared):
            items[item.bundle] = item
            if on_item:
                on_item(item)
    return [items[path.name] for path in files]


def _answer_all(
    todo: list[tuple[Path, Path]],
    fmt: Format,
    jobs: int,
    settings: Settings,
    embedder: Embedder,
) -> Iterator[BatchItem]:
    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="grounded-answer-batch") as pool:
        futures: dict[Future[BatchItem], Path] = {
            pool.submit(_answer_one, path, output, fmt, settings, embedder): path
            for path, output in todo
        }
        try:
            for future in as_completed(futures):
                yield future.result()
        finally:
            # Interrupted (Ctrl-C): start nothing new; what was written stays written.
            for future in futures:
                future.cancel()


def _answer_one(
    path: Path, output: Path, fmt: Format, settings: Settings, embedder: Embedder
) -> BatchItem:
    started = time.perf_counter()
    try:
        answer = explain(bundle=path, settings=settings, embedder=embedder)
        write_atomic(output, render(answer, fmt))
    except GroundedAnswerError as exc:
        return BatchItem(
            bundle=path.name,
            status="failed",
            seconds=round(time.perf_counter() - started, 3),
            error=" ".join(str(exc).split()),
            category="user_input" if isinstance(exc, UserInputError) else "runtime",
        )
    except OSError as exc:
        return BatchItem(
            bundle=path.name,
            status="failed",
            seconds=round(time.perf_counter() - started, 3),
            error=f"cannot write {output}: {exc.strerror or exc}",
            category="runtime",
        )
    return BatchItem(
        bundle=path.name,
        status="answered",
        output=str(output),
        seconds=round(time.perf_counter() - started, 3),
        answerable=answer.answerable,
        references=len(answer.references),
    )


def render(answer: Answer, fmt: Format) -> str:
    """The answer as a file in format ``fmt``."""
    if fmt == "json":
        return answer.to_json() + "\n"
    if fmt == "html":
        return answer.to_html()
    return answer.to_markdown()

"""The one place the embedder is chosen, for the CLI, ``explain()`` and the server alike.

Whoever needs vectors first (an index build, a query, the server's start) gets the same
embedder from the same settings, so passages and questions are always encoded by one
model and an export made for one is there for every other.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ConfigError, IndexStoreError
from .base import Embedder
from .devices import BuildEmbedder, resolve_device
from .onnx import OnnxEmbedder, find_onnx
from .onnx_format import Variant
from .sentence_transformers import SentenceTransformerEmbedder

if TYPE_CHECKING:
    from ..config import Settings

__all__ = ["build_embedder", "select_embedder"]

_log = logging.getLogger(__name__)
# Export failures per (model, cache directory), so a process tries once, not per query.
_FAILED: dict[tuple[str, str], str] = {}


def select_embedder(settings: Settings) -> Embedder:
    """The embedder ``settings.embedding`` asks for (see ``EmbeddingSettings.backend``).

    ``auto`` is the fast path: the int8 ONNX export, made and checked the first time it
    is needed (a one-line note on stderr while that happens, once per export directory),
    then loaded in milliseconds without torch. When it cannot be made, sentence-
    transformers answers and ``fallback_reason`` on the returned embedder says why.
    ``torch`` is always sentence-transformers; ``onnx`` and ``onnx-int8`` make their
    export on first use and fail loudly if they cannot. Exports live in
    ``embedding.export_dir``, else ``index.cache_dir``.

    Raises:
        ConfigError: an unknown backend, or a missing package for ``onnx``/``onnx-int8``.
        IndexStoreError: ``onnx``/``onnx-int8`` could not make or check the export.

    """
    model = settings.embedding.model
    cache_dir = settings.embedding.export_dir or settings.index.cache_dir
    threads = settings.embedding.threads or None
    backend = settings.embedding.backend
    if settings.embedding.query_device != "cpu":
        device = resolve_device(settings.embedding.query_device)
        if device != "cpu":
            if backend not in ("auto", "torch"):
                raise ConfigError(
                    f"embedding.query_device is {settings.embedding.query_device!r}, but the "
                    f"{backend!r} backend runs on the CPU; use backend 'torch' (or 'auto')"
                )
            return SentenceTransformerEmbedder(model, threads=threads, device=device)
    if backend == "torch":
        return SentenceTransformerEmbedder(model, threads=threads)
    if backend in ("onnx", "onnx-int8"):
        # Making an export needs numpy and onnx: imported when one is asked for, not before.
        from .onnx_export import prepare_onnx

        variant: Variant = "int8" if backend == "onnx-int8" else "exact"
        return prepare_onnx(model, cache_dir, threads=threads, variant=variant)
    if backend != "auto":
        raise ConfigError(
            f"unknown embedding backend {backend!r}; use auto, torch, onnx or onnx-int8"
        )
    found = find_onnx(model, cache_dir, threads=threads, variant="int8")
    if found is not None:
        return found
    key = (str(model), str(cache_dir))
    reason = _FAILED.get(key)
    if reason is None:
        try:
            return _prepare_with_note(model, cache_dir, threads)
        except (ConfigError, IndexStoreError) as exc:
            reason = f"the fast query encoder could not be prepared ({exc})"
            _FAILED[key] = reason
            _log.warning("queries use sentence-transformers: %s", reason)
    fallback = SentenceTransformerEmbedder(model, threads=threads)
    fallback.fallback_reason = reason
    return fallback


def _prepare_with_note(model: str | None, cache_dir: Path, threads: int | None) -> OnnxEmbedder:
    print(
        "grounded-answer: preparing the fast query encoder (ONNX export of the embedding "
        f"model, int8, checked), once for {cache_dir} ...",
        file=sys.stderr,
        flush=True,
    )
    started = time.perf_counter()
    steps = iter(range(1, 5))

    def progress(what: str) -> None:
        print(
            f"grounded-answer:   [{next(steps, 4)}/4] {what} "
            f"({time.perf_counter() - started:.0f}s)",
            file=sys.stderr,
            flush=True,
        )

    from .onnx_export import prepare_onnx

    made = prepare_onnx(model, cache_dir, threads=threads, variant="int8", progress=progress)
    print(
        f"grounded-answer: query encoder ready in {time.perf_counter() - started:.1f}s",
        file=sys.stderr,
        flush=True,
    )
    return made


def build_embedder(
    settings: Settings, query: Embedder | None = None, *, accelerator: Embedder | None = None
) -> BuildEmbedder:
    """The embedder an index build uses: the queries' model, on ``embedding.device``.

    Its vectors carry the query embedder's id (``query``, else :func:`select_embedder`'s),
    so an index built on a GPU is searched by questions encoded on the CPU; the parity
    check in :class:`~grounded_answer.embeddings.devices.BuildEmbedder` is what makes that
    claim true. The device is chosen when the first passage is embedded, so a store that
    is already built opens anywhere, whatever ``embedding.device`` says (a GPU named there
    and absent here is an error only when something must be embedded).
    """
    return BuildEmbedder(
        select_embedder(settings) if query is None else query,
        settings.embedding,
        accelerator=accelerator,
    )

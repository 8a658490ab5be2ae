"""The embedding model run by sentence-transformers (and torch): the reference vectors.

Passages of a fresh index, the ONNX export's parity check and the fallback when no export
can be made all use this embedder. The model is always loaded by path with the hub
switched off (a name lookup stalls for a minute offline). sentence-transformers and torch
are imported on first use only, so ``import grounded_answer`` stays fast.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, IndexStoreError
from .base import PACKAGED_MODEL, LoadedOnce, model_id_of, packaged_model_path

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = ["SentenceTransformerEmbedder", "encode_pipelined"]

_MODELS: LoadedOnce[Any] = LoadedOnce()
_ENCODE_LOCKS: LoadedOnce[threading.Lock] = LoadedOnce()
#: The Rust tokenizer of each model on an accelerator, set up for encode_pipelined; None
#: when the model needs sentence-transformers' own preprocessing (prompts, lower-casing).
_TOKENIZERS: LoadedOnce[Any] = LoadedOnce()


class SentenceTransformerEmbedder:
    """A sentence-transformers model loaded from a local path, strictly offline.

    Loading is shared: every instance with the same path, thread count, device and
    precision uses one model object, loaded once even when many threads ask at once.
    ``device`` is a torch device name (``cpu``, ``cuda``, ``cuda:1``, ``mps``); ``half``
    runs the model in float16 there, as index builds on a GPU do (see
    :mod:`grounded_answer.embeddings.devices`, which checks such vectors against the CPU's).
    Vectors always come back as float32.
    """

    def __init__(
        self,
        model: str | Path | None = None,
        *,
        threads: int | None = 1,
        device: str = "cpu",
        half: bool = False,
    ) -> None:
        self._path = None if model is None else str(model)
        self._threads = threads
        self.device = device
        self.half = half
        #: Why this embedder answers instead of the fast ONNX path, when it is a fallback.
        self.fallback_reason: str | None = None

    @property
    def model_id(self) -> str:
        """The packaged model's hub name, or the local path of another model."""
        return model_id_of(self._path)

    @property
    def dimension(self) -> int:
        """Read from the loaded model (loads it if needed)."""
        return int(self.loaded().get_embedding_dimension())

    def encode(
        self, texts: Sequence[str], *, batch_size: int = 64, show_progress: bool = False
    ) -> NDArray[np.float32]:
        """Encode with mean pooling and normalisation, as the model was trained."""
        import numpy as np

        model = self.loaded()
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        key = self._key()
        # One encode at a time per model (shared by every instance with the same key):
        # torch modules are not re-entrant across threads.
        with _ENCODE_LOCKS.get(key, threading.Lock):
            _keep_threads(self._threads)
            tokenizer = (
                None
                if self.device == "cpu" or len(texts) <= batch_size
                else _TOKENIZERS.get(key, lambda: fast_tokenizer(model))
            )
            if tokenizer is not None:
                made: NDArray[np.float32] = _on_device(
                    lambda: encode_pipelined(
                        model, texts, batch_size=batch_size, tokenizer=tokenizer
                    )
                )
                return made
            vectors = _on_device(
                lambda: model.encode(
                    list(texts),
                    batch_size=batch_size,
                    normalize_embeddings=True,
                    convert_to_numpy=True,
                    show_progress_bar=show_progress,
                )
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def _key(self) -> tuple[str, int | None, str, bool]:
        return (self._path or PACKAGED_MODEL, self._threads, self.device, self.half)

    def loaded(self) -> Any:
        """The ``SentenceTransformer`` object itself, loaded on first use and shared.

        The ONNX export traces this object: at index time it is the one that just encoded
        the corpus, so exporting loads nothing twice.
        """
        return _MODELS.get(
            self._key(), lambda: _load(self._path, self._threads, self.device, self.half)
        )


def fast_tokenizer(model: Any) -> Any:
    """The model's Rust tokenizer, unpadded and truncated as the model truncates, or None.

    None when ``SentenceTransformer.encode`` does more than tokenise (a default prompt, a
    lower-casing module) or the model has no fast tokenizer: those keep ``encode``.
    """
    from tokenizers import Tokenizer

    first = model[0] if len(model) else None
    backend = getattr(getattr(model, "tokenizer", None), "backend_tokenizer", None)
    if (
        backend is None
        or getattr(model, "default_prompt_name", None)
        or getattr(first, "do_lower_case", False)
        or model.max_seq_length is None
    ):
        return None
    tokenizer = Tokenizer.from_str(backend.to_str())
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=int(model.max_seq_length))
    return tokenizer


def _on_device(work: Callable[[], Any]) -> Any:
    """Run ``work``; a device out of memory becomes an error that says what to change."""
    import torch

    try:
        return work()
    except torch.OutOfMemoryError as exc:
        raise IndexStoreError(
            f"the accelerator ran out of memory ({str(exc).splitlines()[0][:160]}); lower "
            "embedding.batch_size (grounded-answer index --batch-size)"
        ) from None


def encode_pipelined(
    model: Any, texts: Sequence[str], *, batch_size: int = 1024, tokenizer: Any = None
) -> NDArray[np.float32]:
    """Encode on the model's device while a pool of threads tokenises the next batches.

    On a GPU the model is not what limits a build: the tokenizer behind
    ``SentenceTransformer.encode`` turns texts into tensors several times slower than the
    float16 forward pass consumes them (docs/scaling.md, has the figures). So
    this path tokenises with the Rust tokenizer (which releases the GIL) on a pool of
    threads, a few batches ahead, pads each length-sorted batch with numpy, and overlaps
    that with the device's work. The pool does not depend on ``TOKENIZERS_PARALLELISM``,
    which this package sets to false for single queries. Truncation and special tokens
    are the model's own; the vectors are the ones ``encode`` gives (the parity check of a
    build compares them with the CPU's).
    """
    from collections import deque
    from concurrent.futures import Future, ThreadPoolExecutor

    import numpy as np
    import torch

    tokenizer = tokenizer or fast_tokenizer(model)
    if tokenizer is None:
        raise ConfigError(
            "this model needs sentence-transformers' own preprocessing "
            "(a prompt or lower-casing): use its encode()"
        )
    pad = getattr(model.tokenizer, "pad_token_id", None) or 0
    device = next(model.parameters()).device
    order = np.argsort([-len(text) for text in texts], kind="stable")
    batches = [order[start : start + batch_size] for start in range(0, len(order), batch_size)]

    def tensors(rows: NDArray[np.int64]) -> dict[str, Any]:
        encodings = tokenizer.encode_batch([texts[int(row)].strip() for row in rows])
        width = max(len(encoding.ids) for encoding in encodings)
        arrays = {
            name: np.zeros((len(encodings), width), dtype=np.int64)
            for name in ("input_ids", "attention_mask", "token_type_ids")
        }
        arrays["input_ids"][:] = pad
        for row, encoding in enumerate(encodings):
            size = len(encoding.ids)
            arrays["input_ids"][row, :size] = encoding.ids
            arrays["attention_mask"][row, :size] = encoding.attention_mask
            arrays["token_type_ids"][row, :size] = encoding.type_ids
        return {name: torch.from_numpy(array) for name, array in arrays.items()}

    out = np.empty((len(texts), model.get_embedding_dimension()), dtype=np.float32)
    workers = max(1, min(8, os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool, torch.inference_mode():
        ahead: deque[Future[dict[str, Any]]] = deque()
        upcoming = iter(batches)
        for rows in batches:
            while len(ahead) < workers + 1:
                following = next(upcoming, None)
                if following is None:
                    break
                ahead.append(pool.submit(tensors, following))
            features = ahead.popleft().result()
            on_device = {
                name: value.to(device, non_blocking=True) for name, value in features.items()
            }
            vectors = model(on_device)["sentence_embedding"]
            vectors = torch.nn.functional.normalize(vectors.float(), dim=1)
            out[rows] = vectors.cpu().numpy()
    return out


def _keep_threads(threads: int | None) -> None:
    # torch's thread count is process-wide: importing faiss (whose OpenMP runtime torch
    # may share) or other code can change it after the model was loaded. Checking costs
    # microseconds; two threads on a busy 2-core machine cost hundreds of milliseconds.
    if threads:
        import torch

        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)


def _load(path: str | None, threads: int | None, device: str, half: bool) -> Any:
    # The hub is never asked: offline, a name lookup stalls for a long time before failing.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        import torch
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ConfigError(
            f"the embedding model needs sentence-transformers and torch ({exc}); "
            "install them with scripts/setup or `pip install grounded-answer`"
        ) from exc
    if threads:
        torch.set_num_threads(threads)
    try:  # a weight-loading progress bar on every start is noise in a CLI
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    except ImportError:  # pragma: no cover - transformers comes with sentence-transformers
        pass
    if path is None:
        path = str(packaged_model_path())
    elif not Path(path).exists():
        raise ConfigError(
            f"embedding model path {path!r} does not exist (models load from disk only)"
        )
    try:
        model = SentenceTransformer(path, device=device, local_files_only=True)
    except Exception as exc:  # the library raises many unrelated types for a bad folder
        raise ConfigError(f"cannot load embedding model from {path!r} on {device}: {exc}") from exc
    return model.half() if half else model

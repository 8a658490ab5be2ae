"""The embedding model run by sentence-transformers (and torch): the reference vectors.

Passages of a fresh index, the ONNX export's parity check and the fallback when no export
can be made all use this embedder. The model is always loaded by path with the hub
switched off (a name lookup stalls for a minute offline). sentence-transformers and torch
are imported on first use only, so ``import grounded_answer`` stays fast.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from .base import PACKAGED_MODEL, model_id_of, packaged_model_path

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = ["SentenceTransformerEmbedder"]

_MODELS: dict[tuple[str, int | None, str, bool], Any] = {}
_MODELS_LOCK = threading.Lock()


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
        self._lock = threading.Lock()
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
        # One encode at a time per model: torch modules are not re-entrant across threads.
        with self._lock:
            _keep_threads(self._threads)
            vectors = model.encode(
                list(texts),
                batch_size=batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=show_progress,
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def loaded(self) -> Any:
        """The ``SentenceTransformer`` object itself, loaded on first use and shared.

        The ONNX export traces this object: at index time it is the one that just encoded
        the corpus, so exporting loads nothing twice.
        """
        key = (self._path or PACKAGED_MODEL, self._threads, self.device, self.half)
        model = _MODELS.get(key)
        if model is not None:
            return model
        with _MODELS_LOCK:
            model = _MODELS.get(key)
            if model is None:
                model = _load(self._path, self._threads, self.device, self.half)
                _MODELS[key] = model
        return model


def _keep_threads(threads: int | None) -> None:
    # torch's thread count is process-wide: importing faiss (whose OpenMP runtime torch
    # may share) or other code can change it after the model was loaded. Checking costs
    # microseconds; two threads on a busy 2-core machine cost hundreds of milliseconds.
    if threads:
        import torch

        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)


def _load(path: str | None, threads: int | None, device: str, half: bool) -> Any:
    # The hub is never asked: a name lookup stalls ~70 s offline before failing.
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
        raise ConfigError(
            f"cannot load embedding model from {path!r} on {device}: {exc}") from exc
    return model.half() if half else model

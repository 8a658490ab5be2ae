"""Where index builds run: a GPU when there is one, checked against the CPU's vectors.

Building an index is the one step whose cost grows with the corpus; on a GPU the same
model runs far faster (benchmarks/gpu_build.py; docs/scaling.md). Queries
stay on the CPU path (one short text: the ONNX export answers in milliseconds), so a
build on a GPU must give the vectors a CPU would: :class:`BuildEmbedder` encodes a sample
on both before it embeds anything else, refuses the build when any passage's cosine
falls below :data:`PARITY_TOLERANCE`, and leaves a :class:`BuildRecord` for the store's
manifest.

The GPU runs the exact model (sentence-transformers, float16). The int8 ONNX export that
queries use by default is a CPU quantisation whose vectors no GPU makes, so a GPU build
needs ``embedding.backend`` = ``onnx`` or ``torch`` (queries then use the exact model).
torch is imported only when a build is large enough to be worth a GPU.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

from ..errors import ConfigError, IndexStoreError
from .base import Embedder, model_id_of
from .sentence_transformers import SentenceTransformerEmbedder

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from ..config import EmbeddingSettings

__all__ = [
    "GPU_MIN_PASSAGES",
    "PARITY_SAMPLE",
    "PARITY_TOLERANCE",
    "BuildEmbedder",
    "BuildRecord",
    "check_parity",
    "resolve_device",
]

_log = logging.getLogger(__name__)

#: Below this many passages to embed, ``device="auto"`` stays on the CPU: loading the
#: model onto a GPU and checking parity cost seconds that a small build never wins back.
GPU_MIN_PASSAGES = 4096
#: Passages encoded on both devices before a GPU build; every one must agree.
PARITY_SAMPLE = 64
#: Least cosine between a passage's GPU and CPU vectors (float16 stays well above it).
PARITY_TOLERANCE = 0.999


class BuildRecord(BaseModel):
    """How a store's latest vectors were made, kept in its manifest."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    device: str
    precision: str
    parity_sample: int = 0
    parity_min_cosine: float | None = None
    parity_tolerance: float | None = None


def resolve_device(requested: str) -> str:
    """The torch device an index build runs on: ``auto`` is CUDA, then MPS, then the CPU.

    Raises:
        ConfigError: a GPU was asked for by name and torch cannot see it (no driver, a
            CPU build of torch, or the model needs torch and it is not installed).

    """
    if requested == "cpu":
        return "cpu"
    try:
        import torch
    except ImportError:
        if requested == "auto":
            return "cpu"
        raise ConfigError(
            f"embedding.device is {requested!r}, but torch is not installed; use 'auto' or 'cpu'"
        ) from None
    cuda = bool(torch.cuda.is_available())
    mps_backend = getattr(torch.backends, "mps", None)
    mps = bool(mps_backend is not None and mps_backend.is_available())
    if requested == "auto":
        return "cuda" if cuda else "mps" if mps else "cpu"
    if (requested == "cuda" and cuda) or (requested == "mps" and mps):
        return requested
    if requested not in ("cuda", "mps"):
        raise ConfigError(f"unknown embedding.device {requested!r}; use auto, cpu, cuda or mps")
    build = (
        "a CPU-only build"
        if requested == "cuda" and not torch.version.cuda
        else "no usable device or driver"
    )
    raise ConfigError(
        f"embedding.device is {requested!r}, but torch {torch.__version__} cannot use it "
        f"({build}); set embedding.device to 'auto' to build on the CPU when there is no GPU"
    )


def check_parity(
    reference: NDArray[np.float32],
    candidate: NDArray[np.float32],
    tolerance: float = PARITY_TOLERANCE,
) -> float:
    """The least row-wise cosine of two vector sets; an error when it is below ``tolerance``.

    Raises:
        IndexStoreError: the shapes differ, a vector is not finite (float16 overflow gives
            inf and NaN), or some row's cosine is below ``tolerance`` (the message names
            the row and its cosine).

    """
    import numpy as np

    if reference.shape != candidate.shape or reference.ndim != 2 or not len(reference):
        raise IndexStoreError(
            f"parity check: vector sets of shapes {reference.shape} and {candidate.shape}"
        )
    a = reference.astype(np.float64)
    b = candidate.astype(np.float64)
    with np.errstate(all="ignore"):
        a /= np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
        b /= np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
        cosines = np.sum(a * b, axis=1)
    # NaN compares false with everything: count a non-finite row as the worst one.
    cosines = np.where(np.isfinite(cosines), cosines, -np.inf)
    worst = int(np.argmin(cosines))
    least = float(cosines[worst])
    if least < tolerance:
        raise IndexStoreError(
            f"vectors made on the accelerator disagree with the CPU's: sample passage {worst} "
            f"has cosine {least:.5f} < {tolerance}; nothing was written. Set "
            "embedding.device = 'cpu' to build on the CPU"
        )
    return least


def _require_finite(vectors: NDArray[np.float32]) -> None:
    import numpy as np

    finite = np.isfinite(vectors).all(axis=1)
    if not finite.all():
        raise IndexStoreError(
            f"the accelerator made {int((~finite).sum())} vectors that are not finite (float16 "
            "overflow?); nothing was written. Set embedding.device = 'cpu' to build on the CPU"
        )


class BuildEmbedder:
    """Embeds an index build's passages on the configured device, under the queries' id.

    Stores hand it the number of passages they are about to embed (:meth:`expect`); the
    device is chosen on the first :meth:`encode` (torch is imported only then, and only for
    a build of at least :data:`GPU_MIN_PASSAGES` under ``auto``). On a GPU it first encodes
    a sample on both devices and checks them (:func:`check_parity`); :attr:`record` then
    says where the vectors were made. On the CPU it is the query embedder itself.

    ``accelerator`` replaces the device choice with an embedder of your own (another
    runtime, a remote service): it is held to the same parity check.
    """

    def __init__(
        self,
        query: Embedder,
        settings: EmbeddingSettings,
        *,
        accelerator: Embedder | None = None,
    ) -> None:
        self.query = query
        self._settings = settings
        self._lock = threading.Lock()  # one device choice and one parity check per build
        self._checked = False
        self._expected = 0
        self._device: str | None = None if accelerator is None else "accelerator"
        self._accelerated = accelerator
        #: Where the latest vectors were made (None before any encode).
        self.record: BuildRecord | None = None

    @property
    def model_id(self) -> str:
        """The query embedder's: vectors from either device are interchangeable."""
        return self.query.model_id

    @property
    def dimension(self) -> int:
        """The query embedder's dimension."""
        return self.query.dimension

    def expect(self, passages: int) -> None:
        """Tell the embedder how many passages the build will embed (decides ``auto``)."""
        self._expected = max(self._expected, passages)

    def encode(
        self, texts: Sequence[str], *, batch_size: int = 64, show_progress: bool = False
    ) -> NDArray[np.float32]:
        """The texts' vectors, made on the chosen device (parity checked first on a GPU).

        Raises:
            IndexStoreError: the accelerator's vectors disagree with the CPU's on the
                sample, or any vector it made is not finite.

        """
        if not texts:
            return self.query.encode(texts, batch_size=batch_size)
        with self._lock:
            accelerated = self._choose(len(texts))
            if accelerated is None:
                self.record = BuildRecord(device="cpu", precision="as queries")
            elif not self._checked:
                # A sample spread over the first texts, checked before anything is written.
                step = max(1, len(texts) // PARITY_SAMPLE)
                sample = list(texts[::step][:PARITY_SAMPLE])
                least = check_parity(
                    self.query.encode(sample, batch_size=batch_size),
                    accelerated.encode(sample, batch_size=batch_size),
                )
                half = getattr(accelerated, "half", None)
                self.record = BuildRecord(
                    device=str(getattr(accelerated, "device", self._device)),
                    precision="float32" if half is False else "float16" if half else "unknown",
                    parity_sample=len(sample),
                    parity_min_cosine=round(least, 6),
                    parity_tolerance=PARITY_TOLERANCE,
                )
                self._checked = True
        if accelerated is None:
            return self.query.encode(texts, batch_size=batch_size, show_progress=show_progress)
        vectors = accelerated.encode(texts, batch_size=batch_size, show_progress=show_progress)
        _require_finite(vectors)
        return vectors

    def _choose(self, texts: int) -> Embedder | None:
        if self._device is None:
            requested = self._settings.device
            size = max(self._expected, texts)
            if requested == "cpu" or (requested == "auto" and size < GPU_MIN_PASSAGES):
                self._device = "cpu"
            else:
                self._device = resolve_device(requested)
            if self._device != "cpu":
                self._accelerated = self._accelerator(requested)
        return self._accelerated

    def _accelerator(self, requested: str) -> Embedder | None:
        exact = model_id_of(self._settings.model)
        if self.query.model_id != exact:
            if requested == "auto":
                _log.warning(
                    "a %s device is present, but queries use %s, whose vectors only the CPU "
                    "makes: this build runs on the CPU (set embedding.backend to 'onnx' to "
                    "build on the GPU)",
                    self._device,
                    self.query.model_id,
                )
                self._device = "cpu"
                return None
            raise ConfigError(
                f"embedding.device is {requested!r}, but queries use {self.query.model_id}, "
                "whose vectors only the CPU makes (the int8 export); set embedding.backend "
                "to 'onnx' (the exact model; queries stay on the CPU) or 'torch' to build on "
                "the GPU, or embedding.device to 'cpu'"
            )
        return SentenceTransformerEmbedder(
            self._settings.model, threads=None, device=str(self._device), half=True
        )

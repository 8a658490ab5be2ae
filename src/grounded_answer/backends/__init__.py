"""LLM backends behind one small interface (see :mod:`.base`)."""

from .base import BACKENDS, Backend, Completion, CompletionRequest, make_backend

__all__ = ["BACKENDS", "Backend", "Completion", "CompletionRequest", "make_backend"]

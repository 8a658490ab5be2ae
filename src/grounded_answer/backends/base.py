"""The one interface every LLM backend implements, and choosing one by name.

A backend turns a :class:`CompletionRequest` into a :class:`Completion`: one method, no
knowledge of validation or repair (the pipeline owns those). Adding a backend is one
module with a class that has ``name``, ``model``, ``offline`` and ``complete``, plus a
line in :data:`BACKENDS`.
"""

from __future__ import annotations

import importlib
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from ..config import LLMSettings
from ..errors import ConfigError
from ..prompts import ChatMessage, PromptContext

__all__ = ["BACKENDS", "Backend", "Completion", "CompletionRequest", "make_backend"]

#: Backend name -> "module:class". Modules are imported only when chosen.
BACKENDS = {
    "stub": "grounded_answer.backends.stub:StubBackend",
    "openai": "grounded_answer.backends.openai:OpenAIBackend",
}


class CompletionRequest(BaseModel):
    """What the pipeline asks of a backend for one attempt."""

    model_config = ConfigDict(frozen=True)

    messages: list[ChatMessage]
    json_schema: dict[str, Any] | None = Field(
        description="The answer schema, aliases as an enum; None asks for plain text.")
    context: PromptContext = Field(description="Structured inputs, for offline backends.")
    attempt: int = Field(default=1, description="1 for the first try, 2+ for repairs.")
    errors: list[str] = Field(default_factory=list, description="Errors of the last attempt.")


class Completion(BaseModel):
    """A backend's raw answer text and what the server said about it."""

    model_config = ConfigDict(frozen=True)

    text: str
    finish_reason: str | None = None
    model: str = ""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    seconds: float = 0.0
    cached: bool = Field(default=False, description="Answered from the response cache.")


@runtime_checkable
class Backend(Protocol):
    """Anything that completes a chat request."""

    name: str
    model: str
    offline: bool

    def complete(self, request: CompletionRequest) -> Completion:
        """One completion; transient failures are retried inside, then a BackendError."""
        ...


def make_backend(settings: LLMSettings) -> Backend:
    """The backend named by ``settings.backend``."""
    target = BACKENDS.get(settings.backend)
    if target is None:
        raise ConfigError(
            f"unknown backend {settings.backend!r}; choose one of {', '.join(sorted(BACKENDS))}"
        )
    module_name, class_name = target.split(":")
    backend: Backend = getattr(importlib.import_module(module_name), class_name)(settings)
    return backend

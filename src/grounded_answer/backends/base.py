"""The one interface every LLM backend implements, and choosing one by name.

A backend turns a :class:`CompletionRequest` into a :class:`Completion`: one method, no
knowledge of validation or repair (the pipeline owns those). Adding a backend is one
module with a class that has ``name``, ``model``, ``offline`` and ``complete``, plus a
line in :data:`BACKENDS`.

A caller that may stop waiting (the HTTP server, when its client disconnects or a
deadline passes) hands the backend a :class:`Cancellation`. A backend that can abort its
request in flight says so with ``honours_cancel = True`` and takes ``cancel=`` in its
constructor; the others just run to the end, which for the offline stub is milliseconds.
"""

from __future__ import annotations

import contextlib
import importlib
import threading
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from ..config import LLMSettings
from ..errors import ConfigError, RunCancelledError
from ..writing.prompts import ChatMessage, PromptContext

__all__ = [
    "BACKENDS",
    "Backend",
    "Cancellation",
    "Completion",
    "CompletionRequest",
    "TokenChoice",
    "make_backend",
]

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
        description="The answer schema, aliases as an enum; None asks for plain text."
    )
    context: PromptContext = Field(description="Structured inputs, for offline backends.")
    attempt: int = Field(default=1, description="1 for the first try, 2+ for repairs.")
    errors: list[str] = Field(default_factory=list, description="Errors of the last attempt.")
    max_tokens: int | None = Field(
        default=None,
        ge=1,
        description="Overrides llm.max_tokens for this request (a judge's one-token answer).",
    )
    top_logprobs: int | None = Field(
        default=None,
        ge=1,
        le=20,
        description="Ask for the first token's most likely "
        "alternatives with their log-probabilities; a server that cannot is not an error.",
    )
    on_text: Callable[[str], None] | None = Field(
        default=None,
        exclude=True,
        description="Called with the text so far as it arrives "
        "(a backend that cannot stream calls it once, with the whole text), so a caller can "
        "check and show each part of an answer before the rest is written.",
    )


class TokenChoice(BaseModel):
    """One alternative for a generated token, with its log-probability."""

    model_config = ConfigDict(frozen=True)

    token: str
    logprob: float


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
    top_logprobs: list[TokenChoice] | None = Field(
        default=None,
        description="The first token's alternatives, when asked for and the server returned them.",
    )


@runtime_checkable
class Backend(Protocol):
    """Anything that completes a chat request."""

    name: str
    model: str
    offline: bool

    def complete(self, request: CompletionRequest) -> Completion:
        """One completion; transient failures are retried inside, then a BackendError."""
        ...


class Cancellation:
    """A one-way switch, set from any thread, that a running backend call listens to.

    ``cancel()`` is idempotent and runs each registered callback once, in the cancelling
    thread; a callback registered after cancellation runs at once. Backends use it to
    abort the request in flight and check :meth:`raise_if_cancelled` between attempts and
    during retry delays (:meth:`wait`), so nothing is sent after a cancel.
    """

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[], None]] = []
        self.reason = ""

    @property
    def cancelled(self) -> bool:
        """True once :meth:`cancel` was called."""
        return self._event.is_set()

    def cancel(self, reason: str = "cancelled") -> None:
        """Cancel, and run the callbacks registered so far (once each)."""
        with self._lock:
            if self._event.is_set():
                return
            self.reason = reason
            self._event.set()
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()

    def on_cancel(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback`` on cancellation; returns a function that unregisters it."""
        with self._lock:
            if not self._event.is_set():
                self._callbacks.append(callback)
                return lambda: self._forget(callback)
        callback()
        return lambda: None

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``, waking early on cancellation; True if cancelled."""
        return self._event.wait(seconds)

    def raise_if_cancelled(self, backend: str) -> None:
        """Raise :class:`RunCancelledError` if cancelled."""
        if self._event.is_set():
            raise RunCancelledError(f"{backend} backend: the run was {self.reason}")

    def _forget(self, callback: Callable[[], None]) -> None:
        with self._lock, contextlib.suppress(ValueError):
            self._callbacks.remove(callback)


def make_backend(settings: LLMSettings, *, cancel: Cancellation | None = None) -> Backend:
    """The backend named by ``settings.backend``, listening to ``cancel`` if it can."""
    target = BACKENDS.get(settings.backend)
    if target is None:
        raise ConfigError(
            f"unknown backend {settings.backend!r}; choose one of {', '.join(sorted(BACKENDS))}"
        )
    module_name, class_name = target.split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    listens = cancel is not None and getattr(cls, "honours_cancel", False)
    backend: Backend = cls(settings, cancel=cancel) if listens else cls(settings)
    return backend

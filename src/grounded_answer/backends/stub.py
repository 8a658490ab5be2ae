"""The offline backend: a deterministic, grounded answer with no language model.

It is the default, so it has to be useful on its own: it answers with the offline
writer's draft (:mod:`grounded_answer.writing.offline`), written from the evidence plan and nothing
else. Tests script it: outputs given in ``script`` are returned first, in order, and every
request is recorded, like pydantic-ai's ``TestModel``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from ..config import LLMSettings
from ..writing.offline import offline_draft
from .base import Completion, CompletionRequest

__all__ = ["StubBackend"]

Scripted = str | Callable[[CompletionRequest], str]


class StubBackend:
    """Offline, deterministic, scriptable."""

    name = "stub"
    offline = True

    def __init__(
        self, settings: LLMSettings | None = None, *, script: Sequence[Scripted] = ()
    ) -> None:
        self.model = "grounded-answer-stub"
        self.script = list(script)
        self.requests: list[CompletionRequest] = []
        self._lock = threading.Lock()

    def complete(self, request: CompletionRequest) -> Completion:
        """The next scripted output, else the offline answer for the request's context."""
        with self._lock:
            self.requests.append(request)
            scripted = self.script.pop(0) if self.script else None
        if scripted is None:
            text = offline_draft(request.context).model_dump_json()
        else:
            text = scripted(request) if callable(scripted) else scripted
        if request.on_text is not None:
            request.on_text(text)
        return Completion(text=text, finish_reason="stop", model=self.model)

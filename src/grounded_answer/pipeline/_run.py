"""The state of one ``explain()`` call, passed down its stages.

Each stage reads what it needs from the :class:`Run` and returns what it made; only three
things accumulate over the whole run, and they live here so no stage hides a side effect:
what the backend spent (:attr:`Run.usage`), how long each stage took
(:attr:`Run.timings`) and which sentences addressed to the model were kept out of its
prompts (:meth:`Run.withhold`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from ..answer import Usage
from ..backends.base import Backend
from ..config import Settings
from ..embeddings import Embedder
from ..grounding.injection import quarantine
from ..grounding.links import defang
from ..sources.corpus import Corpus
from ..writing.prompts import Prompts

__all__ = ["Run"]

_log = logging.getLogger("grounded_answer.pipeline")


@dataclass
class Run:
    """One question being answered: its inputs, and what every stage adds to the record."""

    question: str
    settings: Settings
    sources: Corpus
    backend: Backend
    embedder: Embedder
    prompts: Prompts
    started: float = field(default_factory=time.perf_counter)
    usage: Usage = field(default_factory=Usage)
    timings: dict[str, float] = field(default_factory=dict)
    #: (where, sentence) for each sentence withheld from a prompt, in order, once each.
    withheld: list[tuple[str, str]] = field(default_factory=list)
    #: What was taken out of text a model wrote outside the answer's sections.
    cleaned: list[str] = field(default_factory=list)
    #: Told of each stage's result as the run goes (``explain(on_event=...)``).
    on_event: Callable[[str, dict[str, Any]], None] | None = None

    @contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        """Add the time spent in the ``with`` block to ``timings[stage]``."""
        mark = time.perf_counter()
        try:
            yield
        finally:
            self.timings[stage] = self.timings.get(stage, 0.0) + time.perf_counter() - mark

    def withhold(self, text: str, where: str) -> str:
        """``text`` without the sentences that address the model; they are recorded.

        Source text and the question are data: sentences that address the model are not
        shown to it (see :mod:`grounded_answer.grounding.injection`).
        """
        kept, removed = quarantine(text)
        for sentence in removed:
            if (where, sentence) not in self.withheld:
                self.withheld.append((where, sentence))
        return kept

    def clean(self, text: str, where: str) -> str:
        """Text a model wrote outside the answer's sections, cleaned as the question is.

        A restatement or a judge's reason is untrusted like everything a model writes: a
        sentence that addresses a model is withheld, a link is made inert, and both are
        recorded, so the text can never fail the answer or reach a user as a link.
        """
        kept, removed = quarantine(text)
        for _ in removed:
            note = f"{where}: a sentence addressed to a model was withheld"
            if note not in self.cleaned:
                self.cleaned.append(note)
        inert = defang(kept)
        if inert != kept:
            note = f"{where}: a link the model wrote was made inert"
            if note not in self.cleaned:
                self.cleaned.append(note)
        return inert

    def emit(self, event: str, data: dict[str, Any]) -> None:
        """Tell the caller's ``on_event`` about progress; its failure never fails the run."""
        if self.on_event is None:
            return
        try:
            self.on_event(event, data)
        except Exception:  # a listener's bug (a closed stream) must not lose the answer
            _log.exception("on_event listener failed on %r", event)

"""The backend interface's own parts: choosing a backend by name, and Cancellation."""

from __future__ import annotations

import pytest

from grounded_answer.backends import Cancellation, make_backend
from grounded_answer.backends.openai import OpenAIBackend
from grounded_answer.backends.stub import StubBackend
from grounded_answer.config import LLMSettings
from grounded_answer.errors import RunCancelledError


def test_cancel_runs_each_callback_once_and_records_the_reason() -> None:
    cancel = Cancellation()
    calls: list[str] = []
    cancel.on_cancel(lambda: calls.append("a"))
    forget = cancel.on_cancel(lambda: calls.append("b"))
    forget()
    assert not cancel.cancelled
    cancel.cancel("timed out")
    cancel.cancel("again")
    assert calls == ["a"] and cancel.cancelled and cancel.reason == "timed out"
    cancel.on_cancel(lambda: calls.append("late"))  # registered after: runs at once
    assert calls == ["a", "late"]
    with pytest.raises(RunCancelledError, match="timed out"):
        cancel.raise_if_cancelled("openai")


def test_wait_returns_at_once_when_cancelled() -> None:
    cancel = Cancellation()
    assert cancel.wait(0) is False
    cancel.cancel()
    assert cancel.wait(3600) is True


def test_make_backend_hands_the_cancellation_to_backends_that_honour_it() -> None:
    cancel = Cancellation()
    openai = make_backend(LLMSettings(backend="openai", api_key="x"), cancel=cancel)
    assert isinstance(openai, OpenAIBackend) and openai._cancel is cancel
    # The stub answers in milliseconds and takes no cancellation.
    assert isinstance(make_backend(LLMSettings(), cancel=cancel), StubBackend)

"""OpenAI and every OpenAI-compatible server (vLLM, llama.cpp, Ollama) via the ``openai`` SDK.

Retries are ours, not the SDK's (it is built with ``max_retries=0``): connection errors,
timeouts, 429 and 5xx are retried up to ``llm.max_retries`` times with exponential backoff
that honours ``Retry-After``, each delay capped by ``llm.max_backoff``, and then a typed
:class:`~grounded_answer.errors.BackendError` says what happened. Structured output asks
for the answer's JSON schema (aliases as an enum) and, under ``structured_output="auto"``,
falls back to JSON mode once if the server refuses schemas. A body that is not a usable
completion (not JSON, no choices, no text) is a ``BackendResponseError``, never a traceback
from inside the SDK.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import email.utils
import logging
import math
import os
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from ..config import LLMSettings
from ..errors import (
    BackendConnectionError,
    BackendError,
    BackendRateLimitError,
    BackendResponseError,
    BackendTimeoutError,
    ConfigError,
    RunCancelledError,
)
from .base import Cancellation, Completion, CompletionRequest, TokenChoice

__all__ = ["OpenAIBackend"]

_log = logging.getLogger(__name__)


class OpenAIBackend:
    """Chat completions through the official client, with bounded, visible retries."""

    name = "openai"
    offline = False
    honours_cancel = True

    def __init__(
        self,
        settings: LLMSettings,
        *,
        client: Any | None = None,
        cancel: Cancellation | None = None,
    ) -> None:
        try:
            import openai
        except ImportError as exc:  # pragma: no cover - openai is a dependency
            raise ConfigError("the openai backend needs the openai package") from exc
        self._openai = openai
        self.settings = settings
        self.model = settings.model
        self._schema_refused = settings.structured_output == "json_object"
        self._usage_refused = False
        self.retries_used = 0
        self._cancel = cancel
        # An injected client is used as given (sync); cancellation then acts between calls.
        self._abortable = client is None and cancel is not None
        if client is None and not self._abortable:
            client = openai.OpenAI(**self._client_options())
        self._client = client

    def complete(self, request: CompletionRequest) -> Completion:
        """One completion, retried on transient failures only."""
        failures = 0
        while True:
            if self._cancel is not None:
                self._cancel.raise_if_cancelled(self.name)
            arguments = self._arguments(request)
            started = time.perf_counter()
            try:
                response = self._create(arguments, request.on_text)
            except self._openai.BadRequestError as exc:
                # Only 'auto' may fall back: 'json_schema' means the caller wants schemas.
                # And only a request that sent a schema was refused for it: a plain-text
                # request's 400 is about something else, and retrying it would not help.
                sent = arguments.get("response_format") or {}
                if (
                    self.settings.structured_output == "auto"
                    and sent.get("type") == "json_schema"
                    and _mentions_schema(exc)
                ):
                    _log.warning("server refused json_schema; falling back to JSON mode")
                    self._schema_refused = True
                    continue
                if (
                    "stream" in arguments
                    and not self._usage_refused
                    and "stream_options" in str(exc)
                ):
                    _log.warning("server refused stream_options; streaming without usage")
                    self._usage_refused = True
                    continue
                raise BackendResponseError(
                    f"request rejected (HTTP 400): {_short(exc)}",
                    backend=self.name,
                    attempts=failures + 1,
                ) from exc
            except self._openai.APIError as exc:
                error, delay = self._classify(exc, failures)
                if delay is None or failures >= self.settings.max_retries:
                    error.attempts = failures + 1
                    raise error from exc
                failures += 1
                self.retries_used += 1
                _log.warning(
                    "%s; retry %d/%d in %.2fs", error, failures, self.settings.max_retries, delay
                )
                if self._cancel is None:
                    time.sleep(delay)
                elif self._cancel.wait(delay):
                    raise self._cancelled() from exc
                continue
            except ValueError as exc:
                # The SDK decodes a body labelled JSON without wrapping a decode error.
                raise BackendResponseError(
                    f"malformed response body from {self._where} (not JSON: {_short(exc)})",
                    backend=self.name,
                    attempts=failures + 1,
                ) from exc
            try:
                return self._completion(response, time.perf_counter() - started)
            except BackendError as error:
                error.attempts = failures + 1
                raise

    def _client_options(self) -> dict[str, Any]:
        key = self.settings.api_key.get_secret_value() if self.settings.api_key else None
        return {
            "base_url": self.settings.base_url,
            "api_key": key or os.environ.get("OPENAI_API_KEY") or "unused",
            "timeout": self.settings.timeout,
            "max_retries": 0,
        }

    def _create(self, arguments: dict[str, Any], on_text: Callable[[str], None] | None) -> Any:
        if self._client is not None:
            response = self._client.chat.completions.create(**arguments)
            return _Streamed.collect(response, on_text) if on_text is not None else response
        # A private loop in this (worker) thread: explain() is synchronous, and a task
        # can be cancelled from another thread, which a blocking socket read cannot.
        return asyncio.run(self._create_abortable(arguments, on_text))

    async def _create_abortable(
        self, arguments: dict[str, Any], on_text: Callable[[str], None] | None
    ) -> Any:
        assert self._cancel is not None
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()

        def abort() -> None:
            with contextlib.suppress(RuntimeError):  # the loop already finished
                loop.call_soon_threadsafe(task.cancel)

        forget = self._cancel.on_cancel(abort)
        try:
            async with self._openai.AsyncOpenAI(**self._client_options()) as client:
                response = await client.chat.completions.create(**arguments)
                if on_text is None:
                    return response
                return await _Streamed.acollect(response, on_text)
        except asyncio.CancelledError:
            if self._cancel.cancelled:
                raise self._cancelled() from None
            raise
        finally:
            forget()

    def _cancelled(self) -> RunCancelledError:
        reason = self._cancel.reason if self._cancel is not None else "cancelled"
        return RunCancelledError(
            f"{self.name} backend: the request to {self._where} was aborted ({reason})"
        )

    @property
    def _where(self) -> str:
        return self.settings.base_url or "api.openai.com"

    def _arguments(self, request: CompletionRequest) -> dict[str, Any]:
        if self._schema_refused:
            response_format: dict[str, Any] = {"type": "json_object"}
        else:
            response_format = {
                "type": "json_schema",
                "json_schema": {
                    "name": "grounded_answer",
                    "strict": True,
                    "schema": request.json_schema,
                },
            }
        arguments = {
            "model": self.model,
            "messages": [m.model_dump() for m in request.messages],
            "temperature": self.settings.temperature,
            "max_tokens": self.settings.max_tokens,
            "response_format": response_format,
            "timeout": self.settings.timeout,
        }
        if request.json_schema is None:
            # Plain text (a translation): small models copy rather than translate when a
            # JSON schema holds them.
            del arguments["response_format"]
        if request.max_tokens is not None:
            arguments["max_tokens"] = request.max_tokens
        if request.on_text is not None:
            # Streamed, so each part of the answer can be checked and shown as it comes.
            arguments["stream"] = True
            if not self._usage_refused:
                arguments["stream_options"] = {"include_usage": True}
        if request.top_logprobs is not None:
            arguments.update(logprobs=True, top_logprobs=request.top_logprobs)
        return arguments

    def _classify(self, exc: Exception, failures: int) -> tuple[BackendError, float | None]:
        """Return the typed error for ``exc`` and the delay before a retry (None: no retry)."""
        openai = self._openai
        backoff = min(self.settings.backoff * (2**failures), self.settings.max_backoff)
        where = self._where
        if isinstance(exc, openai.APITimeoutError):
            return BackendTimeoutError(
                f"no answer from {where} within {self.settings.timeout:g}s", backend=self.name
            ), backoff
        if isinstance(exc, openai.APIConnectionError):
            return BackendConnectionError(
                f"cannot connect to {where}: {_short(exc)}", backend=self.name
            ), backoff
        if isinstance(exc, openai.RateLimitError):
            wait = _retry_after(exc)
            delay = backoff if wait is None else min(wait, self.settings.max_backoff)
            return BackendRateLimitError(
                f"rate limited (HTTP 429) by {where}", backend=self.name
            ), delay
        if isinstance(exc, openai.APIStatusError):
            status = exc.status_code
            retry = status >= 500 or status == 408
            wait = _retry_after(exc)
            delay = backoff if wait is None else min(wait, self.settings.max_backoff)
            return BackendResponseError(
                f"HTTP {status} from {where}: {_short(exc)}", backend=self.name
            ), delay if retry else None
        return BackendResponseError(
            f"unusable response from {where}: {_short(exc)}", backend=self.name
        ), None

    def _completion(self, response: Any, seconds: float) -> Completion:
        where = self._where
        choices = getattr(response, "choices", None)
        if not isinstance(choices, list):
            raise BackendResponseError(
                f"malformed response body from {where} (no 'choices' list)", backend=self.name
            )
        if not choices:
            raise BackendResponseError(f"empty 'choices' from {where}", backend=self.name)
        # Bodies are not validated by the SDK, so a choice may lack any field.
        message = getattr(choices[0], "message", None)
        content = getattr(message, "content", None)
        if not content or not isinstance(content, str):
            refusal = getattr(message, "refusal", None)
            raise BackendResponseError(
                f"the model refused: {refusal}" if refusal else f"empty message from {where}",
                backend=self.name,
            )
        finish_reason = getattr(choices[0], "finish_reason", None)
        model = getattr(response, "model", None)
        usage = getattr(response, "usage", None)
        return Completion(
            text=content,
            finish_reason=finish_reason if isinstance(finish_reason, str) else None,
            model=model if isinstance(model, str) and model else self.model,
            prompt_tokens=_count(getattr(usage, "prompt_tokens", None)),
            completion_tokens=_count(getattr(usage, "completion_tokens", None)),
            seconds=round(seconds, 4),
            top_logprobs=_first_token_choices(choices[0]),
        )


def _first_token_choices(choice: Any) -> list[TokenChoice] | None:
    """The first generated token's alternatives, if the server sent any usable ones."""
    content = getattr(getattr(choice, "logprobs", None), "content", None)
    if not isinstance(content, list) or not content:
        return None
    alternatives = getattr(content[0], "top_logprobs", None)
    if not isinstance(alternatives, list):
        return None
    found = []
    for item in alternatives:
        token, logprob = getattr(item, "token", None), getattr(item, "logprob", None)
        if (
            isinstance(token, str)
            and isinstance(logprob, int | float)
            and not isinstance(logprob, bool)
            and math.isfinite(logprob)
        ):
            found.append(TokenChoice(token=token, logprob=float(logprob)))
    return found or None


class _Streamed:
    """A streamed completion gathered into the shape of a non-streamed response."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.finish_reason: str | None = None
        self.model: str | None = None
        self.usage: Any = None

    def add(self, chunk: Any, on_text: Callable[[str], None]) -> None:
        self.model = getattr(chunk, "model", None) or self.model
        self.usage = getattr(chunk, "usage", None) or self.usage
        choices = getattr(chunk, "choices", None) or []
        if not choices:
            return
        delta = getattr(choices[0], "delta", None)
        text = getattr(delta, "content", None)
        self.finish_reason = getattr(choices[0], "finish_reason", None) or self.finish_reason
        if isinstance(text, str) and text:
            self.parts.append(text)
            on_text("".join(self.parts))

    @property
    def choices(self) -> list[Any]:
        message = SimpleNamespace(content="".join(self.parts) or None, refusal=None)
        return [SimpleNamespace(message=message, finish_reason=self.finish_reason, logprobs=None)]

    @classmethod
    def collect(cls, stream: Any, on_text: Callable[[str], None]) -> _Streamed:
        gathered = cls()
        for chunk in stream:
            gathered.add(chunk, on_text)
        return gathered

    @classmethod
    async def acollect(cls, stream: Any, on_text: Callable[[str], None]) -> _Streamed:
        gathered = cls()
        async for chunk in stream:
            gathered.add(chunk, on_text)
        return gathered


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _retry_after(exc: Exception) -> float | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None) or {}
    value = headers.get("retry-after-ms")
    if value:
        try:
            return max(0.0, float(value) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:  # an HTTP date; anything else is ignored (the backoff applies)
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed.tzinfo is None:  # "-0000" parses naive; HTTP dates are UTC
        parsed = parsed.replace(tzinfo=datetime.UTC)
    return max(0.0, parsed.timestamp() - time.time())


def _mentions_schema(exc: Exception) -> bool:
    text = str(exc).lower()
    return "response_format" in text or "json_schema" in text or "schema" in text


def _short(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return text[:300] + ("..." if len(text) > 300 else "")

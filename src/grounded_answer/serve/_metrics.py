"""The service's Prometheus metrics: one registry per app, or one directory per server.

Under one process the app's own :class:`~prometheus_client.CollectorRegistry` is served.
Under several workers (``serve --workers N``) each process writes its samples to files in
``PROMETHEUS_MULTIPROC_DIR`` (a fresh directory per server start, made by ``serve``) and
whichever worker answers ``/metrics`` adds them all up with a
:class:`~prometheus_client.multiprocess.MultiProcessCollector`; gauges sum over the live
workers. The variable must be set before ``prometheus_client`` is first imported, which
``serve`` does before it starts the workers.

What is measured (names and labels are listed in docs/service.md): requests by endpoint,
method and status, their latency; answers running and waiting, the wait for a slot; and,
read from each Answer's provenance after its run, the backend calls, their tokens, the
response cache's hits and misses, and the seconds of every pipeline stage the answer
timed (``plan``, ``generate``, ``judge``, whatever keys the pipeline records).
"""

from __future__ import annotations

import os
import re

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from ..answer import Answer

__all__ = ["CONTENT_TYPE", "ENDPOINTS", "Metrics", "endpoint_of"]

CONTENT_TYPE = CONTENT_TYPE_LATEST

#: The label a request's path gets; anything else is "other", so clients cannot grow the
#: number of series by inventing paths.
ENDPOINTS = (
    "/v1/explain",
    "/v1/explain/stream",
    "/healthz",
    "/readyz",
    "/metrics",
    "/",
    "/openapi.json",
)

#: Seconds: from a cached stub answer (milliseconds) to a slow local model (minutes).
_LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
_STAGE = re.compile(r"[a-z][a-z0-9_]{0,31}")


def endpoint_of(path: str) -> str:
    """The endpoint label for ``path``: a known route, ``/static``, or ``other``."""
    if path in ENDPOINTS:
        return path
    if path.startswith("/static/"):
        return "/static"
    return "other"


class Metrics:
    """Every metric the service records, and their exposition for ``/metrics``."""

    def __init__(self) -> None:
        self.multiprocess_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None
        self.registry = CollectorRegistry()
        registry = self.registry
        self.requests = Counter(
            "grounded_answer_http_requests",
            "HTTP requests answered, by endpoint, method and status.",
            ["endpoint", "method", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "grounded_answer_http_request_duration_seconds",
            "Seconds from a request's arrival to its last byte (a stream: to its end).",
            ["endpoint"],
            buckets=_LATENCY,
            registry=registry,
        )
        self.waiting = Gauge(
            "grounded_answer_queue_depth",
            "Requests waiting for an answer slot.",
            multiprocess_mode="livesum",
            registry=registry,
        )
        self.running = Gauge(
            "grounded_answer_answers_running",
            "Answers being computed now.",
            multiprocess_mode="livesum",
            registry=registry,
        )
        self.queue_wait = Histogram(
            "grounded_answer_queue_wait_seconds",
            "Seconds a request waited for a slot.",
            buckets=_LATENCY,
            registry=registry,
        )
        self.answers = Counter(
            "grounded_answer_answers",
            "Answers written, by backend and whether the sources answer the question.",
            ["backend", "answerable"],
            registry=registry,
        )
        self.llm_calls = Counter(
            "grounded_answer_llm_calls",
            "Backend calls made by answers; cached=true were answered by the response cache.",
            ["backend", "cached"],
            registry=registry,
        )
        self.llm_tokens = Counter(
            "grounded_answer_llm_tokens",
            "Tokens of the answers' completions as the LLM "
            "server reported them (a cached completion counts what it cost when made).",
            ["backend", "kind"],
            registry=registry,
        )
        self.cache = Counter(
            "grounded_answer_llm_cache_lookups",
            "Response cache lookups of online backends, by result (hit or miss).",
            ["result"],
            registry=registry,
        )
        self.stages = Histogram(
            "grounded_answer_stage_seconds",
            "Seconds per pipeline stage of each answer, "
            "from its provenance timings (e.g. plan, generate, judge).",
            ["stage"],
            buckets=_LATENCY,
            registry=registry,
        )

    def observe_request(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        """Count one finished request."""
        self.requests.labels(
            endpoint,
            method if method in ("GET", "POST", "HEAD", "OPTIONS") else "other",
            str(status),
        ).inc()
        self.latency.labels(endpoint).observe(seconds)

    def set_load(self, running: int, waiting: int) -> None:
        """The runner's numbers, after each change."""
        self.running.set(running)
        self.waiting.set(waiting)

    def observe_answer(self, answer: Answer, *, cache: bool) -> None:
        """Record what one answer's run spent (read from its provenance)."""
        provenance = answer.provenance
        usage = provenance.usage
        backend = provenance.backend
        self.answers.labels(backend, str(answer.answerable).lower()).inc()
        fresh = usage.calls - usage.cached_calls
        if fresh:
            self.llm_calls.labels(backend, "false").inc(fresh)
        if usage.cached_calls:
            self.llm_calls.labels(backend, "true").inc(usage.cached_calls)
        if usage.prompt_tokens:
            self.llm_tokens.labels(backend, "prompt").inc(usage.prompt_tokens)
        if usage.completion_tokens:
            self.llm_tokens.labels(backend, "completion").inc(usage.completion_tokens)
        if cache and not provenance.offline:
            if usage.cached_calls:
                self.cache.labels("hit").inc(usage.cached_calls)
            if fresh:
                self.cache.labels("miss").inc(fresh)
        for stage, seconds in provenance.timings.items():
            if _STAGE.fullmatch(stage) and seconds >= 0:
                self.stages.labels(stage).observe(seconds)

    def render(self) -> bytes:
        """The text exposition of every metric (all workers' under multiprocess mode)."""
        if self.multiprocess_dir is None:
            return generate_latest(self.registry)
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(  # type: ignore[no-untyped-call]
            registry, path=self.multiprocess_dir
        )
        return generate_latest(registry)

    def close(self) -> None:
        """Drop this process's live gauges from the shared directory (worker exit)."""
        if self.multiprocess_dir is not None:
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(  # type: ignore[no-untyped-call]
                os.getpid(), path=self.multiprocess_dir
            )

"""The FastAPI application: routes, the answer service behind them, error handlers.

Models are loaded once per process: the embedder (shared by every request), the
configured corpora and their indexes, and a check of the response cache. By default
they load in a background thread when the app starts, so ``/healthz`` answers at once and
``/readyz`` turns 200 when they are in (see :mod:`._lifecycle`); ``serve`` loads them
before it listens instead, to fail fast. Each request is checked before it takes a slot
(bad input is a 422 naming the field; a full server a 429), then answered by
:func:`~grounded_answer.explain` in a worker thread of the :class:`Runner`.

Layers around the routes, outermost first: request id, log line and metrics
(:class:`RequestContext`); CORS, only with ``serve.cors_origins``; security headers; the
readiness gate; API keys; the body limit.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.types import Receive, Scope, Send

from .. import __version__
from ..answer import Answer
from ..backends.base import Cancellation, make_backend
from ..backends.cache import response_store
from ..config import Settings
from ..embeddings import Embedder, select_embedder
from ..errors import ConfigError, GroundedAnswerError, UserInputError
from ..grounding.links import link_key
from ..pipeline import check_question, explain, retriever_for
from ..render import STATIC_DIR, workflow_svg
from ..sources import DEFAULT_CORPUS
from ..sources.bundle import Bundle, parse_bundle
from ..sources.corpus import Corpus, load_corpus
from . import _context
from ._auth import ApiKeys, Auth
from ._errors import CLIENT_CLOSED, Rejected, error_body, http_error
from ._lifecycle import Gate, Lifecycle
from ._metrics import CONTENT_TYPE, Metrics
from ._middleware import BodyLimit, RequestContext, SecurityHeaders
from ._models import ErrorBody, ExplainRequest, GraphEvent, Health, Readiness, StatusEvent
from ._runner import Run, Runner, Ticket

__all__ = ["AnswerService", "build_app"]

_log = logging.getLogger("grounded_answer.serve")

T = TypeVar("T")

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text}
    for code, text in {
        401: "No API key, or not a configured one (only when serve.api_keys are set); "
        "WWW-Authenticate says which.",
        413: "The body is larger than serve.max_body_bytes.",
        422: "Bad input: the body, bundle, question, corpus or backend (error.field says which).",
        429: "Every slot and the queue are taken; retry after Retry-After seconds.",
        500: "A failure on the server (configuration, index cache).",
        502: "The LLM backend is unreachable, answered badly, or kept breaking the "
        "grounding rules.",
        503: "The LLM backend is rate limiting us, or this server is starting or draining "
        "(ServiceUnavailable); retry after Retry-After seconds.",
        504: "No answer within serve.request_timeout, or the LLM backend timed out.",
    }.items()
}

_STREAM_DOC = """Server-sent events, each as soon as it is known and checked:

- `status` (`{"state": "queued", "ahead": n}` / `{"state": "running"}`)
- `plan` (the evidence plan, as soon as it is made; again after a language model judged
  its sources)
- `coverage` (`{"score", "method"}`: the model's reading of whether the models address
  the question) and `task_named` (`{"name"}`: the task as the model named it)
- `judgement` (one per source as the model reads it: `source_id`, `title`, `score`,
  `method`)
- `task` (Task), `step` (WorkflowStep; `id` says which), `reference` (Reference; `label`
  says which): each as soon as its text is written and passes its checks. These are
  previews: a section sent again replaces the one with the same `id`/`label`.
- `graph` (`svg`, `mermaid`, `summary`) once the workflow is final
- `answer` (the whole Answer, with its validation report), or `error`. The `answer`
  event replaces everything sent before it: show it, not the previews, once it comes
  (a section previewed earlier may have changed, or be gone).

Nothing that failed validation is ever sent. Closing the connection cancels the LLM call.
Errors found before the stream starts (bad input 4xx, 429) are plain JSON responses.
"""

#: Pipeline events (explain's on_event) forwarded to the stream under their own name.
_PROGRESS = ("plan", "coverage", "task_named", "judgement")


class AnswerService:
    """What every request shares: settings, the embedder, corpora, the runner, metrics."""

    def __init__(
        self,
        settings: Settings,
        *,
        embedder: Embedder | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        serve = settings.serve
        self.runner = Runner(
            max_concurrent=serve.max_concurrent,
            max_queue=serve.max_queue,
            timeout=serve.request_timeout,
            observe=None if metrics is None else metrics.set_load,
            observe_wait=None if metrics is None else metrics.queue_wait.observe,
        )
        self.backends = sorted(set(serve.backends or [settings.llm.backend, "stub"]))
        self._embedder = embedder
        self.corpora: dict[str, Corpus] = {}
        self.loaded = False

    @property
    def embedder(self) -> Embedder:
        """The shared embedder (loaded by :meth:`load`)."""
        if self._embedder is None:
            raise RuntimeError("the answer service is not loaded yet")
        return self._embedder

    def load(self) -> None:
        """Load the embedder, the corpora and their indexes; check the response cache.

        Raises:
            GroundedAnswerError: a corpus, index, model or cache is unusable.

        """
        settings = self.settings
        embedder = self._embedder or select_embedder(settings)
        corpora = {"default": load_corpus(settings.corpus or DEFAULT_CORPUS)}
        for name, path in settings.serve.corpora.items():
            corpora[name] = load_corpus(path)
        # Open (or build) every configured corpus's index now, so the first request does
        # not pay for it and a broken cache fails at start, not under load.
        for corpus in corpora.values():
            retriever_for(corpus, embedder, settings)
        if settings.llm.cache:  # a wrong llm.cache_url fails here, not on every answer
            response_store(settings.index.cache_dir, settings.llm).check()
        self._embedder = embedder
        self.corpora = corpora
        self.loaded = True

    def prepare(
        self,
        request: ExplainRequest,
        on_event: Callable[[str, dict[str, Any]], None] | None = None,
    ) -> Callable[[Cancellation], Answer]:
        """Check ``request`` and return the run that answers it (reporting to ``on_event``).

        Raises:
            Rejected: a 422 naming the field at fault.

        """
        settings = self.settings
        backend = request.backend or settings.llm.backend
        if backend not in self.backends:
            raise Rejected.from_error(
                ConfigError(
                    f"backend {backend!r} is not offered here; choose one of "
                    f"{', '.join(self.backends)}"
                ),
                field="backend",
            )
        if backend != settings.llm.backend:
            settings = settings.model_copy(
                update={"llm": settings.llm.model_copy(update={"backend": backend})}
            )
        if request.language is not None and request.language != settings.answer.language:
            settings = settings.model_copy(
                update={"answer": settings.answer.model_copy(update={"language": request.language})}
            )
        bundle: Bundle | None = None
        corpus: Corpus | None = None
        default_question: str | None
        if request.bundle is not None:
            try:
                bundle = parse_bundle(request.bundle, path="bundle")
            except UserInputError as exc:
                raise Rejected.from_error(exc, field="bundle") from None
            default_question = bundle.question
        else:
            name = request.corpus or "default"
            corpus = self.corpora.get(name)
            if corpus is None:
                raise Rejected.from_error(
                    ConfigError(
                        f"no corpus named {name!r} here; choose one of "
                        f"{', '.join(sorted(self.corpora))}"
                    ),
                    field="corpus",
                )
            default_question = corpus.question
        try:
            question = check_question(
                request.question if request.question is not None else default_question, settings
            )
        except UserInputError as exc:
            raise Rejected.from_error(exc, field="question") from None
        embedder = self.embedder
        metrics = self.metrics

        def work(cancel: Cancellation) -> Answer:
            answer = explain(
                question,
                bundle=bundle,
                corpus=corpus,
                settings=settings,
                backend=make_backend(settings.llm, cancel=cancel),
                embedder=embedder,
                on_event=on_event,
            )
            if metrics is not None:
                metrics.observe_answer(answer, cache=settings.llm.cache)
            return answer

        return work

    def health(self, lifecycle: Lifecycle, *, auth: bool) -> Health:
        """The numbers /healthz reports."""
        runner = self.runner
        return Health(
            status="ok",
            state=lifecycle.state,
            auth=auth,
            version=__version__,
            backend=self.settings.llm.backend,
            backends=self.backends,
            corpora=sorted(self.corpora),
            embedding_model=self._embedder.model_id if self.loaded and self._embedder else None,
            running=runner.running,
            waiting=runner.waiting,
            max_concurrent=runner.max_concurrent,
            max_queue=runner.max_queue,
        )


def build_app(
    settings: Settings, *, embedder: Embedder | None = None, load_now: bool = False
) -> FastAPI:
    """The application for ``settings`` (see :func:`grounded_answer.serve.create_app`).

    Args:
        settings: Configuration.
        embedder: An embedder to share instead of the configured model.
        load_now: Load the model and corpora before returning (raising what fails),
            instead of in the background once the app starts.

    Raises:
        ConfigError: an API key or the keys file is unusable.
        GroundedAnswerError: with ``load_now``, whatever loading raised.

    """
    keys = ApiKeys.from_settings(settings.serve)
    metrics = Metrics()
    service = AnswerService(settings, embedder=embedder, metrics=metrics)
    if load_now:
        service.load()
    lifecycle = Lifecycle(settings.serve.drain_timeout)
    lifecycle.on_deadline = lambda: service.runner.cancel_all(
        "cancelled: the server is shutting down (serve.drain_timeout passed)"
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        lifecycle.install()
        if service.loaded:
            lifecycle.ready()
        else:
            _background(_load(service, lifecycle))
        try:
            yield
        finally:
            lifecycle.uninstall()
            service.runner.close()
            metrics.close()

    app = FastAPI(
        title="grounded-answer",
        version=__version__,
        summary="Explains recommended AI models from the provided sources only.",
        description="Three sections (task, workflow, references) written from a bundle's "
        "sources; every link in an answer comes from a source record. Errors are JSON "
        "(ErrorBody) in the library's categories: user_input (4xx) and runtime (429, 5xx).",
        # The interactive docs pages load their scripts from a CDN; the schema is enough.
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.service = service
    app.state.lifecycle = lifecycle
    _add_error_handlers(app)

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=Path(STATIC_DIR)), name="static")

    @app.get("/healthz", tags=["service"])
    async def healthz() -> Health:
        """Liveness: the process answers. Also where it stands and how busy it is."""
        return service.health(lifecycle, auth=keys.enabled)

    @app.get(
        "/readyz",
        tags=["service"],
        responses={
            503: {"model": Readiness, "description": "Starting, draining or failed to load."}
        },
    )
    async def readyz() -> JSONResponse:
        """Readiness: 200 once the model and corpora are loaded, 503 before and while draining."""
        ready = lifecycle.state == "ready"
        detail = {
            "starting": "loading the model and corpora",
            "draining": "shutting down: finishing the answers in flight",
            "failed": lifecycle.error or "loading failed",
        }.get(lifecycle.state, "")
        body = Readiness(ready=ready, state=lifecycle.state, detail=detail)
        return JSONResponse(
            body.model_dump(mode="json"),
            status_code=200 if ready else 503,
            headers={"Cache-Control": "no-store"},
        )

    @app.get(
        "/metrics",
        tags=["service"],
        response_class=Response,
        responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format."}},
    )
    async def metrics_page() -> Response:
        """Prometheus metrics (every worker's); needs a key unless serve.metrics_public."""
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    @app.post(
        "/v1/explain",
        tags=["answers"],
        response_class=Response,
        responses={
            200: {
                "model": Answer,
                "description": "The grounded answer; workflow.graph holds its nodes and edges.",
            },
            **_ERRORS,
        },
    )
    async def explain_json(body: ExplainRequest, request: Request) -> Response:
        """Answer a bundle (or a question over a configured corpus) in three sections."""
        work = service.prepare(body)
        ticket = service.runner.admit()
        run = service.runner.start(ticket, work)
        try:
            answer = await _until_done_or_gone(request, service.runner, ticket, run)
        except Exception as exc:  # library errors by category; anything else a logged 500
            return _json_error(exc)
        if answer is None:
            return Response(status_code=CLIENT_CLOSED)
        return Response(answer.to_json(indent=None), media_type="application/json")

    @app.post(
        "/v1/explain/stream",
        tags=["answers"],
        description=_STREAM_DOC,
        response_class=StreamingResponse,
        responses={
            200: {"content": {"text/event-stream": {}}, "description": "The event stream."},
            **_ERRORS,
        },
    )
    async def explain_stream(body: ExplainRequest, request: Request) -> Response:
        """Answer, streaming the plan, each judgement and each checked section as events."""
        loop = asyncio.get_running_loop()
        progress: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()

        def on_event(name: str, data: dict[str, Any]) -> None:  # from the worker thread
            loop.call_soon_threadsafe(progress.put_nowait, (name, data))

        work = service.prepare(body, on_event)
        ticket = service.runner.admit()
        events = _events(request, service.runner, ticket, work, settings.serve.heartbeat, progress)
        return _EventStream(events, ticket)

    # The last added is outermost: every response, a 401, 413 or 503 included, gets the
    # security headers, the CORS headers (when configured) and the request id.
    app.add_middleware(BodyLimit, limit=settings.serve.max_body_bytes)
    app.add_middleware(Auth, keys=keys, metrics_public=settings.serve.metrics_public)
    app.add_middleware(Gate, lifecycle=lifecycle)
    app.add_middleware(SecurityHeaders)
    if settings.serve.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.serve.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "Accept", "X-Request-ID"],
            expose_headers=["X-Request-ID", "Retry-After"],
            max_age=600,
        )
    app.add_middleware(RequestContext, metrics=metrics)
    return app


async def _load(service: AnswerService, lifecycle: Lifecycle) -> None:
    """Load the service in a thread; then ready, or failed with the reason (logged)."""
    try:
        await asyncio.to_thread(service.load)
    except GroundedAnswerError as exc:
        _log.error("cannot start: %s: %s", type(exc).__name__, exc)
        lifecycle.fail(f"{type(exc).__name__}: {exc}")
        return
    except Exception as exc:  # a bug: the log has the traceback, /readyz the gist
        _log.error("cannot start: unexpected error", exc_info=exc)
        lifecycle.fail(f"internal error ({type(exc).__name__}); see the server's log")
        return
    lifecycle.ready()
    _log.info(
        "ready: model %s, corpora %s", service.embedder.model_id, ", ".join(sorted(service.corpora))
    )


class _EventStream(StreamingResponse):
    """An SSE response that gives its ticket back even if it never starts streaming."""

    def __init__(self, events: AsyncIterator[bytes], ticket: Ticket) -> None:
        super().__init__(
            events,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )
        self._ticket = ticket

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            if not self._ticket.started:  # else the runner gives it back, run finished
                self._ticket.release()


async def _events(
    request: Request,
    runner: Runner,
    ticket: Ticket,
    work: Callable[[Cancellation], Answer],
    heartbeat: float,
    progress: asyncio.Queue[tuple[str, dict[str, Any]]] | None = None,
) -> AsyncIterator[bytes]:
    number = 0
    sent: dict[tuple[str, str], str] = {}  # the sections sent so far, by kind and id

    def event(name: str, data: str) -> bytes:
        nonlocal number
        number += 1
        return _sse(name, data, number)

    def section(name: str, key: str, data: str) -> bytes | None:
        """The event for a section, unless the same text was sent for it already."""
        canonical = json.dumps(json.loads(data), sort_keys=True)
        if sent.get((name, key)) == canonical:
            return None
        sent[(name, key)] = canonical
        return event(name, data)

    def forwarded(name: str, data: dict[str, Any]) -> bytes | None:
        if name == "plan":
            return section("plan", "plan", json.dumps(data, ensure_ascii=False))
        if name in _PROGRESS:
            return event(name, json.dumps(data, ensure_ascii=False))
        if name == "section" and data.get("kind") in ("task", "step", "reference"):
            body = data.get("data") or {}
            key = str(body.get("id") or body.get("label") or data["kind"])
            return section(str(data["kind"]), key, json.dumps(body, ensure_ascii=False))
        return None

    run = runner.start(ticket, work)
    waiter = _background(_until_done_or_gone(request, runner, ticket, run))
    started = _background(run.started.wait())
    reading: asyncio.Task[tuple[str, dict[str, Any]]] | None = None
    try:
        if ticket.queued and not run.started.is_set():
            yield event("status", StatusEvent(state="queued", ahead=ticket.ahead).model_dump_json())
        announced = False
        while not waiter.done():
            if progress is not None and reading is None:
                reading = _background(progress.get())
            watched: list[asyncio.Future[Any]] = [waiter] if announced else [waiter, started]
            if reading is not None:
                watched.append(reading)
            await asyncio.wait(watched, timeout=heartbeat, return_when=asyncio.FIRST_COMPLETED)
            if started.done() and not announced:
                announced = True
                yield event("status", StatusEvent(state="running").model_dump_json())
            elif reading is not None and reading.done():
                out = forwarded(*reading.result())
                reading = None
                if out is not None:
                    yield out
            elif not waiter.done():
                yield b": keep-alive\n\n"
        if reading is not None:
            # The run ended while an event was being read: one already taken off the
            # queue came before those still in it, so it goes first, not to waste.
            if reading.done() and not reading.cancelled():
                out = forwarded(*reading.result())
                if out is not None:
                    yield out
            else:
                reading.cancel()
            reading = None
        while progress is not None and not progress.empty():
            out = forwarded(*progress.get_nowait())
            if out is not None:
                yield out
        try:
            answer = waiter.result()
        except Exception as exc:  # library errors by category; anything else a logged 500
            status, body, _ = http_error(exc, during_run=True)
            if status != CLIENT_CLOSED:
                yield event("error", body.model_dump_json())
            return
        if answer is None:  # the client went away; the run was cancelled
            return
        for name, data in sections(answer):
            if name in ("task", "step", "reference", "plan"):
                body = json.loads(data)
                out = section(name, str(body.get("id") or body.get("label") or name), data)
                if out is not None:
                    yield out
            else:
                yield event(name, data)
    finally:
        if reading is not None:
            reading.cancel()
        started.cancel()
        # Cancelled from outside (Starlette saw the disconnect first): stopping the waiter
        # makes finish() cancel the run; it gives the ticket back when the thread is done.
        waiter.cancel()


async def _until_done_or_gone(
    request: Request, runner: Runner, ticket: Ticket, run: Run[Answer]
) -> Answer | None:
    """The run's answer, or None if the client disconnected first (the run is cancelled)."""
    finishing = _background(runner.finish(ticket, run))
    watching = _background(_disconnected(request))
    gone = False
    try:
        await asyncio.wait([finishing, watching], return_when=asyncio.FIRST_COMPLETED)
        gone = not finishing.done()
    finally:
        info = _context.current()
        if info is not None and ticket.queue_wait is not None:
            info.queue_wait = ticket.queue_wait
        watching.cancel()
        if not finishing.done():
            # The client left, or this task was cancelled (Starlette saw the disconnect
            # first): cancelling finish() makes it stop the run and wait for the thread.
            finishing.cancel()
    if not gone:
        answer: Answer = finishing.result()
        return answer
    with suppress(asyncio.CancelledError, GroundedAnswerError):
        await finishing
    _log.info("client disconnected; run cancelled")
    return None


async def _disconnected(request: Request) -> None:
    # The body was read already, so the next message is the disconnect.
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


_TASKS: set[asyncio.Task[Any]] = set()


def _background(coroutine: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
    # The loop keeps only weak references to tasks; these must live until they end.
    task = asyncio.ensure_future(coroutine)
    _TASKS.add(task)
    task.add_done_callback(_TASKS.discard)
    return task


def sections(answer: Answer) -> list[tuple[str, str]]:
    """The stream's events for a validated answer, in order, as (event, JSON)."""
    out: list[tuple[str, str]] = []
    if answer.plan is not None:
        out.append(("plan", answer.plan.model_dump_json()))
    out.append(("task", answer.task.model_dump_json()))
    if answer.workflow is not None:
        out += [("step", step.model_dump_json()) for step in answer.workflow.steps]
        labels = {ref.source_id: ref.label for ref in answer.references}
        allowed = [link_key(link) for link in answer.allowed_links]
        summary = " → ".join(node["label"] for node in answer.workflow.to_graph()["nodes"])
        out.append(
            (
                "graph",
                GraphEvent(
                    svg=workflow_svg(answer.workflow, labels, allowed, standalone=True),
                    mermaid=answer.workflow.to_mermaid(),
                    summary=summary,
                ).model_dump_json(),
            )
        )
    out += [("reference", ref.model_dump_json()) for ref in answer.references]
    out.append(("answer", answer.to_json(indent=None)))
    return out


def _sse(name: str, data: str, number: int) -> bytes:
    lines = "".join(f"data: {line}\n" for line in data.splitlines() or [""])
    return f"id: {number}\nevent: {name}\n{lines}\n".encode()


def _json_error(exc: Exception) -> Response:
    status, body, headers = http_error(exc, during_run=True)
    if status == CLIENT_CLOSED:
        return Response(status_code=CLIENT_CLOSED)
    return JSONResponse(body.model_dump(mode="json"), status_code=status, headers=headers)


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(Rejected)
    async def rejected(_request: Request, exc: Rejected) -> Response:
        return JSONResponse(
            exc.body.model_dump(mode="json"), status_code=exc.status, headers=exc.headers
        )

    @app.exception_handler(GroundedAnswerError)
    async def library_error(_request: Request, exc: GroundedAnswerError) -> Response:
        status, body, headers = http_error(exc)
        return JSONResponse(body.model_dump(mode="json"), status_code=status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        loc = [str(part) for part in first.get("loc", ()) if part != "body"]
        kind = first.get("type", "")
        if kind == "json_invalid":
            field, message = "body", "the body is not valid JSON"
        elif kind == "missing" and not loc:
            field, message = "body", "the body is empty: send a JSON object"
        else:
            field = loc[0] if loc and not loc[0].isdigit() else "body"
            reason = str(first.get("msg", "invalid")).removeprefix("Value error, ")
            message = f"{'.'.join(loc) or 'body'}: {reason}"
        body = error_body(422, "RequestValidationError", "user_input", message, field=field)
        return JSONResponse(body.model_dump(mode="json"), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_exception(_request: Request, exc: StarletteHTTPException) -> Response:
        category = "user_input" if exc.status_code < 500 else "runtime"
        body = error_body(exc.status_code, "HTTPError", category, str(exc.detail))
        return JSONResponse(
            body.model_dump(mode="json"), status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception) -> Response:
        status, body, headers = http_error(exc)
        return JSONResponse(body.model_dump(mode="json"), status_code=status, headers=headers)

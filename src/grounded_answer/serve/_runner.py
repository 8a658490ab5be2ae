"""Admission and execution of answer runs: a few at once, a bounded queue, deadlines.

``explain()`` is synchronous and spends most of its time in one LLM call, so each run
gets a worker thread from a pool of ``serve.max_concurrent``; up to ``serve.max_queue``
more wait for one, and the next request is refused at once (:class:`ServerBusyError`,
HTTP 429) rather than queued without bound. A run that outlives its deadline, or whose
client goes away, is cancelled through a :class:`Cancellation` that the backend honours
by aborting its request; the slot is given back only when the worker thread has really
finished, so the limit counts threads that exist, not requests still being listened to.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Generic, TypeVar

import anyio

from ..backends.base import Cancellation
from ..errors import RunCancelledError, RunTimeoutError, ServerBusyError

__all__ = ["Runner", "Ticket"]

T = TypeVar("T")


class Ticket:
    """A place taken in the runner (running or waiting); given back exactly once.

    Once a run is started for it, :meth:`Runner.finish` gives it back when the worker
    thread is done; before that, whoever holds it must (``started`` tells which).
    """

    def __init__(self, runner: Runner, *, queued: bool, ahead: int) -> None:
        self._runner = runner
        self.queued = queued
        self.ahead = ahead
        self.admitted_at = time.monotonic()
        #: Seconds from admission until a worker thread took the run; None until then.
        self.queue_wait: float | None = None
        self.started = False
        self._released = False

    def release(self) -> None:
        """Give the place back (idempotent)."""
        if not self._released:
            self._released = True
            self._runner._admitted -= 1
            self._runner._report()


class Run(Generic[T]):
    """One run in a worker thread: its future, its cancellation, and when it started."""

    def __init__(
        self, future: Future[T], cancel: Cancellation, started: asyncio.Event, done: asyncio.Event
    ) -> None:
        self.future = future
        self.cancel = cancel
        self.started = started
        self.done = done


class Runner:
    """Runs blocking answer functions in a bounded pool, with a bounded queue in front."""

    def __init__(
        self,
        *,
        max_concurrent: int,
        max_queue: int,
        timeout: float,
        observe: Callable[[int, int], None] | None = None,
        observe_wait: Callable[[float], None] | None = None,
    ) -> None:
        self.max_concurrent = max_concurrent
        self.max_queue = max_queue
        self.timeout = timeout
        #: Called with (running, waiting) after each change, from any thread (metrics).
        self.observe = observe
        #: Called with each run's seconds in the queue, from its worker thread (metrics).
        self.observe_wait = observe_wait
        self._executor = ThreadPoolExecutor(
            max_workers=max_concurrent, thread_name_prefix="grounded-answer-run"
        )
        self._admitted = 0  # touched on the event loop only
        self._running = 0
        self._lock = threading.Lock()
        self._live: set[Cancellation] = set()

    @property
    def running(self) -> int:
        """Runs executing in a worker thread now."""
        with self._lock:
            return self._running

    @property
    def waiting(self) -> int:
        """Admitted requests not yet running."""
        return max(0, self._admitted - self.running)

    def admit(self) -> Ticket:
        """Take a place, or raise :class:`ServerBusyError` when slots and queue are full."""
        capacity = self.max_concurrent + self.max_queue
        if self._admitted >= capacity:
            raise ServerBusyError(
                f"the server is busy: {self.max_concurrent} answer(s) running and "
                f"{self.max_queue} waiting (serve.max_concurrent, serve.max_queue); "
                "retry shortly",
                retry_after=2,
            )
        before = self._admitted
        self._admitted += 1
        self._report()
        return Ticket(
            self, queued=before >= self.max_concurrent, ahead=max(0, before - self.max_concurrent)
        )

    def start(self, ticket: Ticket, work: Callable[[Cancellation], T]) -> Run[T]:
        """Submit ``work`` for ``ticket``; it runs when a worker thread is free."""
        ticket.started = True
        loop = asyncio.get_running_loop()
        cancel = Cancellation()
        started, done = asyncio.Event(), asyncio.Event()

        def notify(event: asyncio.Event) -> None:
            with contextlib.suppress(RuntimeError):  # the loop is gone: shutting down
                loop.call_soon_threadsafe(event.set)

        def job() -> T:
            if cancel.cancelled:
                raise RunCancelledError(f"the run was {cancel.reason} before it started")
            with self._lock:
                self._running += 1
            ticket.queue_wait = time.monotonic() - ticket.admitted_at
            if self.observe_wait is not None:
                self.observe_wait(ticket.queue_wait)
            self._report()
            notify(started)
            try:
                return work(cancel)
            finally:
                with self._lock:
                    self._running -= 1
                self._report()

        self._live.add(cancel)
        future = self._executor.submit(job)
        future.add_done_callback(lambda _: notify(done))
        return Run(future, cancel, started, done)

    async def finish(self, ticket: Ticket, run: Run[T]) -> T:
        """Wait for ``run`` within the deadline; cancel it if the wait ends early.

        Raises:
            RunTimeoutError: the deadline (``serve.request_timeout``) passed.
            RunCancelledError: the run was cancelled and gave up.

        """
        left = self.timeout - (time.monotonic() - ticket.admitted_at)
        try:
            with anyio.move_on_after(max(0.0, left)) as scope:
                await run.done.wait()
            if scope.cancelled_caught:
                await self._stop(run, f"stopped at the deadline of {self.timeout:g}s")
                raise RunTimeoutError(
                    f"no answer within serve.request_timeout ({self.timeout:g}s); the LLM "
                    "call was aborted",
                    seconds=self.timeout,
                )
            return run.future.result()
        except BaseException:
            # The waiting task was cancelled (client gone, shutdown): stop the worker.
            if not run.done.is_set():
                await self._stop(run, "cancelled: the client went away")
            raise
        finally:
            self._live.discard(run.cancel)
            ticket.release()

    async def _stop(self, run: Run[T], reason: str) -> None:
        run.future.cancel()  # never starts if it was still queued
        run.cancel.cancel(reason)
        # The slot stays taken until the thread has returned; backends abort promptly.
        with anyio.CancelScope(shield=True):
            await run.done.wait()

    def cancel_all(self, reason: str) -> None:
        """Cancel every run, queued or running (the drain's deadline passed)."""
        for cancel in list(self._live):
            cancel.cancel(reason)

    def close(self) -> None:
        """Cancel every run and stop the pool (on shutdown)."""
        self.cancel_all("cancelled: the server is shutting down")
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _report(self) -> None:
        if self.observe is not None:
            running = self.running
            self.observe(running, max(0, self._admitted - running))

"""The service's runner: admission, the bounded queue, cancellation and the deadline.

Each run here is a function that blocks on its Cancellation (as the openai backend's call
does), so what happens is decided by events, never by how long something takes.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import pytest

from grounded_answer.backends import Cancellation
from grounded_answer.errors import RunCancelledError, RunTimeoutError, ServerBusyError
from grounded_answer.serve._runner import Runner


def blocking(log: list[str], release: threading.Event) -> Callable[[Cancellation], str]:
    """A run that waits until released or cancelled, like an LLM call."""

    def work(cancel: Cancellation) -> str:
        log.append("started")
        cancel.on_cancel(release.set)
        release.wait(30)
        cancel.raise_if_cancelled("test")
        log.append("finished")
        return "answer"

    return work


def test_admission_counts_running_and_waiting_and_refuses_beyond() -> None:
    runner = Runner(max_concurrent=2, max_queue=1, timeout=60)
    tickets = [runner.admit() for _ in range(3)]
    assert [(t.queued, t.ahead) for t in tickets] == [(False, 0), (False, 0), (True, 0)]
    with pytest.raises(ServerBusyError) as caught:
        runner.admit()
    assert caught.value.retry_after >= 1 and "serve.max_queue" in str(caught.value)
    tickets[0].release()
    tickets[0].release()  # idempotent: frees one place, not two
    runner.admit()
    with pytest.raises(ServerBusyError):
        runner.admit()
    runner.close()


def test_a_run_answers_and_gives_its_place_back() -> None:
    async def scenario() -> None:
        runner = Runner(max_concurrent=1, max_queue=0, timeout=60)
        log: list[str] = []
        release = threading.Event()
        release.set()
        ticket = runner.admit()
        assert await runner.finish(ticket, runner.start(ticket, blocking(log, release))) == "answer"
        assert log == ["started", "finished"]
        assert (runner.running, runner.waiting) == (0, 0)
        runner.admit()  # the place is free again
        runner.close()

    asyncio.run(scenario())


def test_cancelling_the_waiter_cancels_the_run_and_waits_for_its_thread() -> None:
    async def scenario() -> None:
        runner = Runner(max_concurrent=1, max_queue=1, timeout=60)
        log: list[str] = []
        ticket = runner.admit()
        run = runner.start(ticket, blocking(log, threading.Event()))
        waiter = asyncio.ensure_future(runner.finish(ticket, run))
        await run.started.wait()
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        # finish() returned only after the thread did: the place was held until then.
        assert run.future.done() and run.cancel.cancelled
        assert isinstance(run.future.exception(), RunCancelledError)
        assert "client went away" in run.cancel.reason
        assert log == ["started"] and (runner.running, runner.waiting) == (0, 0)
        runner.close()

    asyncio.run(scenario())


def test_a_queued_run_whose_client_leaves_never_starts() -> None:
    async def scenario() -> None:
        runner = Runner(max_concurrent=1, max_queue=1, timeout=60)
        first_log: list[str] = []
        second_log: list[str] = []
        release = threading.Event()
        first = runner.admit()
        first_run = runner.start(first, blocking(first_log, release))
        second = runner.admit()
        second_run = runner.start(second, blocking(second_log, threading.Event()))
        await first_run.started.wait()
        assert runner.waiting == 1
        waiter = asyncio.ensure_future(runner.finish(second, second_run))
        await asyncio.sleep(0)  # let finish() begin waiting
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        release.set()
        assert await runner.finish(first, first_run) == "answer"
        assert second_log == [] and second_run.future.cancelled()
        runner.close()

    asyncio.run(scenario())


def test_the_deadline_cancels_the_run() -> None:
    async def scenario() -> None:
        runner = Runner(max_concurrent=1, max_queue=0, timeout=0)
        log: list[str] = []
        ticket = runner.admit()
        run = runner.start(ticket, blocking(log, threading.Event()))
        with pytest.raises(RunTimeoutError) as caught:
            await runner.finish(ticket, run)
        assert caught.value.seconds == 0 and run.cancel.cancelled
        assert "deadline" in run.cancel.reason and run.future.done()
        assert (runner.running, runner.waiting) == (0, 0)
        runner.close()

    asyncio.run(scenario())


def test_the_runner_reports_its_load_and_each_queue_wait() -> None:
    async def scenario() -> None:
        loads: list[tuple[int, int]] = []
        waits: list[float] = []
        runner = Runner(
            max_concurrent=1,
            max_queue=1,
            timeout=60,
            observe=lambda running, waiting: loads.append((running, waiting)),
            observe_wait=waits.append,
        )
        release = threading.Event()
        first = runner.admit()
        first_run = runner.start(first, blocking([], release))
        await first_run.started.wait()
        second = runner.admit()
        assert loads[-1] == (1, 1)  # one running, one waiting: the queue depth
        second_run = runner.start(second, blocking([], release))
        release.set()
        assert await runner.finish(first, first_run) == "answer"
        assert await runner.finish(second, second_run) == "answer"
        assert loads[-1] == (0, 0) and len(waits) == 2
        assert first.queue_wait is not None and second.queue_wait is not None
        assert waits == [first.queue_wait, second.queue_wait]
        runner.close()

    asyncio.run(scenario())


def test_cancel_all_stops_running_and_queued_runs() -> None:
    async def scenario() -> None:
        runner = Runner(max_concurrent=1, max_queue=1, timeout=60)
        log: list[str] = []
        first = runner.admit()
        first_run = runner.start(first, blocking(log, threading.Event()))
        second = runner.admit()
        second_run = runner.start(second, blocking(log, threading.Event()))
        await first_run.started.wait()
        runner.cancel_all("cancelled: drain deadline")
        for ticket, run in ((first, first_run), (second, second_run)):
            with pytest.raises(RunCancelledError):
                await runner.finish(ticket, run)
        assert log == ["started"] and "drain deadline" in first_run.cancel.reason
        runner.close()

    asyncio.run(scenario())

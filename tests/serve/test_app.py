"""The event stream's generator and its documentation, without a server in front.

The run is a function in a worker thread that waits for the test's go-ahead, so which
events are pending when the stream looks again is decided by events, never by timing.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from typing import Any

from starlette.requests import Request
from starlette.types import Message

from grounded_answer.answer import Answer
from grounded_answer.backends import Cancellation
from grounded_answer.errors import BackendResponseError
from grounded_answer.serve._app import _STREAM_DOC, _events
from grounded_answer.serve._runner import Runner


async def never_disconnects() -> Message:
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


def names(events: list[bytes]) -> list[str]:
    found = []
    for event in events:
        match = re.search(rb"^event: (\w+)$", event, re.MULTILINE)
        found.append(match.group(1).decode() if match else event.decode().strip())
    return found


async def until_only_this_task_runs() -> None:
    """Let the loop run every other task to its end (the run's waiter, the queue read)."""
    deadline = time.monotonic() + 10
    while asyncio.all_tasks() != {asyncio.current_task()}:
        assert time.monotonic() < deadline, "the run's tasks never finished"
        await asyncio.sleep(0.01)


def test_an_event_read_as_the_run_ends_is_forwarded_not_dropped() -> None:
    """The last judgement is taken off the queue while the run fails: it is still sent."""

    async def scenario() -> list[str]:
        loop = asyncio.get_running_loop()
        progress: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
        go = threading.Event()
        judgement = {"source_id": "m1", "title": "M1", "score": 0.9, "method": "logprobs"}

        def work(cancel: Cancellation) -> Answer:
            go.wait(30)
            loop.call_soon_threadsafe(progress.put_nowait, ("judgement", judgement))
            raise BackendResponseError("the model broke the rules", backend="test")

        runner = Runner(max_concurrent=1, max_queue=0, timeout=60)
        request = Request({"type": "http", "method": "POST", "headers": []}, never_disconnects)
        stream = _events(request, runner, runner.admit(), work, 60.0, progress)
        try:
            sent = [await anext(stream)]  # running: the run waits for the go-ahead
            go.set()
            # The stream is not looking: the pending read takes the judgement off the
            # queue and the run's failure is in, both before it looks again.
            await until_only_this_task_runs()
            assert progress.empty()
            sent += [event async for event in stream]
        finally:
            go.set()  # an unfinished stream is closed by asyncio.run
            runner.close()
        return names(sent)

    assert asyncio.run(scenario()) == ["status", "judgement", "error"]


def documented(event: str) -> str:
    """The bullet of the stream's documentation that describes ``event``."""
    text = " ".join(_STREAM_DOC.split())
    match = re.search(rf"- `{event}` (.*?)(?= - `|$)", text)
    assert match, event
    return match.group(1)


def test_the_stream_doc_says_the_answer_replaces_the_previews() -> None:
    answer = documented("answer")
    assert "replaces everything sent before it" in answer
    assert "previews" in documented("task")
    # What a judgement carries, and no `label` (the stream's real judgement events are
    # checked against this bullet in tests/integration/test_serve.py).
    fields = re.findall(r"`(\w+)`", documented("judgement").split(":", 1)[1])
    assert fields == ["source_id", "title", "score", "method"]

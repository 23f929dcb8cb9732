"""Worker-thread hops: results and errors come back, a limiter bounds them, a cancelled
caller waits for its running call to end (nothing the call does may outlive the caller's
locks), under a plain task cancel and an anyio cancel scope alike, and a call cancelled
before it begins never runs."""

from __future__ import annotations

import asyncio
import threading
import time
from contextvars import ContextVar

import anyio
import pytest

from ankisyncd.threads import _Call, in_thread

WHO: ContextVar[str] = ContextVar("WHO", default="nobody")


def test_the_call_runs_in_another_thread_with_the_callers_context() -> None:
    async def main() -> tuple[str, int]:
        WHO.set("alice")
        return await in_thread(lambda: (WHO.get(), threading.get_ident()))

    who, ident = asyncio.run(main())
    assert who == "alice"
    assert ident != threading.get_ident()


def test_an_error_of_the_call_reaches_the_caller() -> None:
    def fail() -> None:
        raise ValueError("disk said no")

    with pytest.raises(ValueError, match="disk said no"):
        asyncio.run(in_thread(fail))


def test_a_limiter_lets_its_share_run_at_once_and_no_more() -> None:
    running, most = [0], [0]
    guard = threading.Lock()

    def work() -> None:
        with guard:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.02)
        with guard:
            running[0] -= 1

    async def main() -> None:
        limiter = anyio.CapacityLimiter(2)
        await asyncio.gather(*(in_thread(work, limiter=limiter) for _ in range(6)))

    asyncio.run(main())
    assert most[0] == 2


class HeldCall:
    """A call that runs until released, and records when it ended."""

    def __init__(self) -> None:
        self.started, self.release = threading.Event(), threading.Event()
        self.ended_at = 0.0

    def __call__(self) -> str:
        self.started.set()
        self.release.wait(10)
        time.sleep(0.05)  # still running when the caller is told to stop
        self.ended_at = time.monotonic()
        return "done"


async def _started(call: HeldCall) -> None:
    while not call.started.is_set():
        await asyncio.sleep(0.001)


def test_a_cancelled_caller_waits_for_its_running_call_to_end() -> None:
    call = HeldCall()

    async def main() -> float:
        task = asyncio.create_task(in_thread(call))
        await _started(call)
        task.cancel()
        await asyncio.sleep(0.05)
        assert not task.done()  # still waiting for the call
        task.cancel()  # a second cancel does not end the wait either
        call.release.set()
        with pytest.raises(asyncio.CancelledError):
            await task
        return time.monotonic()

    cancelled_at = asyncio.run(main())
    assert 0 < call.ended_at <= cancelled_at


def test_a_caller_in_a_cancelled_anyio_scope_waits_for_its_running_call_to_end() -> None:
    call = HeldCall()

    async def caller() -> None:
        await in_thread(call)

    async def main() -> float:
        async with anyio.create_task_group() as group:
            group.start_soon(caller)
            await _started(call)
            threading.Timer(0.05, call.release.set).start()
            group.cancel_scope.cancel()  # this task's own wait ends here: the group's waits
        return time.monotonic()

    group_done_at = asyncio.run(main())
    assert 0 < call.ended_at <= group_done_at


def test_a_call_cancelled_before_it_begins_never_runs() -> None:
    ran: list[str] = []

    async def main() -> None:
        limiter = anyio.CapacityLimiter(1)
        call = HeldCall()
        first = asyncio.create_task(in_thread(call, limiter=limiter))
        await _started(call)
        second = asyncio.create_task(in_thread(ran.append, "second", limiter=limiter))
        await asyncio.sleep(0.01)
        second.cancel()
        call.release.set()
        assert await first == "done"
        with pytest.raises(asyncio.CancelledError):
            await second

    asyncio.run(main())
    assert ran == []


def test_a_call_a_worker_takes_up_after_its_caller_gave_up_does_not_run() -> None:
    """The race the limiter cannot show: the worker reaches the call just after the cancel."""
    ran: list[str] = []
    call = _Call(ran.append, ("late",))
    asyncio.run(call.abandon())
    with pytest.raises(asyncio.CancelledError):
        call.run()
    assert ran == []

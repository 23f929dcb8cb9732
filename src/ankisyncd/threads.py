"""The one way to a worker thread for blocking work (SQLite, hashing, files, compression)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

import anyio.to_thread

T = TypeVar("T")


async def in_thread(
    func: Callable[..., T], *args: object, limiter: anyio.CapacityLimiter | None = None
) -> T:
    """Run ``func(*args)`` in a worker thread (from ``limiter``'s share, when given).

    A caller cancelled meanwhile returns only once a call that has begun has ended, so that
    nothing the call does outlives the caller's locks; a call not yet begun never runs.
    anyio keeps that promise for its own cancel scopes but not for a plain ``Task.cancel()``,
    which uvicorn sends to the requests still running 10 s into a shutdown.
    """
    call = _Call(func, args)
    try:
        return await anyio.to_thread.run_sync(call.run, limiter=limiter)
    except asyncio.CancelledError:
        await call.abandon()
        raise


_NEW, _RUNNING, _ENDED, _ABANDONED = range(4)


class _Call(Generic[T]):
    """One call handed to a worker thread, and whether it has begun or ended."""

    __slots__ = ("args", "func", "lock", "state")

    def __init__(self, func: Callable[..., T], args: tuple[object, ...]) -> None:
        self.func, self.args = func, args
        self.lock, self.state = threading.Lock(), _NEW

    def run(self) -> T:
        with self.lock:
            if self.state == _ABANDONED:
                raise asyncio.CancelledError  # its caller has gone: nobody reads this
            self.state = _RUNNING
        try:
            return self.func(*self.args)
        finally:
            self.state = _ENDED

    async def abandon(self) -> None:
        """Keep the call from beginning, or wait until it has ended."""
        with self.lock:
            if self.state == _NEW:
                self.state = _ABANDONED
                return
        while self.state != _ENDED:  # only after a cancel: a short poll is cheap enough
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(0.005)

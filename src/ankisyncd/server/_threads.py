"""Worker threads for blocking work (SQLite, hashing, files), and the per-user file locks."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

import anyio.to_thread

from ankisyncd.storage.locks import lock, try_lock, unlock

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


class Guarded:
    """``async with`` holds ``guard`` (the user's lock in this process), then the user's lock
    file at ``path``, which the command line takes to change or copy that user's files while
    the server runs (``storage.locks``).

    One object per user and lock, entered again and again: a class, as a generator-based
    context manager costs a generator and two more frames each time (most steps are small).
    """

    __slots__ = ("_fd", "guard", "path")

    def __init__(self, guard: asyncio.Lock, path: str) -> None:
        self.guard, self.path, self._fd = guard, path, -1

    async def __aenter__(self) -> None:
        await self.guard.acquire()
        try:
            fd = try_lock(self.path)  # free, as a rule: no thread needed
            self._fd = fd if fd is not None else await in_thread(lock, self.path)
        except BaseException:
            self.guard.release()
            raise

    async def __aexit__(self, *exc: object) -> None:
        fd, self._fd = self._fd, -1
        try:
            unlock(fd)
        finally:
            self.guard.release()

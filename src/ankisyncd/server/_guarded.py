"""The per-user lock a step of a sync or media request holds, in this process and on disk."""

from __future__ import annotations

import asyncio

from ankisyncd.storage.locks import lock, try_lock, unlock
from ankisyncd.threads import in_thread


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

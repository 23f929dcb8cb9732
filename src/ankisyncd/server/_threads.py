"""Worker threads for blocking work (SQLite, hashing, files), and the per-user file locks."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar

import anyio.to_thread

from ankisyncd.storage.locks import lock, try_lock, unlock

T = TypeVar("T")


async def in_thread(
    func: Callable[..., T], *args: object, limiter: anyio.CapacityLimiter | None = None
) -> T:
    """Run ``func(*args)`` in a worker thread (from ``limiter``'s share, when given)."""
    return await anyio.to_thread.run_sync(func, *args, limiter=limiter)


@asynccontextmanager
async def file_lock(folder: Path, name: str) -> AsyncIterator[None]:
    """Hold one of a user's file locks, which the command line takes to change or copy that
    user's files while the server runs (``storage.locks``)."""
    fd = try_lock(folder, name)  # free, as a rule: no thread needed
    if fd is None:
        fd = await in_thread(lock, folder, name)
    try:
        yield
    finally:
        unlock(fd)

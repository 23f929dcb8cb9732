"""Worker threads for blocking work: SQLite, hashing, files."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import anyio.to_thread

T = TypeVar("T")


async def in_thread(
    func: Callable[..., T], *args: object, limiter: anyio.CapacityLimiter | None = None
) -> T:
    """Run ``func(*args)`` in a worker thread (from ``limiter``'s share, when given)."""
    return await anyio.to_thread.run_sync(func, *args, limiter=limiter)

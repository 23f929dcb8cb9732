"""Per-user state kept between requests, shared by the collection and the media side: made on
first use, released when idle or when too many users hold state, so open files stay bounded.

A user's first use in this process also removes temporary files an earlier process left in
the folder (start-up does not walk every user's folder).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, TypeVar

from ankisyncd.errors import UserUnavailable
from ankisyncd.server._threads import in_thread
from ankisyncd.storage.collection import remove_temp_files

log = logging.getLogger("ankisyncd.server")
# Files created before this process started are leftovers of an interrupted request.
PROCESS_STARTED = time.time()
MAX_BROKEN_LOGGED = 10_000


@dataclass
class UserState:
    """Base of what one side keeps per user; ``lock`` serialises that user's work."""

    folder: Path
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    busy: int = 0  # requests using this state right now
    used_at: float = field(default_factory=time.monotonic)

    def in_sync(self) -> bool:
        """Whether a multi-request exchange (a normal sync) is under way."""
        return False

    async def release(self) -> None:
        """Roll back what is unfinished and close files; the caller holds ``lock``."""


S = TypeVar("S", bound=UserState)


class UserTable(Generic[S]):
    """States by user name, least recently used first."""

    def __init__(self, make: Callable[[str], S], max_open: int) -> None:
        self._make = make
        self.max_open = max_open
        self._states: OrderedDict[str, S] = OrderedDict()
        self._broken: set[str] = set()

    def __len__(self) -> int:
        return len(self._states)

    def peek(self, name: str) -> S | None:
        """The user's state if it is kept now (for figures; never creates one)."""
        return self._states.get(name)

    def items(self) -> list[tuple[str, S]]:
        """The users whose state is kept now."""
        return list(self._states.items())

    def use(self, name: str) -> _Use[S]:
        """``async with`` it: the user's state for the length of one request; never released
        meanwhile."""
        return _Use(self, name)

    async def _enter(self, name: str) -> S:
        state = self._states.get(name)
        if state is None:
            if len(self._states) >= self.max_open:
                await self._release_some(len(self._states) - self.max_open + 1)
            state = self._states[name] = self._make(name)
            state.busy += 1
            try:
                await in_thread(_remove_leftovers, state.folder)
            except BaseException:
                state.busy -= 1
                raise
        else:
            self._states.move_to_end(name)
            state.busy += 1
        return state

    def _report(self, problem: str) -> None:
        """Log a user's unusable file once (per process), with its path; requests that meet
        it again are answered 503 and logged in one line."""
        if problem not in self._broken:
            if len(self._broken) >= MAX_BROKEN_LOGGED:
                self._broken.clear()
            self._broken.add(problem)
            log.error("a user's files cannot be used (other users are not affected): %s", problem)

    async def release_idle(self, idle_seconds: float, sync_idle_seconds: float) -> int:
        """Release users idle longer than ``idle_seconds``; a sync idle longer than
        ``sync_idle_seconds`` is abandoned (a phone that lost its network) and rolled back."""
        now = time.monotonic()
        idle = [
            (name, state)
            for name, state in self._states.items()
            if not state.busy
            and now - state.used_at >= (sync_idle_seconds if state.in_sync() else idle_seconds)
        ]
        for name, state in idle:
            await self._release(name, state)
        return len(idle)

    async def _release_some(self, count: int) -> None:
        """Make room: release the least recently used idle users, those mid-sync last."""
        idle = [(n, s) for n, s in self._states.items() if not s.busy]
        idle.sort(key=lambda item: item[1].in_sync())  # stable: keeps the LRU order
        for name, state in idle[:count]:
            await self._release(name, state)

    async def _release(self, name: str, state: S) -> None:
        if self._states.get(name) is not state or state.busy:
            return
        del self._states[name]  # a request from now on gets a fresh state
        async with state.lock:
            await state.release()

    async def close(self) -> None:
        """Release every user no request is using (at shutdown)."""
        for name, state in list(self._states.items()):
            if not state.lock.locked():
                await self._release(name, state)


class _Use(Generic[S]):
    """One request's use of a user's state (a class: entered on every request, where a
    generator-based context manager costs a generator and two more frames)."""

    __slots__ = ("name", "state", "table")

    def __init__(self, table: UserTable[S], name: str) -> None:
        self.table, self.name = table, name

    async def __aenter__(self) -> S:
        self.state: S = await self.table._enter(self.name)
        return self.state

    async def __aexit__(self, kind: object, exc: BaseException | None, tb: object) -> None:
        self.state.busy -= 1
        self.state.used_at = time.monotonic()
        if isinstance(exc, UserUnavailable):
            self.table._report(str(exc))


def _remove_leftovers(folder: Path) -> None:
    removed = remove_temp_files(folder, PROCESS_STARTED)
    if removed:
        log.info("removed %d temporary files left in %s", removed, folder)

"""Per-user state kept between requests, shared by the collection and the media side: made on
first use, released when idle or when too many users hold state, so open files stay bounded.

A user in the middle of a sync keeps its state (its open transaction) until the sync ends: when
every kept user is in a sync, a newcomer waits for one to end rather than break it, and is
answered 503 if none ends in time. Only a sync whose client has gone silent is rolled back to
make room.

A user's first use in this process also removes temporary files an earlier process left in
the folder (start-up does not walk every user's folder).
"""

from __future__ import annotations

import asyncio
import logging
import math
import sqlite3
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, TypeVar

from ankisyncd.errors import ServerBusy, UserUnavailable
from ankisyncd.media.db import pending_temp_names
from ankisyncd.storage.collection import remove_temp_files
from ankisyncd.threads import in_thread

log = logging.getLogger("ankisyncd.server")
# Files created before this process started are leftovers of an interrupted request.
PROCESS_STARTED = time.time()
MAX_BROKEN_LOGGED = 10_000
# How long a newcomer waits for room when every kept user is in a sync (then 503).
ROOM_WAIT_SECONDS = 30.0
# A sync whose client has sent nothing for this long may be rolled back to make room.
STALLED_SYNC_SECONDS = 60.0
RETRY_AFTER_SECONDS = 10
FULL_WARNING_SECONDS = 60.0  # the "no room" warning is logged at most this often


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

    def __init__(
        self,
        make: Callable[[str], S],
        max_open: int,
        room_wait: float = ROOM_WAIT_SECONDS,
        stalled_after: float = STALLED_SYNC_SECONDS,
    ) -> None:
        self._make = make
        self.max_open = max_open
        self.room_wait, self.stalled_after = room_wait, stalled_after
        self._states: OrderedDict[str, S] = OrderedDict()
        self._broken: set[str] = set()
        self._waiters: deque[asyncio.Future[None]] = deque()  # newcomers, first come first
        # Newcomers who found every kept user in a sync, by whether room came in time.
        self.room_waits = {"admitted": 0, "refused": 0}
        self._warned_at = -math.inf

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
            await self._make_room()
            state = self._states.get(name)  # another request of this user may have come first
        if state is None:
            state = self._states[name] = self._make(name)
            state.busy += 1
            if state.folder not in _cleaned:
                try:
                    await in_thread(_remove_leftovers, state.folder)
                except BaseException:
                    state.busy -= 1
                    raise
        else:
            self._states.move_to_end(name)
            state.busy += 1
        return state

    async def _make_room(self) -> None:
        """Return when one more user fits. Releases the least recently used idle user, or a
        sync whose client has been silent ``stalled_after`` seconds; otherwise waits, in turn
        with other newcomers, for a request that leaves its user idle (a sync that ends), and
        raises ServerBusy after ``room_wait`` seconds."""
        if len(self._states) < self.max_open and not self._waiters:
            return
        deadline = time.monotonic() + self.room_wait
        in_line, waited = bool(self._waiters), False
        while in_line or len(self._states) >= self.max_open:
            now = time.monotonic()
            victim = None if in_line else self._victim(now)
            if victim is not None:
                await self._release(*victim)
                continue
            if now >= deadline:
                self.room_waits["refused"] += 1
                raise ServerBusy(
                    f"all {self.max_open} users kept open are in a sync", RETRY_AFTER_SECONDS
                )
            self._warn_full(now)
            await self._wait_turn(min(deadline, self._next_stall()) - now, front=waited)
            in_line, waited = False, True
        if waited:
            self.room_waits["admitted"] += 1
        if self._waiters and len(self._states) + 1 < self.max_open:
            self._wake_one()  # room for the next newcomer as well

    def _victim(self, now: float) -> tuple[str, S] | None:
        """Whom to release for room: the least recently used idle user, else the sync silent
        longest once it has been silent ``stalled_after`` seconds."""
        stalled: tuple[str, S] | None = None
        for name, state in self._states.items():  # least recently used first
            if state.busy:
                continue
            if not state.in_sync():
                return name, state
            if stalled is None or state.used_at < stalled[1].used_at:
                stalled = name, state
        if stalled is not None and now - stalled[1].used_at >= self.stalled_after:
            return stalled
        return None

    def _next_stall(self) -> float:
        """When the silent sync of longest standing becomes stalled (inf: none is silent)."""
        silent = [s.used_at for s in self._states.values() if not s.busy and s.in_sync()]
        return min(silent) + self.stalled_after if silent else math.inf

    async def _wait_turn(self, timeout: float, front: bool) -> None:
        """Wait until woken (``_wake_one``) or ``timeout``; ``front``: ahead of the others."""
        waiter = asyncio.get_running_loop().create_future()
        if front:
            self._waiters.appendleft(waiter)
        else:
            self._waiters.append(waiter)
        try:
            await asyncio.wait([waiter], timeout=timeout)
        except BaseException:
            if waiter.done():
                self._wake_one()  # woken, but leaving (cancelled): the turn passes on
            raise
        finally:
            if not waiter.done():
                waiter.cancel()
                self._waiters.remove(waiter)

    def _wake_one(self) -> None:
        """Let the first waiting newcomer look for room again."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _warn_full(self, now: float) -> None:
        if now - self._warned_at >= FULL_WARNING_SECONDS:
            self._warned_at = now
            log.warning(
                "all %d users kept open are in a sync: new users wait for one to end "
                "(raise max_open_users if this repeats)",
                self.max_open,
            )

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
            self._wake_one()
        return len(idle)

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
        state = self.state
        state.busy -= 1
        state.used_at = time.monotonic()
        if self.table._waiters and not state.busy and not state.in_sync():
            self.table._wake_one()  # this user may now be released for a newcomer
        if isinstance(exc, UserUnavailable):
            self.table._report(str(exc))


# Users' folders cleaned of leftovers by this process: what it leaves later is newer than it.
_cleaned: set[Path] = set()


def _remove_leftovers(folder: Path) -> None:
    _cleaned.add(folder)
    try:
        keep = pending_temp_names(folder)  # the content of committed media changes
    except sqlite3.Error as exc:
        log.warning("temporary files in %s left alone: media.db unreadable: %s", folder, exc)
        return
    removed = sum(remove_temp_files(f, PROCESS_STARTED, keep) for f in (folder, folder / "media"))
    if removed:
        log.info("removed %d temporary files left in %s", removed, folder)

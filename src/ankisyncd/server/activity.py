"""What this process has served, for the admin page: today's syncs by outcome (from the same
sync events the metrics count), recent failed requests, and each user's last sync.

Kept in memory (a restart starts afresh); nothing here touches the disk.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from dataclasses import dataclass
from typing import NamedTuple

from ankisyncd.observe.events import Moved

RECENT_ERRORS = 50


@dataclass(frozen=True)
class RequestError:
    at: float
    method: str
    user: str
    client: str
    status: int


class LastSync(NamedTuple):  # one per meta: a tuple is built ~3x faster than a frozen dataclass
    at: float
    client: str


class Activity:
    """A SyncEvents listener, plus one ``record`` call per answered request; thread-safe."""

    def __init__(self) -> None:
        self.started = time.time()
        self._lock = threading.Lock()
        self._day = ""
        self._today: Counter[str] = Counter()
        self._errors: deque[RequestError] = deque(maxlen=RECENT_ERRORS)
        self._last: dict[str, LastSync] = {}

    def _count(self, outcome: str) -> None:
        with self._lock:
            day = time.strftime("%Y-%m-%d")
            if day != self._day:
                self._day, self._today = day, Counter()
            self._today[outcome] += 1

    # SyncEvents (observe/events.py)
    def login(self, ok: bool) -> None:
        if not ok:
            self._count("login_refused")

    def sync_ended(self, user: str, outcome: str, up: Moved, down: Moved) -> None:
        self._count(outcome)

    def full_sync(self, user: str, direction: str, size: int) -> None:
        self._count(f"full_{direction}")

    def media_moved(self, user: str, up: int, down: int) -> None:
        pass

    def record(self, method: str, user: str, client: str, status: int) -> None:
        """Note one answered request (``method`` as in the log: ``start``, ``msync/begin``...)."""
        now = time.time()
        with self._lock:
            if status >= 400:
                self._errors.append(RequestError(now, method, user, client, status))
            elif method == "meta":  # every sync, even one with nothing to send, starts here
                self._last[user] = LastSync(now, client)

    def syncs_today(self) -> dict[str, int]:
        with self._lock:
            today = time.strftime("%Y-%m-%d")
            return dict(self._today) if today == self._day else {}

    def recent_errors(self) -> list[RequestError]:
        """Newest first."""
        with self._lock:
            return list(reversed(self._errors))

    def last_sync(self, user: str) -> LastSync | None:
        with self._lock:
            return self._last.get(user)

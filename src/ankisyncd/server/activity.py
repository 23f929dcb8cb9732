"""What this process has served: syncs per day by outcome, recent errors, each user's last sync.

Kept in memory (a restart starts afresh) and fed one call per request by the HTTP layer; the admin
page reads it. Nothing here touches the disk.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from dataclasses import dataclass

RECENT_ERRORS = 50

# Outcome of a sync request, by protocol method: the steps that end a sync of each kind.
_ENDINGS = {
    "finish": "normal sync",
    "upload": "full upload",
    "download": "full download",
    "abort": "aborted",
}


@dataclass(frozen=True)
class RequestError:
    at: float
    method: str
    user: str
    client: str
    status: int


@dataclass(frozen=True)
class LastSync:
    at: float
    client: str


class Activity:
    """Counts and recent events of the requests this process answered; thread-safe."""

    def __init__(self) -> None:
        self.started = time.time()
        self._lock = threading.Lock()
        self._day = ""
        self._today: Counter[str] = Counter()
        self._errors: deque[RequestError] = deque(maxlen=RECENT_ERRORS)
        self._last: dict[str, LastSync] = {}

    def record(self, method: str, user: str, client: str, status: int) -> None:
        """Note one answered request (``method`` as in the log: ``start``, ``msync/begin``...)."""
        now = time.time()
        outcome = self._outcome(method, status)
        with self._lock:
            day = time.strftime("%Y-%m-%d", time.localtime(now))
            if day != self._day:
                self._day, self._today = day, Counter()
            if outcome:
                self._today[outcome] += 1
            if status >= 400:
                self._errors.append(RequestError(now, method, user, client, status))
            elif method == "meta":  # every sync, even one with nothing to send, starts here
                self._last[user] = LastSync(now, client)

    @staticmethod
    def _outcome(method: str, status: int) -> str | None:
        if method == "hostKey":
            return "login refused" if status == 403 else None
        if status == 403:
            return "refused: must log in again"
        if status >= 400:
            return "failed"
        return _ENDINGS.get(method)

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

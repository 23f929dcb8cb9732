"""Admin sessions: a random token in a cookie, kept in memory, with its CSRF token.

A restart logs the admin out. Only a digest of each token is kept, so a memory dump or a log
line can never be replayed as a cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass, field

COOKIE = "ankisyncd_admin"
# Sessions kept at once; the oldest goes first. One admin rarely has more than a few browsers.
MAX_SESSIONS = 100


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass
class Session:
    expires: float
    address: str
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    flash: str | None = None

    def take_flash(self) -> str | None:
        message, self.flash = self.flash, None
        return message

    def csrf_ok(self, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(token.encode(), self.csrf.encode())


class Sessions:
    """Logged-in browsers, by the digest of their cookie."""

    def __init__(self, lifetime_seconds: int) -> None:
        self.lifetime = lifetime_seconds
        self._by_digest: dict[str, Session] = {}
        self._lock = threading.Lock()

    def create(self, address: str) -> tuple[str, Session]:
        """A new session; returns the cookie value (shown to nobody else) and the session."""
        token = secrets.token_urlsafe(32)
        session = Session(time.time() + self.lifetime, address)
        with self._lock:
            self._drop_expired()
            while len(self._by_digest) >= MAX_SESSIONS:
                del self._by_digest[next(iter(self._by_digest))]
            self._by_digest[_digest(token)] = session
        return token, session

    def get(self, token: str | None) -> Session | None:
        if not token:
            return None
        with self._lock:
            session = self._by_digest.get(_digest(token))
            if session is None or session.expires <= time.time():
                self._by_digest.pop(_digest(token), None)
                return None
            return session

    def end(self, token: str | None) -> None:
        if token:
            with self._lock:
                self._by_digest.pop(_digest(token), None)

    def _drop_expired(self) -> None:
        now = time.time()
        for key in [k for k, s in self._by_digest.items() if s.expires <= now]:
            del self._by_digest[key]

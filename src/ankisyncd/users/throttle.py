"""Login throttling: failed logins per client address and per user name, counted in leaky
buckets; once a bucket is full, logins it covers are refused without checking the password.

Each attempt is charged when it starts (so a burst of parallel attempts cannot all reach the
hasher) and refunded when it succeeds. Memory is bounded: at most ``MAX_TRACKED`` buckets.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from dataclasses import dataclass

MAX_TRACKED = 100_000


@dataclass
class _Bucket:
    level: float
    at: float


class Buckets:
    """Leaky buckets by key: each holds up to ``limit`` attempts and empties in ``seconds``."""

    def __init__(self, limit: int, seconds: float) -> None:
        self.limit = limit
        self.rate = limit / seconds  # attempts forgiven per second
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def _level(self, key: str, now: float) -> float:
        bucket = self._buckets.get(key)
        if bucket is None:
            return 0.0
        return max(0.0, bucket.level - (now - bucket.at) * self.rate)

    def wait(self, key: str, now: float) -> float:
        """Seconds until ``key`` may try again (0: now)."""
        excess = self._level(key, now) + 1 - self.limit
        return 0.0 if excess <= 0 else excess / self.rate

    def add(self, key: str, amount: float, now: float) -> None:
        level = max(0.0, self._level(key, now) + amount)
        self._buckets.pop(key, None)
        if level > 0:
            self._buckets[key] = _Bucket(level, now)
            while len(self._buckets) > MAX_TRACKED:
                self._buckets.popitem(last=False)  # the least recently charged


class LoginThrottle:
    """Decides whether a login may be checked; ``limit`` 0 switches a kind of bucket off."""

    def __init__(self, per_address: int, per_user: int, seconds: float) -> None:
        self.by_address = Buckets(per_address, seconds) if per_address else None
        self.by_user = Buckets(per_user, seconds) if per_user else None

    def begin(self, address: str, user: str) -> int:
        """Charge an attempt, or return the whole seconds to wait (nothing charged then)."""
        now = time.monotonic()
        pairs = [(b, k) for b, k in ((self.by_address, address), (self.by_user, user)) if b]
        wait = max((b.wait(k, now) for b, k in pairs), default=0.0)
        if wait > 0:
            return max(1, math.ceil(wait))
        for buckets, key in pairs:
            buckets.add(key, 1, now)
        return 0

    def succeeded(self, address: str, user: str) -> None:
        """Refund the attempt charged by ``begin``: right passwords never lock anyone out."""
        now = time.monotonic()
        for buckets, key in ((self.by_address, address), (self.by_user, user)):
            if buckets:
                buckets.add(key, -1, now)

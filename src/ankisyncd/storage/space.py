"""Free space under the data root: the low-space warning and the room an upload may use."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from ankisyncd.errors import StorageFault

log = logging.getLogger(__name__)
# How long a reading is reused by ``SpaceWatch.check`` (meta asks on every sync).
RECHECK_SECONDS = 5.0


def free_bytes(path: Path) -> int:
    """Bytes that an unprivileged writer may still use on the file system holding ``path``."""
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def require_room(path: Path, needed: int, what: str) -> None:
    """Raise StorageFault (before anything is written) when ``needed`` bytes cannot fit."""
    free = free_bytes(path)
    if needed > free:
        raise StorageFault(f"{what} needs {needed} bytes; {free} are free under {path}")


class SpaceWatch:
    """Logs a warning when free space under ``root`` falls below ``low_bytes`` (once per fall)
    and tells /health; ``free`` is the reading a metric can report."""

    def __init__(self, root: Path, low_bytes: int) -> None:
        self.root = root
        self.low_bytes = low_bytes
        self.free: int | None = None
        self.low = False
        self._checked_at = -RECHECK_SECONDS

    def check(self, *, fresh: bool = True) -> int | None:
        """Read the free space (or reuse a reading of the last few seconds); None if the data
        root cannot be read."""
        now = time.monotonic()
        if not fresh and now - self._checked_at < RECHECK_SECONDS:
            return self.free
        self._checked_at = now
        try:
            self.free = free_bytes(self.root)
        except OSError as exc:
            log.warning("cannot read the free space under %s: %s", self.root, exc)
            self.free = None
            return None
        low = self.free < self.low_bytes
        if low and not self.low:
            log.warning(
                "low disk space: %d MiB free under %s (warning below %d MiB)",
                self.free >> 20,
                self.root,
                self.low_bytes >> 20,
            )
        elif self.low and not low:
            log.info("disk space recovered: %d MiB free under %s", self.free >> 20, self.root)
        self.low = low
        return self.free

"""Free space under the data root: the low-space warning and the room an upload may use."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import BinaryIO

from ankisyncd.storage.upload import SQLITE_MAGIC

log = logging.getLogger(__name__)
# How long a reading is reused by ``SpaceWatch.check`` (meta asks on every sync).
RECHECK_SECONDS = 5.0


def free_bytes(path: Path) -> int:
    """Bytes that an unprivileged writer may still use on the file system holding ``path``."""
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


# The SQLite file header: page size (offset 16), change counter (24), size in pages (28), and
# the counter value for which that size is valid (92); https://sqlite.org/fileformat.html
SQLITE_HEADER_BYTES = 100


def declared_database_size(header: bytes) -> int | None:
    """The size of the SQLite database whose first 100 bytes are ``header``, as its header
    records it; None when it is no SQLite header or its size field is not valid."""
    if len(header) < SQLITE_HEADER_BYTES or not header.startswith(SQLITE_MAGIC):
        return None
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    if header[24:28] != header[92:96]:  # written by a version that did not keep the size
        return None
    return page_size * int.from_bytes(header[28:32], "big")


class RoomWriter:
    """Writes a decoded full upload into ``fh`` while it fits in ``room`` bytes.

    The first bytes are held back until the SQLite header is complete: when the size it
    records is more than ``room``, nothing at all is written (``refused``). Otherwise writing
    stops at the first piece that would pass ``room`` (``overflowed``); the caller reads the
    rest of the body so that the client gets its answer.
    """

    def __init__(self, fh: BinaryIO, room: int) -> None:
        self.fh, self.room = fh, room
        self.head: bytes | None = b""  # None once the header has been looked at
        self.declared: int | None = None
        self.written = 0
        self.refused = self.overflowed = False

    def write(self, data: bytes) -> None:
        """Take the next decoded piece (called in a worker thread)."""
        if self.refused or self.overflowed:
            return
        if self.head is not None:
            self.head += data
            if len(self.head) < SQLITE_HEADER_BYTES:
                return
            data, self.head = self.head, None
            self.declared = declared_database_size(data[:SQLITE_HEADER_BYTES])
            if self.declared is not None and self.declared > self.room:
                self.refused = True
                return
        if self.written + len(data) > self.room:
            self.overflowed = True
            return
        self.fh.write(data)
        self.written += len(data)

    def close(self) -> None:
        """Write a body shorter than a header, so that the upload's check names the problem."""
        head, self.head = self.head, None
        if head:
            self.write(head)


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

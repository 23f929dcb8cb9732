"""What the server keeps per user for the collection between requests, and which steps are
small enough to run on the event loop."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ankisyncd.server._guarded import Guarded
from ankisyncd.server._tally import Tally
from ankisyncd.server._users import UserState
from ankisyncd.storage.collection import CollectionConnection, CollectionState
from ankisyncd.storage.locks import COLLECTION_LOCK, lock_path
from ankisyncd.storage.paths import COLLECTION_FILE
from ankisyncd.sync.session import SyncSession
from ankisyncd.threads import in_thread

# Small steps run on the event loop: a thread hop costs them more than their work (~0.1 ms of
# CPU alone, and with many users syncing the loop and the workers trade the GIL around every
# SQLite call; W9: 6.6 -> 3.6 ms of server CPU per small sync). A step is small when it
# carries at most INLINE_MAX_ROWS rows and the collection, open already, is at most
# INLINE_MAX_COLLECTION_BYTES: the sanity check's counts and a chunk's lookups grow with it
# (~3 ms at 30 MB). Commits, which wait for the disk, and full syncs always run in threads.
INLINE_MAX_ROWS = 100
INLINE_MAX_COLLECTION_BYTES = 64 << 20


@dataclass
class CollectionUser(UserState):
    """What the server keeps per user for the collection between requests; guarded by ``lock``."""

    tally: Tally = field(kw_only=True)
    session: SyncSession | None = None
    db: CollectionConnection = field(init=False)
    _state: tuple[object, CollectionState] | None = None
    # ``async with writing``: ``lock`` and the collection lock file (a restore takes it).
    writing: Guarded = field(init=False)

    def __post_init__(self) -> None:
        self.db = CollectionConnection(self.collection)
        self.writing = Guarded(self.lock, lock_path(self.folder, COLLECTION_LOCK))

    async def collection_state(self) -> CollectionState:
        """What ``meta`` reports, read again only when the collection's files have changed."""
        stamp = self.db.file_stamp()
        if self._state is None or self._state[0] != stamp:
            # A few rows of an open collection; opening one may create it: a thread.
            state = self.db.state() if self.db.is_open else await in_thread(self.db.state)
            self._state = (stamp, state)
        return self._state[1]

    def collection_changed(self) -> None:
        self._state = None

    def small(self, rows: int) -> bool:
        """Whether a step of ``rows`` rows on this collection is cheap enough for the loop.
        Its connection's file is not checked here (six stats, 1.2% of a small sync's instructions):
        steps check ``db.replaced()`` first, and ``start`` reopens a replaced file itself."""
        return (
            rows <= INLINE_MAX_ROWS
            and self._state is not None
            and self._state[1].file_size <= INLINE_MAX_COLLECTION_BYTES
            and self.db.connected
        )

    @property
    def collection(self) -> Path:
        return self.folder / COLLECTION_FILE

    async def abort_session(self, outcome: str = "aborted") -> None:
        """Roll back and forget any unfinished normal sync."""
        session, self.session = self.session, None
        if session is not None:
            session.rollback()  # nothing to write back in WAL mode: quick
            self.tally.end(outcome)
            self.db.release()

    def in_sync(self) -> bool:
        return self.session is not None

    async def release(self) -> None:
        await self.abort_session()
        await in_thread(self.db.close)

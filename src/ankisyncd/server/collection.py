"""The collection side of the server: normal syncs and full syncs of each user's collection.

Work for one user is serialised by that user's lock; different users never wait for each other.
"""

from __future__ import annotations

from collections.abc import Callable
from io import BufferedReader
from pathlib import Path
from typing import TypeVar

import anyio

from ankisyncd.errors import BadRequest, SessionConflict, StorageFault, SyncdError
from ankisyncd.observe.events import Moved, SyncEvents
from ankisyncd.protocol.envelope import BodyStream, UserName
from ankisyncd.protocol.normal import (
    Chunk,
    Counts,
    Graves,
    SanityCheckResponse,
    StartRequest,
    UnchunkedChanges,
)
from ankisyncd.server._collection_user import CollectionUser
from ankisyncd.server._tally import Tally, add_changes, add_chunk, add_graves
from ankisyncd.server._users import UserTable
from ankisyncd.storage.collection import CollectionState, remove_database, temp_file
from ankisyncd.storage.paths import user_folder
from ankisyncd.storage.snapshots import SnapshotStore
from ankisyncd.storage.space import RoomWriter, free_bytes
from ankisyncd.sync import full
from ankisyncd.sync.changes import apply_changes, parse_changes
from ankisyncd.sync.chunks import apply_chunk, next_chunk
from ankisyncd.sync.finish import finish
from ankisyncd.sync.sanity import sanity_check
from ankisyncd.sync.session import Busy, SyncSession
from ankisyncd.sync.start import apply_graves, start
from ankisyncd.threads import in_thread

T = TypeVar("T")

# The steps of normal syncs that parse, check and store rows are CPU-bound: more of them at
# once on threads only fight over the GIL (with eight users syncing at once, a third of the
# CPU went to thread switches). What waits on the disk (start, the commit of finish) is not
# limited.
SYNC_STEP_THREADS = 2
# Small steps run on the event loop (see ``CollectionUser.small``); a notetype counts as
# NOTETYPE_ROWS rows.
NOTETYPE_ROWS = 10


class CollectionServer:
    """Implements the ``/sync`` endpoints after login for authenticated users."""

    def __init__(
        self,
        data_root: Path,
        max_decompressed_bytes: int,
        snapshots: SnapshotStore,
        events: SyncEvents,
        max_open: int,
    ) -> None:
        self.data_root = data_root
        self.max_decompressed_bytes = max_decompressed_bytes
        self.snapshots = snapshots
        self.events = events
        self.users = UserTable(
            lambda name: CollectionUser(
                user_folder(self.data_root, name), tally=Tally(name, self.events)
            ),
            max_open,
        )
        self._sync_steps: anyio.CapacityLimiter | None = None  # made on the event loop

    async def close(self) -> None:
        """Roll back unfinished syncs and close the databases, which checkpoints their WAL.
        A database a request still uses (the shutdown timed out) is left to the process exit."""
        await self.users.close()

    async def _sync_step(self, func: Callable[..., T], *args: object) -> T:
        """Run a CPU-bound step of a normal sync in a worker thread, a few at a time."""
        if self._sync_steps is None:
            self._sync_steps = anyio.CapacityLimiter(SYNC_STEP_THREADS)
        return await in_thread(func, *args, limiter=self._sync_steps)

    async def state(self, user: UserName) -> CollectionState:
        """End any unfinished sync and report the stored collection's state (for ``meta``)."""
        async with self.users.use(user) as state, state.lock:
            await state.abort_session()
            state.tally.meta()
            return await state.collection_state()

    async def abort(self, user: UserName) -> None:
        """End any normal sync of the user, whatever its session key (as the official server)."""
        async with self.users.use(user) as state, state.lock:
            await state.abort_session()

    async def start(self, user: UserName, skey: str, req: StartRequest) -> Graves:
        if not skey:
            raise BadRequest("missing skey")
        async with self.users.use(user) as state, state.writing:
            await state.abort_session()
            state.tally.begin()
            try:
                state.session, graves = await self._start(state, skey, req)
                add_graves(state.tally.up, req.graves)
                add_graves(state.tally.down, graves)
            except SyncdError:
                state.db.release()
                raise
            except Exception as exc:
                state.db.release()
                raise BadRequest("start failed") from exc
        return graves

    async def _start(
        self, state: CollectionUser, skey: str, req: StartRequest
    ) -> tuple[SyncSession, Graves]:
        graves = req.graves
        if state.small(0 if graves is None else _grave_count(graves)):
            try:
                return start(state.db, skey, req, wait=False)
            except Busy:
                pass  # another process is writing: wait for it in a thread
        return await in_thread(start, state.db, skey, req)

    async def apply_graves(self, user: UserName, skey: str, graves: Graves) -> None:
        await self._in_session(user, skey, _grave_count(graves), apply_graves, graves)
        if kept := self.users.peek(user):
            add_graves(kept.tally.up, graves)

    async def apply_changes(
        self, user: UserName, skey: str, changes: UnchunkedChanges
    ) -> UnchunkedChanges:
        rows = NOTETYPE_ROWS * len(changes.notetypes) + len(changes.decks)
        rows += len(changes.deck_configs) + len(changes.tags)
        async with self.users.use(user) as state:
            inline = state.small(rows)
        if inline:
            parsed = parse_changes(changes)
        else:
            parsed = await self._sync_step(parse_changes, changes)
        theirs = await self._in_session(user, skey, rows, apply_changes, parsed)
        if kept := self.users.peek(user):
            add_changes(kept.tally.up, changes)
            add_changes(kept.tally.down, theirs)
        return theirs

    async def chunk(self, user: UserName, skey: str) -> Chunk:
        chunk = await self._in_session(user, skey, 0, next_chunk)
        if kept := self.users.peek(user):
            add_chunk(kept.tally.down, chunk)
        return chunk

    async def apply_chunk(self, user: UserName, skey: str, chunk: Chunk) -> None:
        rows = len(chunk.revlog) + len(chunk.cards) + len(chunk.notes)
        await self._in_session(user, skey, rows, apply_chunk, chunk)
        if kept := self.users.peek(user):
            add_chunk(kept.tally.up, chunk)

    async def sanity_check(self, user: UserName, skey: str, client: Counts) -> SanityCheckResponse:
        return await self._in_session(user, skey, 0, sanity_check, client)

    async def finish(self, user: UserName, skey: str) -> int:
        return await self._in_session(user, skey, 0, finish, end=True)

    def settle(self, user: UserName) -> None:
        """The user went on to media sync: a ``meta`` before it found nothing to sync."""
        if kept := self.users.peek(user):
            kept.tally.settle()

    def active_sessions(self) -> int:
        return sum(1 for _, state in self.users.items() if state.session is not None)

    def sizes(self) -> dict[str, int]:
        """Collection file sizes the server has seen (by ``meta``), per user."""
        users = self.users.items()
        return {n: s._state[1].file_size for n, s in users if s._state is not None}

    async def _in_session(
        self,
        user: UserName,
        skey: str,
        rows: int,
        step: Callable[..., T],
        *args: object,
        end: bool = False,
    ) -> T:
        """Run one step of the user's normal sync (on the loop when small, ``rows`` telling),
        and with ``end`` commit the sync after it; a failure rolls the whole sync back (400;
        503 when the server's storage failed)."""
        if not skey:
            raise BadRequest("missing skey")
        async with self.users.use(user) as state, state.writing:
            session = state.session
            if session is None:
                state.tally.end("conflict")
                raise SessionConflict("no active sync")
            if session.skey != skey:
                state.tally.end("conflict")
                raise SessionConflict("active sync with different key")
            if state.db.replaced():  # a snapshot was restored since ``start``
                await state.abort_session("conflict")
                raise SessionConflict("collection replaced during the sync")
            try:
                if state.small(rows):
                    result = step(session, *args)
                else:
                    result = await self._sync_step(step, session, *args)
                if end:  # the commit waits for the disk: a thread
                    await in_thread(session.commit)
                    session.release_memory()
            except Exception as exc:
                await state.abort_session("failed")
                if isinstance(exc, BadRequest):
                    raise
                raise BadRequest(f"{step.__name__} failed: {exc}") from exc
            if end:
                state.session = None
                state.collection_changed()
                state.tally.end("normal")
                state.db.release()
            elif session.failed_sanity_check:
                # Its transaction is rolled back: a later step would write outside any.
                state.session = None
                session.release_memory()
                state.tally.end("failed")
            return result

    async def upload(self, user: UserName, body: BodyStream) -> str:
        """Receive a full upload; returns the in-band text the client shows (``OK`` on success)."""
        async with self.users.use(user) as state:
            await in_thread(state.folder.mkdir, 0o777, False, True)
            staged = await in_thread(temp_file, state.folder, "upload")
            scratch = await in_thread(temp_file, state.folder, "upgrade")
            try:
                return await self._store_upload(user, state, body, staged, scratch)
            finally:
                await in_thread(remove_database, staged)
                await in_thread(remove_database, scratch)

    async def _store_upload(
        self, user: UserName, state: CollectionUser, body: BodyStream, staged: Path, scratch: Path
    ) -> str:
        room = await in_thread(free_bytes, state.folder)
        with staged.open("wb") as fh:
            writer = RoomWriter(fh, room)
            size = await body.copy_to(writer.write)
            writer.close()
        if writer.refused:
            raise StorageFault(
                f"full upload of a {writer.declared}-byte collection cannot fit, {room} bytes"
                " are free: refused before writing"
            )
        if writer.overflowed:
            raise StorageFault(f"full upload of {size} bytes; {room} were free")
        problem, checked = await in_thread(
            full.check_received_upload, staged, size, self.max_decompressed_bytes, scratch
        )
        state.tally.after_meta = False
        if problem is not None:
            self.events.sync_ended(user, "failed", Moved(), Moved())
            return problem
        async with state.writing:
            await state.abort_session()
            await in_thread(state.db.close)
            state.collection_changed()
            await in_thread(self.snapshots.before_replace, user)
            text = await in_thread(full.store_upload, checked, state.collection)
        self.events.full_sync(user, "upload", size)
        return text

    async def download(self, user: UserName, version: int) -> tuple[BufferedReader, int]:
        """Open a snapshot of the collection for a full download: (file, size)."""
        async with self.users.use(user) as state, state.writing:
            await state.abort_session()
            await in_thread(state.db.close)
            state.collection_changed()
            state.tally.after_meta = False
            fh, size = await in_thread(full.download, state.collection, version)
        self.events.full_sync(user, "download", size)
        return fh, size


def _grave_count(graves: Graves) -> int:
    return len(graves.cards) + len(graves.notes) + len(graves.decks)

"""SyncServer: authentication, per-user locking, and dispatch to the engine.

Every SQLite or hashing call runs in a worker thread; the event loop only moves bytes.
Work for one user is serialised by that user's lock; different users never wait for each other.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from tempfile import SpooledTemporaryFile
from typing import BinaryIO, TypeVar, cast

import anyio.to_thread

from ankisyncd.config import Settings
from ankisyncd.errors import AuthFailed, BadRequest, SessionConflict, StateChanged, SyncdError
from ankisyncd.media.changes import media_changes
from ankisyncd.media.db import MediaStore
from ankisyncd.media.download import FileGone, download_files
from ankisyncd.media.names import BadName
from ankisyncd.media.sanity import media_sanity
from ankisyncd.media.upload import upload_changes
from ankisyncd.media.zip import BadZip
from ankisyncd.protocol.envelope import BodyStream, UserName
from ankisyncd.protocol.messages import HostKeyRequest, HostKeyResponse, MetaRequest, MetaResponse
from ankisyncd.protocol.normal import (
    Chunk,
    Counts,
    Graves,
    SanityCheckResponse,
    StartRequest,
    UnchunkedChanges,
)
from ankisyncd.storage.collection import (
    TEMP_PREFIX,
    CollectionConnection,
    CollectionState,
    open_temp_file,
    remove_database,
    remove_temp_files,
    temp_file,
)
from ankisyncd.storage.paths import COLLECTION_FILE, user_folder
from ankisyncd.sync import full
from ankisyncd.sync.changes import apply_changes, parse_changes
from ankisyncd.sync.chunks import apply_chunk, next_chunk
from ankisyncd.sync.finish import finish
from ankisyncd.sync.meta import meta as build_meta
from ankisyncd.sync.sanity import sanity_check
from ankisyncd.sync.session import SyncSession
from ankisyncd.sync.start import apply_graves, start
from ankisyncd.users.accounts import Accounts

log = logging.getLogger(__name__)
MEDIA_SPOOL_BYTES = 16 << 20
T = TypeVar("T")


# The steps of normal syncs that parse, check and store rows are CPU-bound: more of them at
# once on threads only fight over the GIL (with eight users syncing at once, a third of the
# CPU went to thread switches). Steps that wait on the disk (start, finish) are not limited.
SYNC_STEP_THREADS = 2


async def in_thread(
    func: Callable[..., T], *args: object, limiter: anyio.CapacityLimiter | None = None
) -> T:
    return await anyio.to_thread.run_sync(func, *args, limiter=limiter)


@dataclass
class UserState:
    """What the server keeps per user between requests; guarded by ``lock``."""

    folder: Path
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    session: SyncSession | None = None
    db: CollectionConnection = field(init=False)
    # Media has its own lock: media requests never wait for, or disturb, a collection sync.
    media_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    media: MediaStore = field(init=False)
    media_usn: int | None = None  # cached; only this process changes it
    _state: tuple[object, CollectionState] | None = None

    def __post_init__(self) -> None:
        self.media = MediaStore(self.folder)
        self.db = CollectionConnection(self.collection)

    async def collection_state(self) -> CollectionState:
        """What ``meta`` reports, read again only when the collection's files have changed."""
        stamp = self.db.file_stamp()
        if self._state is None or self._state[0] != stamp:
            self._state = (stamp, await in_thread(self.db.state))
        return self._state[1]

    def collection_changed(self) -> None:
        self._state = None

    @property
    def collection(self) -> Path:
        return self.folder / COLLECTION_FILE

    async def abort_session(self) -> None:
        """Roll back and forget any unfinished normal sync."""
        session, self.session = self.session, None
        if session is not None:
            await in_thread(session.rollback)


class SyncServer:
    """Implements the sync endpoints on top of the storage and engine layers."""

    def __init__(self, settings: Settings) -> None:
        self.data_root = settings.data_root
        self.max_payload_bytes = settings.max_payload_bytes
        self.max_decompressed_bytes = settings.max_decompressed_bytes
        self.accounts = Accounts.build(
            settings.auth_db_path,
            [(u.name, str(u.secret), u.hashed, u.source) for u in settings.env_users],
        )
        self._users: dict[str, UserState] = {}
        self._sync_steps: anyio.CapacityLimiter | None = None  # made on the event loop

    def startup(self) -> None:
        """Create the data root and remove temporary files that interrupted requests left."""
        self.data_root.mkdir(parents=True, exist_ok=True)
        for name in self.accounts.env_accounts:
            user_folder(self.data_root, name).mkdir(exist_ok=True)
        for folder in self.data_root.iterdir():
            if folder.is_dir() and not folder.name.startswith("."):
                if (folder / "media.db").exists():
                    store = MediaStore(folder)
                    with store.open():
                        pass  # finishes media changes a crash interrupted
                    store.close()
                removed = remove_temp_files(folder)
                if removed:
                    log.info("removed %d temporary files left in %s", removed, folder)

    async def shutdown(self) -> None:
        """Roll back unfinished syncs and close the databases, which checkpoints their WAL.
        A database a request still uses (the shutdown timed out) is left to the process exit."""
        for state in self._users.values():
            if not state.lock.locked():
                async with state.lock:
                    await state.abort_session()
                    await in_thread(state.db.close)
            if not state.media_lock.locked():
                async with state.media_lock:
                    await in_thread(state.media.close)

    async def _sync_step(self, func: Callable[..., T], *args: object) -> T:
        """Run a CPU-bound step of a normal sync in a worker thread, a few at a time."""
        if self._sync_steps is None:
            self._sync_steps = anyio.CapacityLimiter(SYNC_STEP_THREADS)
        return await in_thread(func, *args, limiter=self._sync_steps)

    def _user(self, name: UserName) -> UserState:
        state = self._users.get(name)
        if state is None:
            state = self._users[name] = UserState(user_folder(self.data_root, name))
        return state

    async def authenticate(self, host_key: str) -> UserName:
        """Map a host key to its user, or raise AuthFailed."""
        name = self.accounts.cached_user(host_key)
        if name is None:
            name = await in_thread(self.accounts.user_for_key, host_key)
        if name is None:
            raise AuthFailed("invalid hkey")
        return UserName(name)

    async def host_key(self, req: HostKeyRequest) -> HostKeyResponse:
        key = await in_thread(self.accounts.login, req.username, req.password)
        if key is None:
            raise AuthFailed("invalid user or password")
        return HostKeyResponse(key)

    async def meta(self, user: UserName, req: MetaRequest) -> MetaResponse:
        state = self._user(user)
        async with state.lock:
            await state.abort_session()
            stored = await state.collection_state()
        media_usn = await self.media_usn(user)
        return build_meta(stored, req, media_usn, self.max_decompressed_bytes)

    async def media_usn(self, user: UserName) -> int:
        state = self._user(user)
        if state.media_usn is None:
            async with state.media_lock:
                state.media_usn = await in_thread(state.media.last_usn)
        return state.media_usn

    async def media_begin(self, user: UserName) -> int:
        return await self.media_usn(user)

    async def media_changes(self, user: UserName, last_usn: int) -> list[tuple[str, int, str]]:
        state = self._user(user)
        async with state.media_lock:
            return await in_thread(media_changes, state.media, last_usn)

    async def media_upload(self, user: UserName, body: BodyStream) -> tuple[int, int]:
        """Apply an uploaded zip; returns (entries processed, media usn afterwards)."""
        state = self._user(user)
        await in_thread(state.folder.mkdir, 0o777, False, True)
        # Batches are small (the client sends at most 25 files, ~2.5 MB): kept in memory,
        # a larger one goes to an unnamed temporary file that vanishes when closed.
        with SpooledTemporaryFile(
            MEDIA_SPOOL_BYTES, "w+b", dir=str(state.folder), prefix=f"{TEMP_PREFIX}media-zip-"
        ) as fh:
            size = 0
            async for data in body:
                size += len(data)
                if size <= MEDIA_SPOOL_BYTES:
                    fh.write(data)
                else:
                    await in_thread(fh.write, data)
            fh.seek(0)
            async with state.media_lock:
                processed, usn = await in_thread(
                    self._apply_media_upload, state, cast(BinaryIO, fh)
                )
                state.media_usn = usn
                return processed, usn

    def _apply_media_upload(self, state: UserState, fh: BinaryIO) -> tuple[int, int]:
        try:
            return upload_changes(
                state.media,
                fh,
                lambda: open_temp_file(state.folder, "media"),
                self.max_decompressed_bytes,
            )
        except (BadZip, BadName) as exc:
            raise BadRequest(str(exc)) from exc

    async def media_download(self, user: UserName, names: list[str]) -> bytes:
        state = self._user(user)
        async with state.media_lock:
            try:
                return await in_thread(download_files, state.media, names)
            except FileGone as exc:
                raise StateChanged(str(exc)) from exc

    async def media_sanity(self, user: UserName, local: int) -> str:
        state = self._user(user)
        async with state.media_lock:
            return await in_thread(media_sanity, state.media, local)

    async def abort(self, user: UserName) -> None:
        """End any normal sync of the user, whatever its session key (as the official server)."""
        state = self._user(user)
        async with state.lock:
            await state.abort_session()

    async def start(self, user: UserName, skey: str, req: StartRequest) -> Graves:
        if not skey:
            raise BadRequest("missing skey")
        state = self._user(user)
        async with state.lock:
            await state.abort_session()
            try:
                state.session, graves = await in_thread(start, state.db, skey, req)
            except SyncdError:
                raise
            except Exception as exc:
                raise BadRequest("start failed") from exc
        return graves

    async def apply_graves(self, user: UserName, skey: str, graves: Graves) -> None:
        await self._in_session(user, skey, apply_graves, graves)

    async def apply_changes(
        self, user: UserName, skey: str, changes: UnchunkedChanges
    ) -> UnchunkedChanges:
        parsed = await self._sync_step(parse_changes, changes)
        return await self._in_session(user, skey, apply_changes, parsed)

    async def chunk(self, user: UserName, skey: str) -> Chunk:
        return await self._in_session(user, skey, next_chunk)

    async def apply_chunk(self, user: UserName, skey: str, chunk: Chunk) -> None:
        await self._in_session(user, skey, apply_chunk, chunk)

    async def sanity_check(self, user: UserName, skey: str, client: Counts) -> SanityCheckResponse:
        return await self._in_session(user, skey, sanity_check, client)

    async def finish(self, user: UserName, skey: str) -> int:
        return await self._in_session(user, skey, finish, end=True)

    async def _in_session(
        self, user: UserName, skey: str, step: Callable[..., T], *args: object, end: bool = False
    ) -> T:
        """Run one step of the user's normal sync; a failure rolls the whole sync back (400)."""
        if not skey:
            raise BadRequest("missing skey")
        state = self._user(user)
        async with state.lock:
            session = state.session
            if session is None:
                raise SessionConflict("no active sync")
            if session.skey != skey:
                raise SessionConflict("active sync with different key")
            try:
                if end:
                    result = await in_thread(step, session, *args)
                else:
                    result = await self._sync_step(step, session, *args)
            except Exception as exc:
                await state.abort_session()
                if isinstance(exc, BadRequest):
                    raise
                raise BadRequest(f"{step.__name__} failed: {exc}") from exc
            if end:
                state.session = None
                state.collection_changed()
            return result

    async def upload(self, user: UserName, body: BodyStream) -> str:
        """Receive a full upload; returns the in-band text the client shows (``OK`` on success)."""
        state = self._user(user)
        await in_thread(state.folder.mkdir, 0o777, False, True)
        staged = await in_thread(temp_file, state.folder, "upload")
        scratch = await in_thread(temp_file, state.folder, "upgrade")
        try:
            size = 0
            with staged.open("wb") as fh:
                async for data in body:
                    size += len(data)
                    await in_thread(fh.write, data)
            problem, checked = await in_thread(
                full.check_received_upload, staged, size, self.max_decompressed_bytes, scratch
            )
            if problem is not None:
                return problem
            async with state.lock:
                await state.abort_session()
                await in_thread(state.db.close)
                state.collection_changed()
                return await in_thread(full.store_upload, checked, state.collection)
        finally:
            await in_thread(remove_database, staged)
            await in_thread(remove_database, scratch)

    async def download(self, user: UserName, version: int) -> tuple[BinaryIO, int]:
        """Open a snapshot of the collection for a full download: (file, size)."""
        state = self._user(user)
        async with state.lock:
            await state.abort_session()
            await in_thread(state.db.close)
            state.collection_changed()
            return await in_thread(full.download, state.collection, version)

"""The media side of the server: one ``media.db`` and media folder per user.

Media has locks of its own: media requests never wait for, or disturb, a collection sync.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from tempfile import SpooledTemporaryFile
from typing import BinaryIO, cast

from ankisyncd.errors import BadRequest, StateChanged
from ankisyncd.media.changes import media_changes
from ankisyncd.media.db import MediaStore
from ankisyncd.media.download import FileGone, download_files
from ankisyncd.media.names import BadName
from ankisyncd.media.sanity import media_sanity
from ankisyncd.media.upload import upload_changes
from ankisyncd.media.zip import BadZip, zip_entries
from ankisyncd.observe.events import SyncEvents
from ankisyncd.protocol.envelope import BodyStream, UserName
from ankisyncd.server._guarded import Guarded
from ankisyncd.server._users import UserState, UserTable
from ankisyncd.storage.collection import TEMP_PREFIX, open_temp_file
from ankisyncd.storage.locks import MEDIA_LOCK, lock_path
from ankisyncd.storage.paths import user_folder
from ankisyncd.storage.sqlite import file_stamp
from ankisyncd.threads import in_thread

log = logging.getLogger(__name__)
# Upload batches are small (the client sends at most 25 files, ~2.5 MB): kept in memory; a
# larger one goes to an unnamed temporary file that vanishes when closed.
MEDIA_SPOOL_BYTES = 16 << 20


@dataclass
class MediaUser(UserState):
    """What the server keeps per user for media between requests; guarded by ``lock``.

    Its ``media.db`` is opened on first use, which also finishes the renames a crash
    interrupted (not at start-up, whose time would grow with the number of users).
    """

    store: MediaStore = field(init=False)
    usn: int | None = None  # cached while ``media.db`` is unchanged
    media_bytes: int | None = None  # read with ``usn``
    usn_stamp: tuple[object, ...] = ()  # of ``media.db`` when ``usn`` was read: ``check
    # --repair`` changes it from another process

    writing: Guarded = field(init=False)  # ``lock`` and the media lock file

    def __post_init__(self) -> None:
        self.store = MediaStore(self.folder)
        self.writing = Guarded(self.lock, lock_path(self.folder, MEDIA_LOCK))

    async def release(self) -> None:
        await in_thread(self.store.close)


class MediaServer:
    """Implements the ``/msync`` endpoints for authenticated users."""

    def __init__(
        self, data_root: Path, max_decompressed_bytes: int, events: SyncEvents, max_open: int
    ) -> None:
        self.data_root = data_root
        self.max_decompressed_bytes = max_decompressed_bytes
        self.events = events
        self.users = UserTable(lambda name: MediaUser(user_folder(self.data_root, name)), max_open)

    async def close(self) -> None:
        """Close every idle ``media.db`` (a busy one is left to the process exit)."""
        await self.users.close()

    async def usn(self, user: UserName) -> int:
        async with self.users.use(user) as state:
            if state.usn is None or state.usn_stamp != file_stamp(state.store.db_path):
                async with state.lock:
                    usn, state.media_bytes = await in_thread(state.store.usage)
                    state.usn, state.usn_stamp = usn, file_stamp(state.store.db_path)
                    return usn
            return state.usn

    def sizes(self) -> dict[str, int]:
        """Media bytes per user, as last read (users seen since start)."""
        users = self.users.items()
        return {n: s.media_bytes for n, s in users if s.media_bytes is not None}

    async def changes(self, user: UserName, last_usn: int) -> list[tuple[str, int, str]]:
        async with self.users.use(user) as state, state.lock:
            return await in_thread(media_changes, state.store, last_usn)

    async def upload(self, user: UserName, body: BodyStream) -> tuple[int, int]:
        """Apply an uploaded zip; returns (entries processed, media usn afterwards)."""
        async with self.users.use(user) as state:
            await in_thread(state.folder.mkdir, 0o777, False, True)
            with SpooledTemporaryFile(
                MEDIA_SPOOL_BYTES, "w+b", dir=str(state.folder), prefix=f"{TEMP_PREFIX}media-zip-"
            ) as fh:
                await body.copy_to(fh.write)
                fh.seek(0)
                async with state.writing:
                    upload = cast(BinaryIO, fh)
                    processed, usn = await in_thread(self._apply_upload, state, upload)
                    state.usn, state.usn_stamp = usn, ()  # the byte total is read again at need
            self.events.media_moved(user, processed, 0)
            return processed, usn

    def _apply_upload(self, state: MediaUser, fh: BinaryIO) -> tuple[int, int]:
        # New content is written beside its final place, so that moving it there is a rename
        # even when the media folder is on a file system of its own.
        media_dir = state.store.media_dir
        try:
            return upload_changes(
                state.store,
                fh,
                lambda: open_temp_file(media_dir, "media"),
                self.max_decompressed_bytes,
            )
        except (BadZip, BadName) as exc:
            raise BadRequest(str(exc)) from exc

    async def download(self, user: UserName, names: list[str]) -> bytes:
        async with self.users.use(user) as state, state.lock:
            try:
                batch = await in_thread(download_files, state.store, names)
            except FileGone as exc:
                raise StateChanged(str(exc)) from exc
        self.events.media_moved(user, 0, zip_entries(batch) - 1)  # less the ``_meta`` member
        return batch

    async def sanity(self, user: UserName, local: int) -> str:
        async with self.users.use(user) as state, state.lock:
            return await in_thread(media_sanity, state.store, local)

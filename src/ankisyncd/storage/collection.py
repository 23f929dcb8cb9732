"""A user's stored collection: creating it, reading its state, preparing full downloads."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import sqlite3
import time
from collections.abc import Callable, Container
from datetime import datetime, timedelta
from io import BufferedReader
from pathlib import Path
from typing import BinaryIO, NamedTuple

import msgspec

from ankisyncd.errors import UserUnavailable
from ankisyncd.storage.sqlite import (
    Connection,
    checkpoint_and_close,
    connect,
    connect_checked,
    copy_database,
    copy_main_file,
    file_stamp,
    rollback_after,
)

# The stock empty collection the official server creates for a new user (scripts/).
TEMPLATE = Path(__file__).with_name("empty.anki2")
# Every temporary file we make in a user's folder starts with this; start-up removes leftovers.
TEMP_PREFIX = ".ankisyncd-tmp-"
ROLLOVER_HOUR = 4
NEWEST_SCHEMA = 18  # the newest collection schema (Anki 2.1.28 and later) that we can serve
_TEMP_FLAGS = (
    os.O_WRONLY
    | os.O_CREAT
    | os.O_EXCL
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)
_temp_numbers = itertools.count()
_decode = msgspec.json.Decoder().decode


class CollectionState(NamedTuple):
    """What ``meta`` reports about a stored collection (read again after every sync)."""

    modified: int  # ms
    schema_modified: int  # ms
    usn: int
    empty: bool
    sched_ver: int
    has_creation_offset: bool
    file_size: int


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def day_start(now: datetime) -> int:
    """The most recent ROLLOVER_HOUR o'clock in local time, in Unix seconds (a new ``crt``)."""
    start = now.replace(hour=ROLLOVER_HOUR, minute=0, second=0, microsecond=0)
    if start > now:
        start -= timedelta(days=1)
    return int(start.timestamp())


def temp_file(folder: Path, purpose: str) -> Path:
    """Create an empty temporary file in ``folder`` (same filesystem, so it can be renamed)."""
    fh, path = open_temp_file(folder, purpose)
    fh.close()
    return path


def open_temp_file(folder: Path, purpose: str) -> tuple[BinaryIO, Path]:
    """Create a temporary file in ``folder`` and return it open for writing, with its path.

    Named by process id and a counter, which costs a fraction of random names; a name left
    behind by an earlier process with the same id is skipped.
    """
    while True:
        name = os.path.join(folder, f"{TEMP_PREFIX}{purpose}-{os.getpid()}-{next(_temp_numbers)}")
        try:
            fd = os.open(name, _TEMP_FLAGS, 0o600)
        except FileExistsError:
            continue
        return os.fdopen(fd, "wb"), Path(name)


def remove_temp_files(folder: Path, before: float, keep: Container[str] = ()) -> int:
    """Delete temporary files last written before ``before`` (a time stamp): what interrupted
    requests of earlier processes left in ``folder``, less those named in ``keep``. Returns
    how many."""
    removed = 0
    try:
        leftovers = [
            e for e in os.scandir(folder) if e.name.startswith(TEMP_PREFIX) and e.name not in keep
        ]
    except FileNotFoundError:
        return 0
    for entry in leftovers:
        try:
            if entry.stat(follow_symlinks=False).st_mtime < before:
                os.unlink(entry.path)
                removed += 1
        except FileNotFoundError:
            pass
    return removed


def remove_database(path: Path) -> None:
    """Delete an SQLite file and whatever journal files SQLite left beside it."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)


def ensure_collection(path: Path) -> None:
    """Create the stock empty collection at ``path`` if there is none yet."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = temp_file(path.parent, "new")
    try:
        shutil.copyfile(TEMPLATE, staging)
        con = connect(staging)
        try:
            con.execute(
                "update col set crt = ?, scm = ?, mod = 0, usn = 0, ls = 0",
                (day_start(datetime.now().astimezone()), now_ms()),
            )
        finally:
            checkpoint_and_close(con)
        fsync_file(staging)
        # A link never replaces a collection that appeared meanwhile (a snapshot restored).
        with contextlib.suppress(FileExistsError):
            os.link(staging, path)
        fsync_dir(path.parent)
    finally:
        staging.unlink(missing_ok=True)


# One statement rather than three: ``meta`` reads the state again after every sync.
_STATE = (
    "select mod, scm, usn, not exists (select 1 from cards),"
    " (select val from config where key = 'schedVer'),"
    " (select val from config where key = 'creationOffset') from col"
)


def read_state(path: Path, con: sqlite3.Connection) -> CollectionState:
    """Read mod, scm, usn, emptiness and scheduler facts of the collection at ``path``."""
    modified, schema_modified, usn, empty, raw_sched_ver, raw_offset = con.execute(
        _STATE
    ).fetchone()
    sched_ver = _json_value(raw_sched_ver)
    offset = _json_value(raw_offset)
    return CollectionState(
        modified=modified,
        schema_modified=schema_modified,
        usn=usn,
        empty=empty == 1,
        sched_ver=sched_ver if isinstance(sched_ver, int) else 1,
        has_creation_offset=isinstance(offset, int) and not isinstance(offset, bool),
        file_size=path.stat().st_size,
    )


class CollectionConnection:
    """One connection to a user's collection, kept open between requests: ``meta`` reads the
    state through it and each normal sync runs its transaction on it (opening a connection
    and reading the schema costs ~0.6 ms, a tenth of a small sync).

    ``close`` must be called before the file is replaced or copied for a download; a file
    replaced by anything else is noticed by its inode and opened anew.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._con: Connection | None = None
        self._inode = 0

    def get(self) -> Connection:
        """The open connection, creating the stock collection for a new user."""
        if self._con is not None and _inode(self.path) != self._inode:
            self.close()
        if self._con is None:
            ensure_collection(self.path)
            self._con = connect_checked(self.path, self._check_version)
            self._inode = _inode(self.path)
        return self._con

    def _check_version(self, con: sqlite3.Connection) -> None:
        (version,) = con.execute("select ver from col").fetchone()
        if not isinstance(version, int) or version > NEWEST_SCHEMA:
            raise UserUnavailable(f"{self.path}: collection version {version!r} unknown")

    def state(self) -> CollectionState:
        try:
            return read_state(self.path, self.get())
        finally:
            self.release()

    def release(self) -> None:
        """Called when no sync uses the connection: one opened with exclusive locking on a
        full disk is closed, so that it locks nobody out and the next use tries again."""
        if self._con is not None and self._con.exclusive:
            self.close()

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None

    @property
    def is_open(self) -> bool:
        """Open on its file: ``get`` will neither create nor open anything."""
        return self._con is not None and _inode(self.path) == self._inode

    @property
    def connected(self) -> bool:
        """A connection is open (its file not checked: see ``is_open``, ``replaced``)."""
        return self._con is not None

    def replaced(self) -> bool:
        """True if the open connection's file is no longer the collection (a restore)."""
        return self._con is not None and _inode(self.path) != self._inode

    def file_stamp(self) -> tuple[object, ...]:
        return file_stamp(self.path)


def _inode(path: Path) -> int:
    try:
        return os.stat(path).st_ino
    except FileNotFoundError:
        return 0


def _json_value(raw: bytes | None) -> object:
    """The JSON value stored in a config row, as ``json.loads`` reads it; None if unreadable."""
    if raw is None:
        return None
    try:
        return _decode(raw)  # 0.05 µs for a small value, against 1.4 µs
    except msgspec.DecodeError:
        pass
    try:  # what json.loads alone accepts: NaN, infinities, UTF-16 and UTF-32
        return json.loads(raw)
    except ValueError:
        return None


def prepare_download(
    path: Path, convert: Callable[[Path], None] | None = None
) -> tuple[BufferedReader, int]:
    """Mark a full download (usn + 1, mod = now) and return an open snapshot of the file.

    The snapshot is the file itself, copied while nothing can change it (``copy_main_file``);
    when another process keeps the WAL from being emptied (a ``sqlite3 .backup`` holding a
    read transaction), SQLite's online backup copies it instead, from a connection that sees
    every committed change. The snapshot is an unlinked file, so nothing is left on disk if
    the transfer breaks. ``convert`` may change the copy (into schema 11, for legacy clients)
    before it is opened.
    """
    snapshot = temp_file(path.parent, "download")
    try:
        con = connect(path)
        try:
            con.execute("begin immediate")
            try:
                con.execute("update col set usn = usn + 1, mod = ?", (now_ms(),))
                con.execute("commit")
            except sqlite3.Error:
                rollback_after(con)  # the error, not a failed rollback, tells what happened
                raise
            copied = copy_main_file(con, path, snapshot)
        finally:
            con.close()
        if not copied:
            copy_database(path, snapshot)
        if convert is not None:
            convert(snapshot)
        fh = snapshot.open("rb")
    finally:
        remove_database(snapshot)
    size = os.fstat(fh.fileno()).st_size
    return fh, size


def fsync_file(path: Path) -> None:
    with path.open("rb+") as fh:
        os.fsync(fh.fileno())


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

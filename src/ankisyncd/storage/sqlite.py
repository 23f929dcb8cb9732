"""Opening SQLite databases the way Anki collections need: unicase collation, WAL, no trust."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from ankisyncd.errors import UserUnavailable

BUSY_TIMEOUT_MS = 30_000
T = TypeVar("T")


def unicase(a: str, b: str) -> int:
    """Compare case-insensitively, as the collation Anki registers under the name ``unicase``."""
    fa, fb = a.casefold(), b.casefold()
    return (fa > fb) - (fa < fb)


class Connection(sqlite3.Connection):
    """A connection made by ``connect``; ``exclusive`` if it had to lock the file (full disk)."""

    exclusive = False


def connect(path: Path) -> Connection:
    """Open ``path`` in autocommit mode (explicit transactions) with the ``unicase`` collation.

    The first read of a WAL database creates its shared-memory index (``-shm``), which needs
    free space. When there is none, the file is opened with exclusive locking, which keeps
    that index in memory, so that reading works on a full disk. Such a connection
    (``exclusive``) locks other processes out: close it as soon as it is not needed.
    """
    con = _open(path)
    try:
        con.execute("pragma schema_version")  # the first read
    except sqlite3.OperationalError as exc:
        con.close()
        if not _no_room_for_index(exc):
            raise
        con = _open(path)
        try:
            con.execute("pragma locking_mode = exclusive")
            con.execute("pragma schema_version")
        except BaseException:
            con.close()
            raise
        con.exclusive = True
    return con


def _open(path: Path) -> Connection:
    con = sqlite3.connect(path, isolation_level=None, check_same_thread=False, factory=Connection)
    try:
        con.create_collation("unicase", unicase)
        con.execute(f"pragma busy_timeout = {BUSY_TIMEOUT_MS}")
        # Uploaded files are untrusted: never run functions named in their schema.
        con.execute("pragma trusted_schema = off")
    except BaseException:
        con.close()
        raise
    return con


def _no_room_for_index(exc: sqlite3.OperationalError) -> bool:
    name = getattr(exc, "sqlite_errorname", None)  # Python 3.11+
    if name is not None:
        return str(name).startswith("SQLITE_IOERR_SHM")
    return str(exc) == "disk I/O error"


def in_list(values: Sequence[T]) -> tuple[str, list[T]]:
    """The ``?, ?, ...`` of an ``in (...)`` for ``values`` and the values to bind,
    padded to a power of two with repeats of the last one (an ``in`` does not count them).

    A connection keeps its 128 most recent statements prepared, each distinct text apart: with
    one text per length of the list, those kept open by the server filled with statements used
    once (~600 KB a connection); padded, a table's lookups share a few texts.
    """
    padded = list(values)
    padded += padded[-1:] * ((1 << (len(padded) - 1).bit_length()) - len(padded))
    return ",".join("?" * len(padded)), padded


def rollback_after(con: sqlite3.Connection) -> None:
    """Roll back after an error without hiding it: SQLite may already have rolled back (a
    full disk does that), and a failing rollback must not replace the error being raised."""
    if con.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            con.execute("rollback")


def connect_checked(path: Path, check: Callable[[sqlite3.Connection], None]) -> Connection:
    """``connect`` and run ``check`` (reading the schema version, say); a file that cannot be
    used (corrupt, not a database, missing tables) raises UserUnavailable naming ``path``.
    A passing state such as a lock raises as it is."""
    con: Connection | None = None
    try:
        con = connect(path)
        check(con)
    except sqlite3.DatabaseError as exc:
        if con is not None:
            con.close()
        if isinstance(exc, sqlite3.OperationalError):  # locked, busy, disk full or I/O
            raise
        raise UserUnavailable(f"{path}: {exc}") from exc
    except BaseException:
        if con is not None:
            con.close()
        raise
    return con


def file_stamp(path: Path) -> tuple[object, ...]:
    """Changes whenever a database file or its WAL is written or replaced (by any process).

    Never opens the files: closing any descriptor of a database file (or its ``-shm``) drops
    every POSIX lock this process's SQLite connections hold on it. Size and mtime can miss a
    commit (after a WAL restart, frames overwrite the file in place within one clock tick):
    where that matters, writers also change a marker file (``users.store``).
    """
    stamp: list[object] = []
    for suffix in ("", "-wal"):
        try:
            st = os.stat(f"{path}{suffix}")
        except OSError:
            stamp.append(None)
        else:
            stamp.append((st.st_ino, st.st_size, st.st_mtime_ns))
    return tuple(stamp)


def use_wal(con: sqlite3.Connection) -> None:
    """Switch a newly created database to WAL; the mode is kept in the file from then on."""
    con.execute("pragma journal_mode = wal")


def checkpoint_and_close(con: sqlite3.Connection) -> None:
    """Fold the WAL into the main file and close, for a file no other process uses yet.

    Not a way to make the main file complete: while another connection (any process) holds
    a read transaction, the checkpoint stops short and the WAL still holds committed changes.
    Snapshots of live databases check that it did not (``copy_main_file``) or use the online
    backup API (``copy_database``).
    """
    try:
        con.execute("pragma wal_checkpoint(truncate)")
    finally:
        con.close()


def copy_database(source: Path, target: Path) -> None:
    """Copy a database through SQLite's online backup API into the new file ``target``.

    The copy is one consistent state of ``source`` even while other connections write to it
    (a file copy could tear a page or miss the WAL). ``target`` is left as one self-contained
    file, without a WAL beside it.
    """
    if not source.is_file():
        raise FileNotFoundError(source)
    src = sqlite3.connect(source, isolation_level=None)
    try:
        dst = sqlite3.connect(target, isolation_level=None)
        try:
            src.backup(dst)
        finally:
            checkpoint_and_close(dst)
    finally:
        src.close()


def copy_main_file(con: sqlite3.Connection, source: Path, target: Path) -> bool:
    """Copy the database file ``source`` byte for byte into ``target`` if its WAL can be
    emptied first, through ``con`` (a connection to ``source``, outside any transaction).

    A read transaction begun while the WAL is empty reads the main file alone, and until it
    ends no checkpoint may write to that file (other writers only append to the WAL): the
    file is then one committed state, complete. False, with ``target`` left empty, when that
    cannot be had at once (another connection holds a read transaction, or writes first).
    The copy runs in a child process (``cp``, in-kernel): a descriptor of the file opened and
    closed by this process would drop every POSIX lock its SQLite connections hold on it.
    """
    try:
        con.execute("pragma busy_timeout = 0")
        busy, _, _ = con.execute("pragma wal_checkpoint(truncate)").fetchone()
        if busy:
            return False
        con.execute("begin")
        con.execute("select count() from sqlite_master").fetchone()  # starts the read
        if os.stat(f"{source}-wal").st_size:
            return False
        copied = subprocess.run(
            ["cp", "--", os.fspath(source), os.fspath(target)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if copied.returncode == 0:
            return True
        os.truncate(target, 0)
        return False
    except (sqlite3.OperationalError, OSError):
        return False
    finally:
        rollback_after(con)
        con.execute(f"pragma busy_timeout = {BUSY_TIMEOUT_MS}")

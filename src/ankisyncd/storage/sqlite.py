"""Opening SQLite databases the way Anki collections need: unicase collation, WAL, no trust."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

BUSY_TIMEOUT_MS = 30_000


def unicase(a: str, b: str) -> int:
    """Compare case-insensitively, as the collation Anki registers under the name ``unicase``."""
    fa, fb = a.casefold(), b.casefold()
    return (fa > fb) - (fa < fb)


def connect(path: Path) -> sqlite3.Connection:
    """Open ``path`` in autocommit mode (explicit transactions) with the ``unicase`` collation."""
    con = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        con.create_collation("unicase", unicase)
        con.execute(f"pragma busy_timeout = {BUSY_TIMEOUT_MS}")
        # Uploaded files are untrusted: never run functions named in their schema.
        con.execute("pragma trusted_schema = off")
    except BaseException:
        con.close()
        raise
    return con


def file_stamp(path: Path) -> tuple[object, ...]:
    """Changes whenever a database file or its WAL is written or replaced (by any process)."""
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
    """Fold the WAL into the main file, so the file alone holds every committed change."""
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

"""``media.db``: the server media database, in the official server's layout (version 4).

Files and rows change together. New file content is first written to temporary files; the
transaction that updates the rows also records each pending rename or removal in
``ankisyncd_pending``; after the commit they are carried out and the records deleted. A crash
at any point is finished (or, before the commit, undone) the next time the database is opened.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from ankisyncd.errors import UserUnavailable
from ankisyncd.media.names import media_path
from ankisyncd.storage.collection import fsync_dir
from ankisyncd.storage.sqlite import (
    Connection,
    connect,
    connect_checked,
    rollback_after,
    use_wal,
)

log = logging.getLogger(__name__)
SCHEMA_VERSION = 4
_SCHEMA = """
create table if not exists media (
    fname text not null primary key,
    csum blob not null,
    size int not null,
    usn int not null,
    mtime int not null
);
create index if not exists ix_usn on media (usn);
create table if not exists meta (
    last_usn int not null,
    total_bytes int not null,
    total_nonempty_files int not null
);
insert into meta select 0, 0, 0 where not exists (select 1 from meta);
"""
_PENDING = """
create table if not exists ankisyncd_pending (
    seq integer primary key,
    fname text not null,
    temp text
);
"""


class MediaStore:
    """A user's media folder and database."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.media_dir = folder / "media"
        self.db_path = folder / "media.db"
        # Kept open between requests: the last connection to close deletes the WAL files,
        # and re-creating them on every request slows all file creation in the folder.
        self._con: Connection | None = None
        self._inode = 0  # of the file ``_con`` has open

    @contextmanager
    def open(self) -> Iterator[sqlite3.Connection]:
        """The connection to a ready database, with interrupted changes finished first.

        Callers take turns (the server holds the user's media lock around each use).
        """
        con = self._connection()
        try:
            self.finish_pending(con)
            yield con
        except sqlite3.Error:
            self.close()  # start afresh next time
            raise
        finally:
            if self._con is not None:
                rollback_after(self._con)
                if self._con.exclusive:  # opened on a full disk: do not keep it locked
                    self.close()

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None

    def _connection(self) -> Connection:
        try:
            inode = self.db_path.stat().st_ino
        except FileNotFoundError:
            inode = 0
        if self._con is not None and inode == self._inode:
            return self._con
        self.close()  # a database replaced or removed behind our back is opened anew
        self.media_dir.mkdir(parents=True, exist_ok=True)
        con = connect_checked(self.db_path, self._prepare)
        self._con, self._inode = con, self.db_path.stat().st_ino
        return con

    def _prepare(self, con: sqlite3.Connection) -> None:
        """Create the schema in a new database; refuse a version we do not know."""
        version = con.execute("pragma user_version").fetchone()[0]
        if version not in (0, SCHEMA_VERSION):
            raise UserUnavailable(f"{self.db_path}: media.db version {version} unknown")
        if version == 0:
            use_wal(con)
            con.executescript(_SCHEMA)
            con.execute(f"pragma user_version = {SCHEMA_VERSION}")
        con.executescript(_PENDING)

    def last_usn(self) -> int:
        """The media usn; 0 for a user without a media database yet."""
        if not self.db_path.exists():
            return 0
        with self.open() as con:
            return int(con.execute("select last_usn from meta").fetchone()[0])

    def usage(self) -> tuple[int, int]:
        """(media usn, bytes of present files); (0, 0) for a user without a media database."""
        if not self.db_path.exists():
            return 0, 0
        with self.open() as con:
            usn, size = con.execute("select last_usn, total_bytes from meta").fetchone()
            return int(usn), int(size)

    def finish_pending(self, con: sqlite3.Connection) -> None:
        """Carry out renames and removals whose rows were committed; what cannot be done yet
        (something else occupies the name: a folder made by hand?) stays pending."""
        pending = con.execute("select seq, fname, temp from ankisyncd_pending order by seq")
        done = []
        for seq, fname, temp in pending.fetchall():
            target = media_path(self.media_dir, fname)
            try:
                if temp is None:
                    with suppress(FileNotFoundError):
                        os.unlink(target)
                else:
                    os.replace(temp, target)
            except FileNotFoundError:
                if temp is not None and os.path.exists(temp):
                    log.warning("media %r: cannot finish a change: no media folder", fname)
                    continue
                # The temporary file is gone: it was renamed before a crash.
            except OSError as exc:
                log.warning("media %r: cannot finish a change: %s", fname, exc)
                continue
            done.append((seq,))
        if done:
            fsync_dir(self.media_dir)
            con.execute("begin immediate")  # one commit for the batch, not one per record
            try:
                con.executemany("delete from ankisyncd_pending where seq = ?", done)
                con.execute("commit")
            except BaseException:
                rollback_after(con)
                raise


def pending_temp_names(folder: Path) -> frozenset[str]:
    """Names of the temporary files that committed, unfinished changes in user folder
    ``folder`` still have to move into place: they hold the content of the store's rows and
    are never leftovers. Raises sqlite3.Error when ``media.db`` cannot be read."""
    db_path = folder / "media.db"
    if not db_path.is_file():
        return frozenset()
    con = connect(db_path)
    try:
        return frozenset(os.path.basename(temp) for _, temp in pending_changes(con) if temp)
    finally:
        con.close()


def pending_changes(con: sqlite3.Connection) -> list[tuple[str, str | None]]:
    """(name, temporary file or None for a removal) of each committed change still to be
    carried out, in order; none in a database the official server made."""
    if not con.execute("select 1 from sqlite_master where name = 'ankisyncd_pending'").fetchone():
        return []
    return con.execute("select fname, temp from ankisyncd_pending order by seq").fetchall()


def store_totals(con: sqlite3.Connection, last_usn: int | None = None) -> None:
    """Recompute the totals the official server keeps in ``meta`` (and set ``last_usn``)."""
    usn = "last_usn = ?, " if last_usn is not None else ""
    con.execute(
        f"update meta set {usn}total_bytes = (select coalesce(sum(size), 0) from media),"
        " total_nonempty_files = (select count() from media where size > 0)",
        () if last_usn is None else (last_usn,),
    )

"""``uploadChanges``: apply a client's batch of added, changed and deleted files."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import BinaryIO

from ankisyncd.media.db import MediaStore
from ankisyncd.media.zip import TempMaker, UploadEntry, read_upload


def upload_changes(
    store: MediaStore, source: BinaryIO, make_temp: TempMaker, max_total: int
) -> tuple[int, int]:
    """Apply the zip in ``source``; returns (entries processed, media usn afterwards)."""
    entries = read_upload(source, make_temp, max_total)
    # Temporary files that committed pending records still need if the renames fail.
    owned: set[Path] = set()
    try:
        with store.open() as con:
            con.execute("begin immediate")
            try:
                (usn,) = con.execute("select last_usn from meta").fetchone()
                now = int(time.time())
                for entry in entries:
                    usn = _apply(con, entry, usn, now)
                con.execute(
                    "update meta set last_usn = ?,"
                    " total_bytes = (select coalesce(sum(size), 0) from media),"
                    " total_nonempty_files = (select count() from media where size > 0)",
                    (usn,),
                )
                con.execute("commit")
            except BaseException:
                con.execute("rollback")
                raise
            owned = {e.temp for e in entries if e.temp is not None}
            owned = store.finish_pending(con)
    finally:
        # Files of no-op entries, or of a batch that was rolled back.
        for entry in entries:
            if entry.temp is not None and entry.temp not in owned:
                entry.temp.unlink(missing_ok=True)
    return len(entries), usn


def _apply(con: sqlite3.Connection, entry: UploadEntry, usn: int, now: int) -> int:
    row = con.execute("select csum, size from media where fname = ?", (entry.name,)).fetchone()
    present = row is not None and row[1] > 0
    if entry.temp is None:
        if not present:
            return usn  # already deleted
        usn += 1
        con.execute(
            "update media set size = 0, usn = ?, mtime = ? where fname = ?",
            (usn, now, entry.name),
        )
        con.execute("insert into ankisyncd_pending (fname, temp) values (?, null)", (entry.name,))
        return usn
    if present and row[0] == entry.sha1:
        return usn  # already have it
    usn += 1
    con.execute(
        "insert or replace into media (fname, csum, size, usn, mtime) values (?,?,?,?,?)",
        (entry.name, entry.sha1, entry.size, usn, now),
    )
    con.execute(
        "insert into ankisyncd_pending (fname, temp) values (?, ?)", (entry.name, str(entry.temp))
    )
    return usn

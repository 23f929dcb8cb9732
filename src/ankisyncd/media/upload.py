"""``uploadChanges``: apply a client's batch of added, changed and deleted files."""

from __future__ import annotations

import os
import sqlite3
import time
from itertools import groupby
from operator import itemgetter
from pathlib import Path
from typing import BinaryIO

from ankisyncd.media.db import MediaStore, store_totals
from ankisyncd.media.zip import TempMaker, UploadEntry, read_upload
from ankisyncd.storage.collection import fsync_dir
from ankisyncd.storage.space import free_bytes
from ankisyncd.storage.sqlite import in_list, rollback_after

_UPSERT = "insert or replace into media (fname, csum, size, usn, mtime) values (?,?,?,?,?)"
_DELETE = "update media set size = 0, usn = ?, mtime = ? where fname = ?"


def upload_changes(
    store: MediaStore, source: BinaryIO, make_temp: TempMaker, max_total: int
) -> tuple[int, int]:
    """Apply the zip in ``source``; returns (entries processed, media usn afterwards).

    A batch whose files cannot fit in the free space is refused before anything is written.
    """
    store.media_dir.mkdir(parents=True, exist_ok=True)  # where ``make_temp`` writes, as a rule
    entries = read_upload(source, make_temp, max_total, free_bytes(store.media_dir))
    for folder in {os.path.dirname(entry.temp) for entry in entries if entry.temp is not None}:
        fsync_dir(Path(folder))  # the new files' names, durable before the commit names them
    # Entries whose rename or removal is committed as pending: their files are the store's.
    committed: list[UploadEntry] = []
    try:
        with store.open() as con:
            con.execute("begin immediate")
            try:
                (usn,) = con.execute("select last_usn from meta").fetchone()
                changed, usn = _apply(con, entries, usn, int(time.time()))
                store_totals(con, usn)
                con.execute("commit")
            except BaseException:
                rollback_after(con)
                raise
            committed = changed
            store.finish_pending(con)
    finally:
        # Files of no-op entries, or of a batch that was rolled back.
        kept = {id(entry) for entry in committed}
        for entry in entries:
            if entry.temp is not None and id(entry) not in kept:
                entry.temp.unlink(missing_ok=True)
    return len(entries), usn


def _apply(
    con: sqlite3.Connection, entries: list[UploadEntry], usn: int, now: int
) -> tuple[list[UploadEntry], int]:
    """Record the batch's changes in order; returns the entries that changed something."""
    marks, names = in_list(list({entry.name for entry in entries}))
    known: dict[str, tuple[bytes | None, int]] = {
        name: (csum, size)
        for name, csum, size in con.execute(
            f"select fname, csum, size from media where fname in ({marks})", names
        )
    }
    changed: list[UploadEntry] = []
    rows: list[tuple[str, tuple[object, ...]]] = []  # (statement, parameters), in order
    for entry in entries:
        csum, size = known.get(entry.name, (None, 0))
        if entry.temp is None:
            if size == 0:
                continue  # already deleted
            usn += 1
            rows.append((_DELETE, (usn, now, entry.name)))
            known[entry.name] = (csum, 0)
        else:
            if size > 0 and csum == entry.sha1:
                continue  # already have it
            usn += 1
            rows.append((_UPSERT, (entry.name, entry.sha1, entry.size, usn, now)))
            known[entry.name] = (entry.sha1, entry.size)
        changed.append(entry)
    for statement, group in groupby(rows, key=itemgetter(0)):
        con.executemany(statement, [params for _, params in group])
    con.executemany(
        "insert into ankisyncd_pending (fname, temp) values (?, ?)",
        [(e.name, None if e.temp is None else str(e.temp)) for e in changed],
    )
    return changed, usn

"""Checking a user's ``media.db`` against the media folder, and the repairs that are safe.

Safe means no user's file is ever deleted: rows of missing files are forgotten (clients then
fail the media sanity check, rescan and upload them again, spec media-sync.md §2.5), rows
whose hash no longer matches their file are re-hashed (clients download the file again), and
the totals are recomputed. Files without a row are only reported.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
from pathlib import Path

from ankisyncd.media.db import MediaStore, pending_changes, store_totals
from ankisyncd.media.names import BadName, media_path
from ankisyncd.storage.collection import TEMP_PREFIX
from ankisyncd.storage.locks import MEDIA_LOCK, user_lock
from ankisyncd.storage.sqlite import connect


def check_media(folder: Path, repair: bool) -> list[str]:
    """Problems of the media in user folder ``folder``, one line each; fixed if ``repair``."""
    db_path, media_dir = folder / "media.db", folder / "media"
    if not db_path.is_file():
        return []
    with user_lock(folder, MEDIA_LOCK):  # the server uploads nothing meanwhile
        con = connect(db_path)
        try:
            pending = _pending(con)
            if pending and repair:  # committed but unfinished at a crash: finish, as an open would
                MediaStore(folder).finish_pending(con)
                pending = _pending(con)
            problems = [f"unfinished change: {n!r} (finished at the next use)" for n in pending]
            return problems + _check(con, media_dir, repair, skip=set(pending))
        except sqlite3.Error as exc:
            return [f"media.db cannot be read: {exc}"]
        finally:
            con.close()


def _pending(con: sqlite3.Connection) -> list[str]:
    return [name for name, _ in pending_changes(con)]


def _check(con: sqlite3.Connection, media_dir: Path, repair: bool, skip: set[str]) -> list[str]:
    """The rows against the files, less the names in ``skip`` (whose files are on the way)."""
    problems: list[str] = []
    if (result := con.execute("pragma integrity_check").fetchall()) != [("ok",)]:
        return [f"media.db fails its integrity check: {result[:3]}"]
    missing: list[str] = []
    rehashed: list[tuple[bytes, int, str]] = []
    listed: set[str] = set()
    for name, csum, _size in con.execute("select fname, csum, size from media where size > 0"):
        listed.add(name)
        if name in skip:
            continue
        try:
            data = _read(media_path(media_dir, name))
        except BadName:
            problems.append(f"media row with an unsafe name: {name!r}")
            continue
        if data is None:
            missing.append(name)
        elif hashlib.sha1(data).digest() != csum:
            rehashed.append((hashlib.sha1(data).digest(), len(data), name))
    suffix = " (forgotten: clients upload it again)" if repair else ""
    problems += [f"media row without file: {name!r}{suffix}" for name in missing]
    suffix = " (re-hashed: clients download it again)" if repair else ""
    problems += [f"media hash does not match file: {name!r}{suffix}" for _, _, name in rehashed]
    if media_dir.is_dir():
        for entry in sorted(os.scandir(media_dir), key=lambda e: e.name):
            if entry.name.startswith(TEMP_PREFIX):  # reported as leftovers, if they are
                continue
            if entry.name not in listed and entry.is_file(follow_symlinks=False):
                problems.append(f"media file without row: {entry.name!r} (kept)")
    bytes_, files = con.execute("select total_bytes, total_nonempty_files from meta").fetchone()
    real = con.execute(
        "select coalesce(sum(size), 0), count() from media where size > 0"
    ).fetchone()
    if (bytes_, files) != tuple(real) and not (missing or rehashed):
        problems.append(
            f"media totals {files} files, {bytes_} bytes; rows say {real[1]}, {real[0]}"
            + (" (recomputed)" if repair else "")
        )
    if repair and problems:
        _repair(con, missing, rehashed)
    return problems


def _repair(
    con: sqlite3.Connection, missing: list[str], rehashed: list[tuple[bytes, int, str]]
) -> None:
    con.execute("begin immediate")
    try:
        (usn,) = con.execute("select last_usn from meta").fetchone()
        now = int(time.time())
        con.executemany("delete from media where fname = ?", [(n,) for n in missing])
        for csum, size, name in rehashed:
            usn += 1
            con.execute(
                "update media set csum = ?, size = ?, usn = ?, mtime = ? where fname = ?",
                (csum, size, usn, now, name),
            )
        # A new usn makes every client ask for changes, and so run the sanity check that
        # notices forgotten files.
        store_totals(con, usn + 1 if missing else usn)
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except (FileNotFoundError, IsADirectoryError):
        return None

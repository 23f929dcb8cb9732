"""Checking an uploaded collection file and swapping it in atomically."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from ankisyncd.storage.collection import fsync_dir, fsync_file
from ankisyncd.storage.sqlite import connect

SQLITE_MAGIC = b"SQLite format 3\x00"
STORED_SCHEMA = 18
COL_COLUMNS = (
    "id",
    "crt",
    "mod",
    "scm",
    "ver",
    "dty",
    "usn",
    "ls",
    "conf",
    "models",
    "decks",
    "dconf",
    "tags",
)
SCHEMA_18_TABLES: dict[str, tuple[str, ...]] = {
    "notes": ("id", "guid", "mid", "mod", "usn", "tags", "flds", "sfld", "csum", "flags", "data"),
    "cards": (
        "id",
        "nid",
        "did",
        "ord",
        "mod",
        "usn",
        "type",
        "queue",
        "due",
        "ivl",
        "factor",
        "reps",
        "lapses",
        "left",
        "odue",
        "odid",
        "flags",
        "data",
    ),
    "revlog": ("id", "cid", "usn", "ease", "ivl", "lastIvl", "factor", "time", "type"),
    "graves": ("oid", "type", "usn"),
    "notetypes": ("id", "name", "mtime_secs", "usn", "config"),
    "fields": ("ntid", "ord", "name", "config"),
    "templates": ("ntid", "ord", "name", "mtime_secs", "usn", "config"),
    "decks": ("id", "name", "mtime_secs", "usn", "common", "kind"),
    "deck_config": ("id", "name", "mtime_secs", "usn", "config"),
    "config": ("KEY", "usn", "mtime_secs", "val"),
    "tags": ("tag", "usn", "collapsed", "config"),
}
BLOB_COLUMNS = (
    ("notetypes", "config"),
    ("fields", "config"),
    ("templates", "config"),
    ("decks", "common"),
    ("decks", "kind"),
    ("deck_config", "config"),
    ("config", "val"),
)
# Tables whose rows must never carry usn -1 on a server (config rows may).
USN_CHECKED_TABLES = (
    "cards",
    "notes",
    "revlog",
    "graves",
    "decks",
    "deck_config",
    "tags",
    "notetypes",
)


class InvalidCollection(ValueError):
    """The file is not a collection we can store; the message says why (for the log)."""


def schema_version(path: Path) -> int:
    """The ``ver`` of a collection file, or InvalidCollection if it has none."""
    with path.open("rb") as fh:
        if fh.read(len(SQLITE_MAGIC)) != SQLITE_MAGIC:
            raise InvalidCollection("not an SQLite database")
    try:
        con = connect(path)
        try:
            rows = con.execute("select ver from col").fetchall()
        finally:
            con.close()
    except sqlite3.Error as exc:
        raise InvalidCollection(f"cannot read col: {exc}") from exc
    if len(rows) != 1 or not isinstance(rows[0][0], int):
        raise InvalidCollection("col must have one row")
    return int(rows[0][0])


def check_upload(path: Path) -> None:
    """Raise InvalidCollection unless ``path`` is a sound schema-18 Anki collection.

    Rows with usn -1, which a client clears before uploading, are reset to 0 so that the
    next normal sync's sanity check cannot fail on them.
    """
    with path.open("rb") as fh:
        if fh.read(len(SQLITE_MAGIC)) != SQLITE_MAGIC:
            raise InvalidCollection("not an SQLite database")
    try:
        con = connect(path)
    except sqlite3.Error as exc:
        raise InvalidCollection(f"cannot open: {exc}") from exc
    try:
        _check_open_collection(con)
        con.execute("begin immediate")
        for table in USN_CHECKED_TABLES:
            con.execute(f"update {table} set usn = 0 where usn = -1")
        con.execute("commit")
    except sqlite3.Error as exc:
        raise InvalidCollection(f"sqlite error: {exc}") from exc
    finally:
        con.close()


def check_collection(path: Path) -> None:
    """Raise InvalidCollection unless ``path`` is a sound schema-18 collection; writes nothing."""
    try:
        con = connect(path)
        try:
            _check_open_collection(con)
        finally:
            con.close()
    except sqlite3.Error as exc:
        raise InvalidCollection(f"sqlite error: {exc}") from exc


def _check_open_collection(con: sqlite3.Connection) -> None:
    result = con.execute("pragma integrity_check").fetchall()
    if result != [("ok",)]:
        raise InvalidCollection(f"integrity check failed: {result[:3]}")
    if con.execute("select count() from sqlite_master where type = 'trigger'").fetchone()[0]:
        raise InvalidCollection("has triggers, which Anki collections never have")
    _require_columns(con, "col", COL_COLUMNS)
    rows = con.execute("select ver from col").fetchall()
    if len(rows) != 1:
        raise InvalidCollection(f"col has {len(rows)} rows")
    (version,) = rows[0]
    if version != STORED_SCHEMA:
        raise InvalidCollection(f"schema version {version!r} (expected {STORED_SCHEMA})")
    for table, columns in SCHEMA_18_TABLES.items():
        _require_columns(con, table, columns)
    for table, column in BLOB_COLUMNS:
        bad = con.execute(
            f"select count() from {table} where typeof({column}) != 'blob'"
        ).fetchone()[0]
        if bad:
            raise InvalidCollection(f"{bad} rows of {table}.{column} are not blobs")


def _require_columns(con: sqlite3.Connection, table: str, columns: tuple[str, ...]) -> None:
    kind = con.execute("select type from sqlite_master where name = ?", (table,)).fetchone()
    if kind != ("table",):
        raise InvalidCollection(f"{table} is not a table")
    present = {row[1] for row in con.execute(f"pragma table_info({table})")}
    missing = [c for c in columns if c not in present]
    if missing:
        raise InvalidCollection(f"table {table} lacks columns {missing}")


def install_upload(staged: Path, target: Path) -> None:
    """Atomically replace ``target`` with the checked file ``staged``.

    No connection to ``target`` may be open. A ``-wal`` left beside ``target`` by a crash
    belongs to the old file; SQLite would replay it into the new one, so it is folded into
    the old file (or dropped, if the old file cannot be opened) before the swap.
    """
    fsync_file(staged)
    wal = target.with_name(target.name + "-wal")
    if wal.exists():
        try:
            con = sqlite3.connect(target)
            con.execute("pragma wal_checkpoint(truncate)")
            con.close()
        except sqlite3.Error:
            pass
        wal.unlink(missing_ok=True)
        target.with_name(target.name + "-shm").unlink(missing_ok=True)
    os.replace(staged, target)
    fsync_dir(target.parent)

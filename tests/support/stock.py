"""The stock collection the server makes for a new user, opened for engine tests."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ankisyncd.storage.collection import ensure_collection
from ankisyncd.storage.sqlite import connect


def stock_collection(folder: Path) -> sqlite3.Connection:
    """A new stock collection in ``folder``, opened as the server opens collections."""
    path = folder / "collection.anki2"
    ensure_collection(path)
    return connect(path)


def notetype_id(con: sqlite3.Connection, name: str) -> int:
    """The id of the stock notetype called ``name``."""
    (ntid,) = con.execute("select id from notetypes where name = ?", (name,)).fetchone()
    return int(ntid)

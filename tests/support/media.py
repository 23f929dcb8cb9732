"""Checking a user's server-side media store against its files."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path


def server_media(folder: Path) -> dict[str, str]:
    """name -> sha1 of the present files per media.db, after checking the files agree."""
    if not (folder / "media.db").exists():
        media = folder / "media"
        assert not media.exists() or not any(media.iterdir())
        return {}
    con = sqlite3.connect(f"file:{folder / 'media.db'}?mode=ro", uri=True)
    try:
        rows = con.execute("select fname, lower(hex(csum)), size from media").fetchall()
        meta = con.execute(
            "select last_usn, total_bytes, total_nonempty_files from meta"
        ).fetchone()
        pending = con.execute("select count() from ankisyncd_pending").fetchone()[0]
    finally:
        con.close()
    present = {name: sha1 for name, sha1, size in rows if size > 0}
    on_disk = {
        p.name: hashlib.sha1(p.read_bytes()).hexdigest() for p in (folder / "media").iterdir()
    }
    assert on_disk == present, "media.db and the media folder disagree"
    assert meta[2] == len(present) and meta[1] == sum(s for _, _, s in rows)
    assert pending == 0
    return present

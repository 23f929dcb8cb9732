"""``check``: every user's collection and media, the auth database, our leftover files."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ankisyncd.errors import UserError
from ankisyncd.media.check import check_media
from ankisyncd.media.db import pending_temp_names
from ankisyncd.storage.check import check_collection_file, check_database, leftover_temp_files
from ankisyncd.storage.paths import user_folder


def check(
    data_root: Path, auth_db: Path, user: str | None, repair: bool, snapshot_root: Path
) -> list[str]:
    """One line per problem found (and, with ``repair``, what was done about it)."""
    if user is not None:
        folder = user_folder(data_root, user)
        if not folder.is_dir():
            raise UserError(f"user {user!r} has no data folder")
        folders = [folder]
    elif data_root.is_dir():
        folders = [p for p in sorted(data_root.iterdir()) if p.is_dir() and p.name[0] != "."]
    else:
        folders = []
    problems = []
    for folder in folders:
        found = check_collection_file(folder)
        found += check_media(folder, repair)
        try:
            keep = pending_temp_names(folder)  # after check_media: what it could not finish
        except sqlite3.Error:
            pass  # check_media reported it; no temporary file is then known to be spare
        else:
            found += leftover_temp_files(folder, repair, keep)
        snapshots = leftover_temp_files(snapshot_root / folder.name, repair)
        found += [f"snapshots: {line}" for line in snapshots]
        problems += [f"{folder.name}: {line}" for line in found]
    if user is None and auth_db.is_file():
        problems += check_database(auth_db, "auth database")
    return problems

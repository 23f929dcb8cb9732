"""Offline-safe checks of stored databases and of our own leftover temporary files."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Container
from pathlib import Path

from ankisyncd.storage.collection import TEMP_PREFIX
from ankisyncd.storage.paths import COLLECTION_FILE
from ankisyncd.storage.sqlite import connect
from ankisyncd.storage.upload import InvalidCollection, check_collection


def check_database(path: Path, label: str) -> list[str]:
    """SQLite's integrity check of one database; a problem line for each failure."""
    try:
        con = connect(path)
        try:
            result = con.execute("pragma integrity_check").fetchall()
        finally:
            con.close()
    except sqlite3.Error as exc:
        return [f"{label} cannot be read: {exc}"]
    if result != [("ok",)]:
        return [f"{label} fails its integrity check: {'; '.join(r[0] for r in result[:3])}"]
    return []


def check_collection_file(folder: Path) -> list[str]:
    """Problems of the collection in user folder ``folder`` (none if it has none yet)."""
    path = folder / COLLECTION_FILE
    if not path.is_file():
        return []
    try:
        check_collection(path)
    except InvalidCollection as exc:
        return [f"collection: {exc}"]
    return []


def leftover_temp_files(folder: Path, repair: bool, keep: Container[str] = ()) -> list[str]:
    """Our temporary files, in user folder ``folder`` and its media folder, whose process is
    gone (removed if ``repair``). Files of a running process, such as an upload in progress,
    and those named in ``keep`` are left alone."""
    problems = []
    found = [*folder.glob(TEMP_PREFIX + "*"), *(folder / "media").glob(TEMP_PREFIX + "*")]
    for path in sorted(found):
        if path.name in keep or _owner_alive(path.name):
            continue
        if repair:
            path.unlink(missing_ok=True)
        problems.append(f"leftover temporary file: {path.name}" + (" (removed)" if repair else ""))
    return problems


def _owner_alive(name: str) -> bool:
    """Whether the process named in ``<prefix><purpose>-<pid>-<n>`` still runs."""
    parts = name.rsplit("-", 2)
    return len(parts) == 3 and parts[1].isdigit() and process_alive(int(parts[1]))


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` runs (on this machine: our files name their writer's pid)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

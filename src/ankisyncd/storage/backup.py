"""``backup``: a consistent copy of the whole data root that a server can be started on.

Databases (collections, ``media.db``, the auth database) are copied with SQLite's online
backup API; each user's media files are copied under that user's media lock, so ``media.db``
and the folder match. The copy is written beside the destination and renamed into place, so
a destination never holds half a backup.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from ankisyncd.errors import UserError
from ankisyncd.storage.locks import MEDIA_LOCK, user_lock
from ankisyncd.storage.paths import COLLECTION_FILE
from ankisyncd.storage.sqlite import copy_database

AUTH_DB = Path(".ankisyncd") / "auth.db"  # where a server on the copy finds it by default


@dataclass
class BackupReport:
    users: int = 0
    collections: int = 0
    media_files: int = 0
    bytes: int = 0


def backup(data_root: Path, auth_db: Path, dest: Path, replace: bool = False) -> BackupReport:
    """Copy ``data_root`` (and ``auth_db``, wherever it lives) to the new folder ``dest``."""
    if dest.exists() and not replace and (not dest.is_dir() or any(dest.iterdir())):
        raise UserError(f"{dest} exists and is not empty (use --replace to overwrite a backup)")
    if dest.resolve().is_relative_to(data_root.resolve()):
        raise UserError(f"{dest} is inside the data root")
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = dest.with_name(f".{dest.name}.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        report = BackupReport()
        for folder in sorted(data_root.iterdir()) if data_root.is_dir() else []:
            if folder.is_dir() and not folder.name.startswith("."):
                _copy_user(folder, staging / folder.name, report)
        if auth_db.is_file():
            (staging / AUTH_DB).parent.mkdir(parents=True)
            copy_database(auth_db, staging / AUTH_DB)
            report.bytes += (staging / AUTH_DB).stat().st_size
        _swap_in(staging, dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return report


def _copy_user(folder: Path, target: Path, report: BackupReport) -> None:
    target.mkdir()
    report.users += 1
    if (folder / COLLECTION_FILE).is_file():
        copy_database(folder / COLLECTION_FILE, target / COLLECTION_FILE)
        report.collections += 1
        report.bytes += (target / COLLECTION_FILE).stat().st_size
    if not (folder / "media.db").is_file():
        return
    with user_lock(folder, MEDIA_LOCK):  # no media upload changes files and rows meanwhile
        copy_database(folder / "media.db", target / "media.db")
        report.bytes += (target / "media.db").stat().st_size
        (target / "media").mkdir()
        media = folder / "media"
        for entry in os.scandir(media) if media.is_dir() else []:
            if entry.is_file(follow_symlinks=False):
                shutil.copy2(entry.path, target / "media" / entry.name)
                report.media_files += 1
                report.bytes += entry.stat().st_size


def _swap_in(staging: Path, dest: Path) -> None:
    if not dest.exists():
        staging.rename(dest)
        return
    old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
    dest.rename(old)
    staging.rename(dest)
    shutil.rmtree(old)

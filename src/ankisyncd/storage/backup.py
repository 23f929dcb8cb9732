"""``backup``: a consistent copy of the whole data root that a server can be started on.

Databases (collections, ``media.db``, the auth database) are copied with SQLite's online
backup API; each user's media files are copied under that user's media lock, so ``media.db``
and the folder match. The copy is written beside the destination, synced to disk and renamed
into place, so a destination never holds half a backup.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from ankisyncd import __version__
from ankisyncd.errors import UserError
from ankisyncd.storage.check import process_alive
from ankisyncd.storage.collection import TEMP_PREFIX, fsync_dir
from ankisyncd.storage.locks import MEDIA_LOCK, user_lock
from ankisyncd.storage.paths import COLLECTION_FILE
from ankisyncd.storage.sqlite import copy_database

AUTH_DB = Path(".ankisyncd") / "auth.db"  # where a server on the copy finds it by default
MARKER = ".ankisyncd-backup"  # in every backup; --replace deletes only folders holding one


@dataclass
class BackupReport:
    users: int = 0
    collections: int = 0
    media_files: int = 0
    bytes: int = 0


def backup(
    data_root: Path,
    auth_db: Path,
    dest: Path,
    replace: bool = False,
    snapshot_root: Path | None = None,
) -> BackupReport:
    """Copy ``data_root`` (and ``auth_db``, wherever it lives) to the new folder ``dest``."""
    live = [data_root, auth_db] + ([snapshot_root] if snapshot_root else [])
    dest = _checked_destination(dest, replace, data_root, live)
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
        created = datetime.now(timezone.utc).isoformat(timespec="seconds")
        marker = {"ankisyncd_backup": 1, "version": __version__, "created": created}
        (staging / MARKER).write_text(json.dumps(marker) + "\n")
        sync_tree(staging)
        fsync_dir(staging.parent)
        _swap_in(staging, dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _remove_interrupted(dest)
    return report


def _remove_interrupted(dest: Path) -> None:
    """Delete what interrupted backups to ``dest`` left beside it (their staging copies and
    the earlier backups they were replacing), now that ``dest`` holds a complete new one."""
    for path in dest.parent.glob(f".{glob.escape(dest.name)}.*-*"):
        kind, _, pid = path.name[len(dest.name) + 2 :].rpartition("-")
        if kind in ("partial", "old") and pid.isdigit() and not process_alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


def _checked_destination(dest: Path, replace: bool, data_root: Path, live: list[Path]) -> Path:
    """``dest`` made absolute, once it is safe to write to (and with ``replace``, to delete)."""
    if dest.is_symlink():
        raise UserError(
            f"{dest} is a symbolic link: give the folder it points to ({dest.resolve()}) as DEST"
        )
    target = dest.resolve()
    for path in live:
        if path.resolve().is_relative_to(target):
            raise UserError(
                f"{dest} holds {path}, which the server uses: give a folder outside it as DEST"
            )
    if target.is_relative_to(data_root.resolve()):
        raise UserError(f"{dest} is inside the data root")
    if not target.exists() or (target.is_dir() and not any(target.iterdir())):
        return target
    if not target.is_dir():
        raise UserError(f"{dest} exists and is not a folder")
    if not replace:
        raise UserError(f"{dest} exists and is not empty (use --replace to overwrite a backup)")
    if not (target / MARKER).is_file():
        raise UserError(
            f"{dest} is not a backup made by `ankisyncd backup` (it has no {MARKER} file), and"
            " --replace deletes only those: give a new or empty folder as DEST, or remove this"
            " one yourself if nothing in it is needed"
        )
    return target


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
            # An upload's temporary files live beside the media until they are renamed.
            if entry.is_file(follow_symlinks=False) and not entry.name.startswith(TEMP_PREFIX):
                shutil.copy2(entry.path, target / "media" / entry.name)
                report.media_files += 1
                report.bytes += entry.stat().st_size


def sync_tree(root: Path) -> None:
    """fsync every file and folder under ``root``, and ``root`` itself, deepest first."""
    for folder, _dirs, files in os.walk(root, topdown=False):
        for name in files:
            fsync_dir(Path(folder) / name)  # a read-only descriptor syncs a file as well
        fsync_dir(Path(folder))


def _swap_in(staging: Path, dest: Path) -> None:
    """Rename the synced ``staging`` to ``dest``; only once that is durable, delete the old
    ``dest``, so a power cut leaves the old backup or the new one."""
    if not dest.exists():
        staging.rename(dest)
        fsync_dir(dest.parent)
        return
    old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
    dest.rename(old)
    staging.rename(dest)
    fsync_dir(dest.parent)
    shutil.rmtree(old)

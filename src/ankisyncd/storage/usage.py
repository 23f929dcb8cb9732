"""Disk use: per user (collection, media files) and of the data root's filesystem. Read-only."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from ankisyncd.storage.paths import COLLECTION_FILE, user_folder


@dataclass(frozen=True)
class UserUsage:
    collection_bytes: int  # the collection file with its WAL
    media_files: int
    media_bytes: int
    modified: float | None  # when the collection file last changed (None: no collection)


@dataclass(frozen=True)
class DiskUsage:
    data_bytes: int  # everything under the data root
    free_bytes: int  # left on its filesystem
    total_bytes: int


def user_usage(data_root: Path, name: str) -> UserUsage:
    """Sizes of a user's collection and media folder (zeros for a user who never synced)."""
    folder = user_folder(data_root, name)
    collection_bytes, modified = 0, None
    for suffix in ("", "-wal"):
        try:
            st = (folder / (COLLECTION_FILE + suffix)).stat()
        except FileNotFoundError:
            continue
        collection_bytes += st.st_size
        modified = max(modified or 0.0, st.st_mtime)
    files, size = _walk(folder / "media")
    return UserUsage(collection_bytes, files, size, modified)


def disk_usage(data_root: Path) -> DiskUsage:
    """Bytes under the data root, and the space of the filesystem holding it."""
    _, size = _walk(data_root)
    total, _, free = shutil.disk_usage(data_root)
    return DiskUsage(size, free, total)


def _walk(folder: Path) -> tuple[int, int]:
    """Number and total size of the regular files under ``folder`` (symlinks not followed)."""
    files = size = 0
    stack = [str(folder)]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            continue
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                stack.append(entry.path)
            elif entry.is_file(follow_symlinks=False):
                files += 1
                size += entry.stat(follow_symlinks=False).st_size
    return files, size

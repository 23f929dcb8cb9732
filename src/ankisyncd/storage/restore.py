"""Restoring a snapshot in place of a user's collection, also while the server runs."""

from __future__ import annotations

from pathlib import Path

from ankisyncd.storage.collection import now_ms, remove_database, temp_file
from ankisyncd.storage.locks import user_lock
from ankisyncd.storage.paths import COLLECTION_FILE, user_folder
from ankisyncd.storage.snapshots import Snapshot, SnapshotStore
from ankisyncd.storage.sqlite import checkpoint_and_close, connect, copy_database
from ankisyncd.storage.upload import install_upload


def restore(store: SnapshotStore, user: str, snapshot_id: str) -> Snapshot | None:
    """Put snapshot ``snapshot_id`` in place of the user's collection.

    Holds the user's collection lock, which the server takes around every write, so no sync
    step runs meanwhile; a normal sync that began before finds the file replaced and ends.
    The current collection is kept as a snapshot first (returned; None if there was none).
    The restored copy gets a new ``scm`` and ``mod``: no device holds them, so every device's
    next sync is a one-way sync, in which the user picks download (spec §4.13 and §6.2).
    """
    snapshot = store.get(user, snapshot_id)
    folder = user_folder(store.data_root, user)
    with user_lock(folder):
        staged = temp_file(folder, "restore")
        try:
            staged.unlink()
            copy_database(snapshot.path, staged)
            _force_one_way_sync(staged)
            kept = store.create(user, "restore")
            install_upload(staged, folder / COLLECTION_FILE)
        finally:
            remove_database(staged)
    return kept


def _force_one_way_sync(path: Path) -> None:
    con = connect(path)
    try:
        now = now_ms()
        con.execute("update col set scm = ?, mod = ?", (now, now))
    finally:
        checkpoint_and_close(con)

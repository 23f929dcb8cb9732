"""Snapshots: earlier states of users' collections, kept so that a mistake can be undone.

One folder per user under the snapshot root, one self-contained SQLite file per snapshot,
named ``<UTC time>-<reason>.anki2``. Copies are made with SQLite's online backup API, so they
are consistent while the server writes. Retention keeps the newest few, one per day for some
days, and stays under a disk cap; the newest snapshot, and the one just taken, are never pruned.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from ankisyncd.errors import UserError
from ankisyncd.storage.collection import fsync_dir, temp_file
from ankisyncd.storage.paths import COLLECTION_FILE, check_username, user_folder
from ankisyncd.storage.sqlite import connect, copy_database

log = logging.getLogger(__name__)
SUFFIX = ".anki2"
TIME_FORMAT = "%Y%m%d-%H%M%S"
# Why a snapshot was taken: before a full upload replaced the collection, on the schedule,
# by the ``snapshot create`` command, or before ``snapshot restore`` replaced the collection.
REASONS = ("upload", "scheduled", "manual", "restore")


@dataclass(frozen=True)
class Retention:
    """Which snapshots to keep: the newest ``keep_last``, the newest of each of the last
    ``keep_daily`` days, and, when ``max_bytes`` > 0, no more than that on disk per user."""

    keep_last: int = 10
    keep_daily: int = 14
    max_bytes: int = 0


@dataclass(frozen=True)
class Snapshot:
    user: str
    id: str
    path: Path
    created: int  # Unix seconds, UTC
    reason: str
    size: int
    seq: int = 1  # the order of snapshots taken in the same second, whatever their reasons

    def to_json(self) -> dict[str, object]:
        created = datetime.fromtimestamp(self.created, timezone.utc).isoformat()
        return {
            "user": self.user,
            "id": self.id,
            "created": created,
            "reason": self.reason,
            "bytes": self.size,
        }


def _parse_id(snapshot_id: str) -> tuple[int, str, int] | None:
    """(creation time, reason, sequence within that second) of a well-formed id, else None."""
    parts = snapshot_id.split("-")
    if len(parts) not in (3, 4) or parts[2] not in REASONS:
        return None
    try:
        stamp = datetime.strptime(f"{parts[0]}-{parts[1]}", TIME_FORMAT)
    except ValueError:
        return None
    if len(parts) == 4 and not parts[3].isdigit():
        return None
    seq = int(parts[3]) if len(parts) == 4 else 1
    return int(stamp.replace(tzinfo=timezone.utc).timestamp()), parts[2], seq


class SnapshotStore:
    """The snapshots of every user's collection under ``root``."""

    def __init__(self, data_root: Path, root: Path, retention: Retention) -> None:
        self.data_root = data_root
        self.root = root
        self.retention = retention

    def folder(self, user: str) -> Path:
        return self.root / check_username(user)

    def users(self) -> list[str]:
        """Users with at least one snapshot."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and self.of_user(p.name))

    def of_user(self, user: str) -> list[Snapshot]:
        """The user's snapshots, newest first."""
        folder = self.folder(user)
        if not folder.is_dir():
            return []
        found = []
        for path in folder.glob("*" + SUFFIX):
            snapshot_id = path.name[: -len(SUFFIX)]
            parsed = _parse_id(snapshot_id)
            if parsed is None:
                continue
            created, reason, seq = parsed
            with contextlib.suppress(FileNotFoundError):  # pruned meanwhile
                size = path.stat().st_size
                found.append(Snapshot(user, snapshot_id, path, created, reason, size, seq))
        found.sort(key=lambda s: (s.created, s.seq, s.id), reverse=True)
        return found

    def get(self, user: str, snapshot_id: str) -> Snapshot:
        for snapshot in self.of_user(user):
            if snapshot.id == snapshot_id:
                return snapshot
        raise UserError(f"user {user!r} has no snapshot {snapshot_id!r}")

    def create(self, user: str, reason: str) -> Snapshot | None:
        """Snapshot the user's collection now; None if the user has no collection yet."""
        source = user_folder(self.data_root, user) / COLLECTION_FILE
        if not source.is_file():
            return None
        folder = self.folder(user)
        folder.mkdir(parents=True, exist_ok=True)
        staged = temp_file(folder, "snapshot")
        now = time.time()  # before the copy: see _name
        changed_ns = _last_change_ns(source)
        try:
            staged.unlink()  # the backup API creates the file itself
            copy_database(source, staged)
            os.utime(staged, ns=(changed_ns, changed_ns))  # for _changed
            snapshot = self._name(user, staged, reason, now)
        finally:
            staged.unlink(missing_ok=True)
        fsync_dir(folder)
        self.prune(user, just_made=snapshot)
        return snapshot

    def before_replace(self, user: str) -> Snapshot | None:
        """Keep the collection a full upload is about to replace, unless it holds no cards and
        no reviews (a new account's stock collection: nothing to undo)."""
        source = user_folder(self.data_root, user) / COLLECTION_FILE
        if not source.is_file() or _is_empty(source):
            return None
        return self.create(user, "upload")

    def _name(self, user: str, staged: Path, reason: str, began: float) -> Snapshot:
        """Give the staged copy its final name, with the time its copy ``began``.

        A copy holds the state of when it began: a slow one named when it ended would sort
        after a snapshot taken meanwhile (a restore's), and its prune could delete that one.
        A second that already has snapshots, of any reason, numbers this one after them, so
        the newest sorts first; within one second that is the order in which copies ended.
        """
        now = int(began)
        stamp = datetime.fromtimestamp(now, timezone.utc).strftime(TIME_FORMAT)
        folder = staged.parent
        same_second = (_parse_id(p.name[: -len(SUFFIX)]) for p in folder.glob(f"{stamp}-*{SUFFIX}"))
        counter = 1 + max((parsed[2] for parsed in same_second if parsed), default=0)
        while True:
            snapshot_id = f"{stamp}-{reason}" + ("" if counter == 1 else f"-{counter}")
            path = folder / (snapshot_id + SUFFIX)
            try:
                os.link(staged, path)  # never overwrites a snapshot another process made
            except FileExistsError:
                counter += 1
                continue
            size = path.stat().st_size
            return Snapshot(user, snapshot_id, path, now, reason, size, counter)

    def create_changed(self, reason: str = "scheduled") -> list[Snapshot]:
        """Snapshot every collection written since that user's newest snapshot."""
        return self.create_all(reason, only_changed=True)

    def create_all(self, reason: str, only_changed: bool = False) -> list[Snapshot]:
        """Snapshot every user's collection (``only_changed``: if written since the last).

        A user whose folder cannot be read, named or copied is logged and skipped; the others
        still get theirs.
        """
        made: list[Snapshot] = []
        if not self.data_root.is_dir():
            return made
        for folder in sorted(self.data_root.iterdir()):
            if folder.name.startswith("."):
                continue
            try:
                if not (folder / COLLECTION_FILE).is_file():
                    continue
                if only_changed and not self._changed(folder.name):
                    continue
                snapshot = self.create(folder.name, reason)
            except (OSError, sqlite3.Error, UserError) as exc:
                log.error("cannot snapshot %s: %s", folder.name, exc)
                continue
            if snapshot is not None:
                made.append(snapshot)
        return made

    def _changed(self, user: str) -> bool:
        """Whether the user's collection was written or replaced since their newest snapshot.

        A snapshot's mtime is the collection's last change when its copy began (``create``),
        not when the copy was written: a file written earlier and renamed in since (a full
        upload, a restore) has a later ctime than that, so it counts as changed.
        """
        newest = self.of_user(user)
        source = user_folder(self.data_root, user) / COLLECTION_FILE
        return not newest or _last_change_ns(source) != newest[0].path.stat().st_mtime_ns

    def prune(self, user: str, just_made: Snapshot | None = None) -> list[Snapshot]:
        """Delete the user's snapshots that the retention rules no longer keep.

        The newest by name and ``just_made`` (the snapshot whose creation this prune follows)
        are always kept: after the clock was set back, names from before sort newer than the
        one just taken, which may be the only undo of the full upload about to happen.
        """
        snapshots = self.of_user(user)
        always = {s.id for s in snapshots[:1]} | ({just_made.id} if just_made else set())
        keep = always | {s.id for s in snapshots[: self.retention.keep_last]}
        days: set[str] = set()
        cutoff = time.time() - self.retention.keep_daily * 86400
        for s in snapshots:
            day = datetime.fromtimestamp(s.created, timezone.utc).strftime("%Y%m%d")
            if s.created >= cutoff and day not in days:
                days.add(day)
                keep.add(s.id)
        kept = [s for s in snapshots if s.id in keep]
        if self.retention.max_bytes > 0:
            total = sum(s.size for s in kept)
            for s in reversed(kept[:]):  # the oldest first
                if total <= self.retention.max_bytes:
                    break
                if s.id not in always:
                    kept.remove(s)
                    total -= s.size
        removed = [s for s in snapshots if s not in kept]
        for s in removed:
            s.path.unlink(missing_ok=True)
        return removed


def _last_change_ns(path: Path) -> int:
    """When a database file or its WAL was last written, or the file replaced; 0 if gone.

    The file's ctime counts too: a full upload or a restore renames in a file written before
    the snapshot of the collection it replaced, and a rename changes only the ctime. The WAL's
    ctime does not: SQLite may chown or chmod the WAL whenever a connection opens it.
    """
    times = []
    with contextlib.suppress(FileNotFoundError):
        st = path.stat()
        times.append(max(st.st_mtime_ns, st.st_ctime_ns))
    with contextlib.suppress(FileNotFoundError):
        times.append(Path(f"{path}-wal").stat().st_mtime_ns)
    return max(times, default=0)


def _is_empty(path: Path) -> bool:
    con = connect(path)
    try:
        row = con.execute(
            "select not exists (select 1 from cards) and not exists (select 1 from revlog)"
        ).fetchone()
        return bool(row[0])
    finally:
        con.close()


def counts(path: Path) -> tuple[int, int, int]:
    """(notes, cards, review entries) in a collection file, for listing snapshots."""
    con = connect(path)
    try:
        row = con.execute(
            "select (select count() from notes), (select count() from cards),"
            " (select count() from revlog)"
        ).fetchone()
        return int(row[0]), int(row[1]), int(row[2])
    finally:
        con.close()

"""Snapshot store: naming, retention and what counts as changed, on real SQLite files."""

from __future__ import annotations

import os
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

import anyio
import pytest

from ankisyncd.config import load
from ankisyncd.errors import UserError
from ankisyncd.server import SyncServer
from ankisyncd.storage import snapshots
from ankisyncd.storage.collection import TEMPLATE
from ankisyncd.storage.snapshots import Retention, SnapshotStore, counts
from ankisyncd.storage.sqlite import connect, copy_database

DAY = 86400


def store_with(tmp_path: Path, retention: Retention) -> SnapshotStore:
    (tmp_path / "data" / "ana").mkdir(parents=True)
    shutil.copyfile(TEMPLATE, tmp_path / "data" / "ana" / "collection.anki2")
    return SnapshotStore(tmp_path / "data", tmp_path / "snaps", retention)


def plant(
    store: SnapshotStore,
    age_seconds: float,
    size: int = 10,
    reason: str = "manual",
    now: float | None = None,
) -> str:
    """A snapshot file as if taken ``age_seconds`` before ``now`` (default: the real time)."""
    when = datetime.fromtimestamp((now or time.time()) - age_seconds, timezone.utc)
    snapshot_id = f"{when.strftime('%Y%m%d-%H%M%S')}-{reason}"
    folder = store.folder("ana")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{snapshot_id}.anki2").write_bytes(b"x" * size)
    return snapshot_id


def test_prune_keeps_the_newest_and_one_per_day(tmp_path: Path) -> None:
    store = store_with(tmp_path, Retention(keep_last=2, keep_daily=3))
    hourly = [plant(store, h * 3600 + 60) for h in range(0, 24 * 5, 6)]  # 5 days, 4 a day
    store.prune("ana")
    kept = [s.id for s in store.of_user("ana")]
    assert kept[:2] == hourly[:2]
    days = {k[:8] for k in kept}
    assert len(kept) <= 2 + 3 and len(days) >= 3
    assert hourly[-1] not in kept  # older than the daily window


def test_prune_respects_the_disk_cap_but_keeps_the_newest(tmp_path: Path) -> None:
    store = store_with(tmp_path, Retention(keep_last=10, keep_daily=0, max_bytes=250))
    ids = [plant(store, age, size=100) for age in (10, 20, 30, 40)]
    store.prune("ana")
    assert [s.id for s in store.of_user("ana")] == ids[:2]
    store = SnapshotStore(store.data_root, store.root, Retention(max_bytes=1))
    store.prune("ana")
    assert [s.id for s in store.of_user("ana")] == ids[:1]


@pytest.mark.parametrize(
    "retention",
    [Retention(keep_last=1, keep_daily=0), Retention(keep_last=10, keep_daily=0, max_bytes=1)],
    ids=["keep_last", "max_bytes"],
)
def test_a_new_snapshot_survives_its_prune_after_the_clock_was_set_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, retention: Retention
) -> None:
    """Snapshots named while the clock ran two hours fast sort newer than the one taken now,
    the undo of the full upload about to happen; it used to be deleted at once."""
    now = 1_796_000_000.5
    monkeypatch.setattr(snapshots, "time", SimpleNamespace(time=lambda: now))
    store = store_with(tmp_path, retention)
    future = [plant(store, -7200 + 60 * i, now=now) for i in range(3)]
    made = store.create("ana", "upload")
    assert made is not None and made.id == "20261130-005320-upload"
    assert [s.id for s in store.of_user("ana")] == [*future[:1], made.id]


def test_snapshots_in_the_same_second_get_distinct_ids(tmp_path: Path) -> None:
    store = store_with(tmp_path, Retention())
    made = [store.create("ana", "manual") for _ in range(3)]
    ids = [m.id for m in made if m is not None]
    assert len(set(ids)) == 3
    assert sorted(s.id for s in store.of_user("ana")) == sorted(ids)


def test_snapshots_of_one_second_list_newest_first_whatever_their_reasons(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A restore a moment after an upload's snapshot: the restore's sorts first and is the one
    that a retention of one keeps (ordered by their ids, "upload" came first and the newer
    snapshot was deleted)."""
    monkeypatch.setattr(snapshots, "time", SimpleNamespace(time=lambda: 1_796_000_000.5))
    store = store_with(tmp_path, Retention(keep_last=1, keep_daily=0))
    reasons = ["upload", "restore", "manual", "scheduled"] + ["upload"] * 8
    made = [store.create("ana", reason) for reason in reasons]
    ids = [m.id for m in made if m is not None]
    assert ids[:3] == [
        "20261130-005320-upload",
        "20261130-005320-restore-2",
        "20261130-005320-manual-3",
    ]
    assert ids[-1] == "20261130-005320-upload-12"  # numbered, not ordered as text ("-9" > "-12")
    assert [s.id for s in store.of_user("ana")] == ids[-1:]  # each create pruned the one before


def test_a_slow_copy_is_named_when_it_began_and_spares_a_snapshot_taken_meanwhile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A scheduled copy that takes 5 s while a restore keeps the collection it replaces: named
    when it ended, the copy sorted first and its prune (keep_last=1) deleted the restore's."""
    clock = [1_796_000_000.5]
    monkeypatch.setattr(snapshots, "time", SimpleNamespace(time=lambda: clock[0]))
    store = store_with(tmp_path, Retention(keep_last=1, keep_daily=0))
    meanwhile: list[snapshots.Snapshot | None] = []

    def slow_copy(source: Path, target: Path) -> None:
        copy_database(source, target)  # the real copy, then what happens while it "runs"
        if clock[0] == 1_796_000_000.5:
            clock[0] += 5
            meanwhile.append(store.create("ana", "restore"))

    monkeypatch.setattr(snapshots, "copy_database", slow_copy)
    made = store.create("ana", "scheduled")
    [restore] = meanwhile
    assert made is not None and restore is not None
    assert (made.id, restore.id) == ("20261130-005320-scheduled", "20261130-005325-restore")
    assert [s.id for s in store.of_user("ana")] == [restore.id, made.id]


def test_only_changed_collections_are_snapshotted_again(tmp_path: Path) -> None:
    store = store_with(tmp_path, Retention())
    assert len(store.create_changed()) == 1
    assert store.create_changed() == []
    col = store.data_root / "ana" / "collection.anki2"
    later = time.time() + 5
    os.utime(col, (later, later))
    assert len(store.create_changed()) == 1


def test_a_user_whose_folder_fails_is_skipped_and_the_others_get_theirs(tmp_path: Path) -> None:
    """``aux`` (a name the official server accepts, refused here) made the scheduled run raise
    before anyone after it in the data root was snapshotted."""
    store = store_with(tmp_path, Retention())
    for name in ("aux", "zoe"):
        (store.data_root / name).mkdir()
        shutil.copyfile(TEMPLATE, store.data_root / name / "collection.anki2")
    assert [s.user for s in store.create_changed()] == ["ana", "zoe"]
    assert [s.user for s in store.create_all("manual")] == ["ana", "zoe"]


class FailingOnce(SnapshotStore):
    """The real store, whose first scheduled run fails as an unreadable data root would."""

    runs = 0

    def create_changed(self, reason: str = "scheduled") -> list[snapshots.Snapshot]:
        self.runs += 1
        if self.runs == 1:
            raise PermissionError(13, "Permission denied", str(self.data_root))
        return super().create_changed(reason)


def test_scheduled_snapshots_go_on_after_a_run_fails(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """One failed run used to end the loop, and with it housekeeping (one task group)."""
    data = store_with(tmp_path, Retention()).data_root
    server = SyncServer(load({}, {"SYNC_BASE": str(data)}))
    store = FailingOnce(data, server.snapshots.root, Retention())
    server.snapshots, server.snapshot_interval = store, 0.01

    async def main() -> None:
        with anyio.move_on_after(10):
            async with anyio.create_task_group() as group:
                group.start_soon(server.take_snapshots)
                while not store.of_user("ana"):
                    await anyio.sleep(0.01)
                group.cancel_scope.cancel()
        await server.shutdown()

    anyio.run(main)
    assert store.runs >= 2 and len(store.of_user("ana")) == 1
    [failed] = [r for r in caplog.records if r.levelname == "ERROR"]
    assert failed.exc_info and "scheduled snapshots failed" in failed.getMessage()


def test_a_collection_installed_by_a_full_upload_counts_as_changed(tmp_path: Path) -> None:
    """The upload's file was written before the snapshot of the collection it replaced and
    renamed in after it: by mtimes it looked unchanged, and no snapshot held the new state."""
    store = store_with(tmp_path, Retention())
    col = store.data_root / "ana" / "collection.anki2"
    con = connect(col)
    con.execute("insert into revlog values (1, 1, 0, 3, 1, 0, 2500, 1000, 0)")  # not empty
    con.commit()
    con.close()
    time.sleep(0.05)  # file times advance in ticks of a few ms: the upload comes a tick later
    uploaded = store.data_root / "ana" / "upload.tmp"
    shutil.copyfile(TEMPLATE, uploaded)
    a_minute_ago = time.time() - 60  # when the upload's body arrived
    os.utime(uploaded, (a_minute_ago, a_minute_ago))
    kept = store.before_replace("ana")
    os.replace(uploaded, col)  # as storage.upload.install_upload does
    [made] = store.create_changed()
    assert kept is not None and made.id != kept.id
    assert (counts(kept.path)[2], counts(made.path)[2]) == (1, 0)
    assert store.create_changed() == []


def test_stock_collection_is_not_kept_before_an_upload(tmp_path: Path) -> None:
    store = store_with(tmp_path, Retention())
    assert store.before_replace("ana") is None
    assert store.before_replace("nobody") is None


def test_unknown_snapshot_and_unsafe_names_are_refused(tmp_path: Path) -> None:
    store = store_with(tmp_path, Retention())
    with pytest.raises(UserError):
        store.get("ana", "20990101-000000-manual")
    with pytest.raises(UserError):
        store.of_user("../ana")
    plant(store, 0)
    (store.folder("ana") / "notes.txt").write_text("not a snapshot")
    (store.folder("ana") / "2099-bad-upload.anki2").write_text("bad name")
    assert len(store.of_user("ana")) == 1

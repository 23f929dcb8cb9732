"""Snapshots with real clients: the accidental full upload undone, restores while serving."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from ankisyncd.storage.sqlite import connect
from tests.support.clients import LEGACY_V10, Device
from tests.support.compare import FULL_SYNC, NO_CHANGES, content
from tests.support.server import ServerProcess
from tests.support.wire import RawClient


def snapshots(server: ServerProcess, user: str = "") -> list[dict[str, Any]]:
    result = server.cli("snapshot", "list", *([user] if user else []), "--json")
    assert result.returncode == 0, result.stderr
    return list(json.loads(result.stdout))


def shared_collection(server: ServerProcess, tmp_path: Path) -> tuple[Device, Device]:
    """Devices A and B of alice holding the same 20 notes with reviews."""
    server.add_user("alice", "pw")
    a, b = Device(tmp_path / "a"), Device(tmp_path / "b")
    a.login("alice", "pw", server.url)
    a.run(
        {"op": "add_notes", "count": 20, "prefix": "a"},
        {"op": "answer_cards", "count": 6},
        {"op": "full_upload"},
    )
    b.login("alice", "pw", server.url)
    assert b.run({"op": "full_download"}, {"op": "sync"})[1]["required"] == NO_CHANGES
    return a, b


def test_restore_undoes_an_accidental_full_upload(server: ServerProcess, tmp_path: Path) -> None:
    a, b = shared_collection(server, tmp_path)
    assert snapshots(server) == []  # the first upload replaced a stock collection
    # B deletes nearly everything and chooses "upload" on a full-sync prompt.
    b.run({"op": "delete_notes", "count": 19}, {"op": "full_upload"})
    assert a.sync()["required"] == FULL_SYNC  # A would be asked to pick a side

    [kept] = snapshots(server, "alice")
    assert (kept["reason"], kept["notes"], kept["reviews"]) == ("upload", 20, 6)
    result = server.cli("snapshot", "restore", "alice", kept["id"])
    assert result.returncode == 0, result.stderr
    assert "choose download" in result.stdout
    # The one-note collection B uploaded is itself kept, as a snapshot.
    assert [(s["reason"], s["notes"]) for s in snapshots(server, "alice")] == [
        ("restore", 1),
        ("upload", 20),
    ]

    # Both devices hold cards, so the real client asks which side wins; download wins.
    for device in (a, b):
        assert device.sync()["required"] == FULL_SYNC
        assert device.step("full_download") == {}
    for device in (a, b):
        assert device.sync()["required"] == NO_CHANGES
    a_dump, b_dump = a.dump(), b.dump()
    assert len(a_dump["notes"]) == 20 and len(a_dump["revlog"]) == 6
    assert content(a_dump) == content(b_dump)
    # And they keep syncing normally from there.
    a.step("add_notes", count=1, prefix="after")
    assert a.sync()["required"] != FULL_SYNC
    b.sync()
    assert len(b.dump()["notes"]) == 21


@pytest.mark.older_client
def test_legacy_full_upload_keeps_a_snapshot(server: ServerProcess, tmp_path: Path) -> None:
    server.add_user("alice", "pw")
    new, old = Device(tmp_path / "new"), Device(tmp_path / "old", LEGACY_V10)
    new.login("alice", "pw", server.url)
    new.run({"op": "add_notes", "count": 7, "prefix": "n"}, {"op": "full_upload"})
    old.login("alice", "pw", server.url)
    old.run({"op": "add_notes", "count": 2, "prefix": "o"}, {"op": "full_upload"})
    [kept] = snapshots(server, "alice")
    assert (kept["reason"], kept["notes"]) == ("upload", 7)


def test_restore_ends_a_normal_sync_that_was_in_progress(
    server: ServerProcess, tmp_path: Path
) -> None:
    a, _b = shared_collection(server, tmp_path)
    a.step("add_notes", count=1, prefix="x")
    a.sync()
    assert server.cli("snapshot", "create", "alice").returncode == 0
    [snap] = snapshots(server, "alice")

    raw = RawClient(server.url)
    try:
        raw.login("alice", "pw")
        meta = raw.call("meta", {"v": 11, "cv": "test,1,linux"})
        raw.call("start", {"minUsn": 0, "lnewer": False, "graves": None})
        result = server.cli("snapshot", "restore", "alice", snap["id"])
        assert result.returncode == 0, result.stderr
        # The session's transaction belongs to the replaced file: it must not go on.
        resp = raw.post("finish", b"{}")
        assert resp.status_code == 409
        after = raw.call("meta", {"v": 11, "cv": "test,1,linux"})
    finally:
        raw.close()
    assert after["scm"] > meta["scm"] and after["mod"] > meta["mod"]
    assert a.sync()["required"] == FULL_SYNC


def test_server_steps_wait_for_a_restore_holding_the_users_lock(
    server: ServerProcess, tmp_path: Path
) -> None:
    from ankisyncd.storage.locks import user_lock

    server.add_user("alice", "pw")
    raw = RawClient(server.url)
    raw.login("alice", "pw")
    done = threading.Event()

    def start() -> None:
        raw.call("start", {"minUsn": 0, "lnewer": False, "graves": None})
        done.set()

    try:
        with user_lock(server.data_root / "alice"):
            worker = threading.Thread(target=start)
            worker.start()
            assert not done.wait(1.5)  # blocked while the lock is held elsewhere
        assert done.wait(60)
        worker.join()
    finally:
        raw.close()


def test_snapshots_are_consistent_while_a_client_syncs(
    server: ServerProcess, tmp_path: Path
) -> None:
    a, _b = shared_collection(server, tmp_path)
    stop = threading.Event()

    def keep_syncing() -> None:
        while not stop.is_set():
            a.run({"op": "add_notes", "count": 30, "prefix": "s"}, {"op": "sync"})

    worker = threading.Thread(target=keep_syncing)
    worker.start()
    try:
        for _ in range(6):
            assert server.cli("snapshot", "create", "alice").returncode == 0
    finally:
        stop.set()
        worker.join()
    taken = snapshots(server, "alice")
    assert len(taken) == 6
    for snap in taken:
        path = server.data_root / ".ankisyncd" / "snapshots" / "alice" / f"{snap['id']}.anki2"
        con = connect(path)
        try:
            assert con.execute("pragma integrity_check").fetchall() == [("ok",)]
            notes, cards = con.execute(
                "select (select count() from notes), (select count() from cards)"
            ).fetchone()
        finally:
            con.close()
        # Whole syncs only: every note with both of its cards, in batches of 30.
        assert cards == 2 * notes and (notes - 20) % 30 == 0


def test_scheduled_snapshots_take_only_changed_collections(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data", {"ANKISYNCD_SNAPSHOT_INTERVAL": "1s"}).start()
    try:
        a, _b = shared_collection(server, tmp_path)
        deadline = time.monotonic() + 60
        while not snapshots(server, "alice") and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(2)  # the last changes (B's download) are snapshotted too
        taken = snapshots(server, "alice")
        time.sleep(4)  # four more intervals without a change: nothing new
        assert snapshots(server, "alice") == taken
        assert {(s["reason"], s["notes"]) for s in taken} == {("scheduled", 20)}
        a.step("add_notes", count=1, prefix="later")
        a.sync()
        while len(snapshots(server, "alice")) == len(taken) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert snapshots(server, "alice")[0]["notes"] == 21
    finally:
        server.stop()


def test_snapshot_commands_refuse_bad_input(server: ServerProcess) -> None:
    server.add_user("alice", "pw")
    unknown = server.cli("snapshot", "restore", "alice", "20990101-000000-manual")
    assert unknown.returncode == 1 and "has no snapshot" in unknown.stderr
    assert server.cli("snapshot", "create").returncode == 2
    escape = server.cli("snapshot", "list", "../alice")
    assert escape.returncode == 1 and "not allowed" in escape.stderr
    nothing = server.cli("snapshot", "create", "alice")
    assert nothing.returncode == 1 and "has no collection" in nothing.stderr


def test_snapshot_create_all_takes_every_users_collection(server: ServerProcess) -> None:
    for name in ("alice", "bob"):
        server.add_user(name, "pw")
        raw = RawClient(server.url)
        try:
            raw.login(name, "pw")
            raw.call("meta", {"v": 11, "cv": "test,1,linux"})  # creates the stock collection
        finally:
            raw.close()
    result = server.cli("snapshot", "create", "--all")
    assert result.returncode == 0, result.stderr
    assert [line.split("\t")[0] for line in result.stdout.splitlines()] == ["alice", "bob"]
    listed = snapshots(server)
    assert sorted((s["user"], s["reason"]) for s in listed) == [
        ("alice", "manual"),
        ("bob", "manual"),
    ]
    assert all(s["notes"] == 0 for s in listed)

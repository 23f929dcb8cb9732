"""Normal (incremental) sync with real anki clients: every change flows both ways."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from ankisyncd.storage.sqlite import connect
from tests.support.clients import NEWEST, OLDER_V11, Device
from tests.support.compare import FULL_DOWNLOAD, FULL_SYNC, NO_CHANGES, comparable, differences
from tests.support.hold import HoldingProxy
from tests.support.server import ServerProcess

VERSIONS = [NEWEST, pytest.param(OLDER_V11, marks=pytest.mark.older_client)]


def ok(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    errors = [r for r in results if "error" in r]
    assert not errors, errors
    return results


def paired(server: ServerProcess, tmp_path: Path, version: str = NEWEST) -> tuple[Device, Device]:
    """Two devices of alice sharing one collection after a full upload and download."""
    server.add_user("alice", "pw")
    a, b = Device(tmp_path / "a", version), Device(tmp_path / "b", version)
    a.login("alice", "pw", server.url)
    b.login("alice", "pw", server.url)
    ok(a.run({"op": "add_notes", "count": 10, "prefix": "base"}, {"op": "full_upload"}))
    ok(b.run({"op": "full_download"}))
    assert a.sync()["required"] == NO_CHANGES  # the download bumped mod: a quiet normal sync
    return a, b


def assert_same(*devices: Device) -> dict[str, Any]:
    """Sync every device until quiet, then check they hold the same collection."""
    for _ in range(2):
        for device in devices:
            assert device.sync() == {"required": NO_CHANGES, "server_message": ""}
    dumps = [d.dump() for d in devices]
    across = any(d.version != NEWEST for d in devices)
    for other in dumps[1:]:
        first, second = comparable(dumps[0], other, across_versions=across)
        assert first == second, differences(dumps[0], other, across_versions=across)
    return dumps[0]


@pytest.mark.parametrize("version", VERSIONS)
def test_every_kind_of_change_flows_both_ways(
    server: ServerProcess, tmp_path: Path, version: str
) -> None:
    a, b = paired(server, tmp_path, version)
    ok(
        a.run(
            {"op": "add_notes", "count": 6, "prefix": "new", "deck": "Lang::Japanese"},
            {"op": "edit_notes", "count": 3, "text": "edited on a"},
            {"op": "delete_notes", "count": 2},
            {"op": "answer_cards", "count": 5},
            {"op": "add_deck", "name": "Temp"},
            {"op": "rename_deck", "old": "Lang::Japanese", "new": "Languages::日本語"},
            {"op": "add_filtered_deck", "name": "Cram", "search": "tag:edited"},
            {"op": "add_notetype", "name": "My Basic"},
            {"op": "edit_template", "notetype": "Basic", "qfmt": "<b>{{Front}}</b>"},
            {"op": "set_deck_options", "new_per_day": 33, "rev_per_day": 333},
            {"op": "set_config", "key": "myAddonSetting", "value": {"a": [1, 2.5, None]}},
            {"op": "sync"},
        )
    )
    ok(b.run({"op": "sync"}))
    after_a = assert_same(a, b)
    assert "Languages\x1f日本語" in {row[1] for row in after_a["decks"]}
    assert "My Basic" in {row[1] for row in after_a["notetypes"]}

    ok(
        b.run(
            {"op": "remove_deck", "name": "Temp"},
            {"op": "delete_notes", "count": 1},
            {"op": "edit_notes", "count": 2, "text": "edited on b"},
            {"op": "answer_cards", "count": 3},
            {"op": "add_notes", "count": 4, "prefix": "from b"},
            {"op": "set_deck_options", "new_per_day": 44, "rev_per_day": 444},
            {"op": "set_config", "key": "myAddonSetting", "value": "changed"},
            {"op": "sync"},
        )
    )
    after_b = assert_same(b, a)
    assert "Temp" not in {row[1] for row in after_b["decks"]}
    assert len(after_b["graves"]) > 0

    # A device that arrives later gets everything by full download, equal to the others.
    c = Device(tmp_path / "c", version)
    c.login("alice", "pw", server.url)
    ok(c.run({"op": "full_download"}))
    later, earlier = comparable(c.dump(), after_b, across_versions=version != NEWEST)
    assert later == earlier


def test_newer_edit_of_one_note_wins(server: ServerProcess, tmp_path: Path) -> None:
    a, b = paired(server, tmp_path)
    ok(a.run({"op": "edit_notes", "count": 1, "text": "older edit"}))
    ok(b.run({"op": "sleep", "seconds": 1.1}, {"op": "edit_notes", "count": 1, "text": "newer"}))
    ok(b.run({"op": "sync"}))
    ok(a.run({"op": "sync"}))
    dump = assert_same(a, b)
    first = min(dump["notes"], key=lambda n: n[0])
    assert first[6].startswith("newer ")


def test_notetype_schema_change_forces_a_full_sync(server: ServerProcess, tmp_path: Path) -> None:
    a, b = paired(server, tmp_path)
    ok(a.run({"op": "add_field", "notetype": "Basic", "field": "Extra"}))
    assert a.sync()["required"] == FULL_SYNC
    ok(a.run({"op": "full_upload"}))
    assert b.sync()["required"] in (FULL_SYNC, FULL_DOWNLOAD)
    ok(b.run({"op": "full_download"}))
    assert_same(a, b)


def test_two_devices_syncing_at_once_converge(server: ServerProcess, tmp_path: Path) -> None:
    """Device a is held before ``applyChanges`` while device b syncs from start to finish: b's sync
    ends a's session, so a's next step gets 409 and a's user is told another device is
    syncing. The next syncs converge."""
    a, b = paired(server, tmp_path)
    ok(a.run({"op": "add_notes", "count": 40, "prefix": "a"}))
    ok(b.run({"op": "add_notes", "count": 40, "prefix": "b"}))
    hkey = json.loads((tmp_path / "a" / "auth.json").read_text())["hkey"]
    with HoldingProxy(server.url, "/sync/applyChanges").running() as proxy:
        ok(a.run({"op": "set_hkey", "hkey": hkey, "endpoint": proxy.url}))
        results: dict[str, dict[str, Any]] = {}
        held = threading.Thread(target=lambda: results.update(a=a.sync()))
        held.start()
        assert proxy.held.wait(120), "device a never reached applyChanges"
        assert b.sync() == {"required": NO_CHANGES, "server_message": ""}
        proxy.release()
        held.join(300)
    assert ("/sync/applyChanges", 409) in proxy.statuses
    assert "Only one copy of Anki can sync" in results["a"].get("message", ""), results
    ok(a.run({"op": "set_hkey", "hkey": hkey, "endpoint": server.url}))
    dump = assert_same(a, b)
    assert len(dump["notes"]) == 90
    for device in (a, b):
        assert device.step("check_database") == {"integrity": "ok"}


def test_a_collection_another_process_writes_holds_up_only_its_user(
    server: ServerProcess, tmp_path: Path
) -> None:
    """Small steps run on the event loop; a ``start`` that would wait for another process's
    write lock waits in a worker thread instead, so other users' syncs go on meanwhile."""
    a, b = paired(server, tmp_path)
    server.add_user("bob", "pw")
    bob = Device(tmp_path / "bob")
    bob.login("bob", "pw", server.url)
    ok(bob.run({"op": "add_notes", "count": 3, "prefix": "bob"}, {"op": "full_upload"}))
    ok(a.run({"op": "edit_notes", "count": 1, "text": "while locked"}))
    writer = connect(server.data_root / "alice" / "collection.anki2")
    writer.execute("begin immediate")
    result: dict[str, Any] = {}
    alice = threading.Thread(target=lambda: result.update(a.sync()))
    alice.start()
    try:
        time.sleep(2)  # time for alice's sync to reach ``start`` (not asserted)
        ok(bob.run({"op": "edit_notes", "count": 1, "text": "meanwhile"}, {"op": "sync"}))
        assert alice.is_alive()  # still waiting for the writer
    finally:
        writer.execute("rollback")
        writer.close()
        alice.join()
    assert "error" not in result, result
    ok(b.run({"op": "sync"}))
    assert_same(a, b)


def test_large_collection_with_many_edits(server: ServerProcess, tmp_path: Path) -> None:
    server.add_user("alice", "pw")
    a, b = Device(tmp_path / "a"), Device(tmp_path / "b")
    a.login("alice", "pw", server.url)
    b.login("alice", "pw", server.url)
    ok(a.run({"op": "add_notes", "count": 20_000, "prefix": "big"}, {"op": "full_upload"}))
    ok(b.run({"op": "full_download"}))
    ok(a.run({"op": "edit_notes", "count": 2_000, "text": "bulk edit"}, {"op": "sync"}))
    ok(b.run({"op": "sync"}))
    dump = assert_same(a, b)
    assert len(dump["notes"]) == 20_000
    assert sum(1 for n in dump["notes"] if n[6].startswith("bulk edit ")) == 2_000


def test_server_copy_matches_after_syncs(server: ServerProcess, tmp_path: Path) -> None:
    """The stored collection passes SQLite's integrity check, holds no pending usn and as many
    rows as a synced device."""
    a, b = paired(server, tmp_path)
    ok(
        a.run(
            {"op": "add_notes", "count": 5, "prefix": "x"},
            {"op": "answer_cards", "count": 2},
            {"op": "sync"},
        )
    )
    ok(b.run({"op": "sync"}))
    client = b.dump()
    path = server.data_root / "alice" / "collection.anki2"
    con = connect(path)
    assert con.execute("pragma integrity_check").fetchone() == ("ok",)
    for table in ("notes", "cards", "revlog", "decks", "notetypes", "deck_config", "tags"):
        assert con.execute(f"select count() from {table} where usn = -1").fetchone() == (0,)
        assert con.execute(f"select count() from {table}").fetchone() == (len(client[table]),)
    con.close()


def test_a_stopped_server_leaves_each_collection_whole_in_its_file(
    server: ServerProcess, tmp_path: Path
) -> None:
    """The server keeps each user's collection open between syncs (its WAL then holds recent
    changes); stopping it rolls back nothing that was committed and checkpoints the WAL into
    the main file, so a copy of ``collection.anki2`` alone is a complete backup."""
    a, _ = paired(server, tmp_path)
    ok(a.run({"op": "add_notes", "count": 3, "prefix": "late"}, {"op": "sync"}))
    path = server.data_root / "alice" / "collection.anki2"
    wal = path.with_name("collection.anki2-wal")
    assert wal.exists() and wal.stat().st_size > 0  # the sync's commit is in the WAL
    server.stop()
    assert not wal.exists() or wal.stat().st_size == 0
    alone = tmp_path / "backup.anki2"
    alone.write_bytes(path.read_bytes())
    con = connect(alone)
    assert con.execute("select count() from notes").fetchone() == (13,)
    con.close()

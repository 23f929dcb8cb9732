"""``backup`` and ``check`` against data written by real clients, also while they sync."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from ankisyncd.storage.sqlite import connect
from tests.support.clients import Device
from tests.support.compare import NO_CHANGES, content
from tests.support.media import server_media
from tests.support.server import ServerProcess

DEAD_PID = 99_999_999  # above any pid_max


def ok(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    errors = [r for r in results if "error" in r]
    assert not errors, errors
    return results


def device_with_media(server: ServerProcess, tmp_path: Path, name: str = "alice") -> Device:
    server.add_user(name, "pw")
    device = Device(tmp_path / name)
    device.login(name, "pw", server.url)
    ok(
        device.run(
            {"op": "add_notes", "count": 15, "prefix": name},
            {"op": "answer_cards", "count": 3},
            {"op": "add_media_batch", "count": 6, "size": 3000, "prefix": name},
            {"op": "full_upload"},
            {"op": "sync_media"},
        )
    )
    return device


def test_a_server_started_on_a_backup_serves_the_same_data(
    server: ServerProcess, tmp_path: Path
) -> None:
    alice = device_with_media(server, tmp_path)
    device_with_media(server, tmp_path, "bob")
    dest = tmp_path / "backup"
    result = server.cli("backup", str(dest))
    assert result.returncode == 0, result.stderr
    assert "2 users (2 collections, 12 media files" in result.stdout

    copy = ServerProcess(dest).start()
    try:
        # The device's login is part of the backup: it syncs against the copy unchanged.
        alice.step("set_hkey", hkey=_hkey(alice), endpoint=copy.url)
        assert alice.sync()["required"] == NO_CHANGES
        fresh = Device(tmp_path / "fresh")
        fresh.login("alice", "pw", copy.url)
        ok(fresh.run({"op": "full_download"}, {"op": "sync_media"}))
        assert content(fresh.dump()) == content(alice.dump())
        assert fresh.step("media_files") == alice.step("media_files")
        assert copy.cli("check").returncode == 0
    finally:
        copy.stop()


def _hkey(device: Device) -> str:
    return str(json.loads((device.folder / "auth.json").read_text())["hkey"])


def test_backups_are_consistent_while_a_client_syncs(server: ServerProcess, tmp_path: Path) -> None:
    alice = device_with_media(server, tmp_path)
    stop = threading.Event()

    def keep_syncing() -> None:
        round_ = 0
        while not stop.is_set():
            round_ += 1
            alice.run(
                {"op": "add_notes", "count": 30, "prefix": f"r{round_}"},
                {"op": "add_media_batch", "count": 5, "size": 2000, "prefix": f"r{round_}-"},
                {"op": "sync"},
                {"op": "sync_media"},
            )

    worker = threading.Thread(target=keep_syncing)
    worker.start()
    try:
        for i in range(4):
            result = server.cli("backup", str(tmp_path / f"b{i}"))
            assert result.returncode == 0, result.stderr
    finally:
        stop.set()
        worker.join()
    for i in range(4):
        dest = tmp_path / f"b{i}"
        copy = ServerProcess(dest)
        check = copy.cli("check")
        assert check.returncode == 0, check.stdout  # media.db and folder match exactly
        con = connect(dest / "alice" / "collection.anki2")
        try:
            notes, cards = con.execute(
                "select (select count() from notes), (select count() from cards)"
            ).fetchone()
        finally:
            con.close()
        assert cards == 2 * notes and (notes - 15) % 30 == 0


def test_backup_refuses_a_non_empty_destination_unless_replacing(
    server: ServerProcess, tmp_path: Path
) -> None:
    device_with_media(server, tmp_path)
    dest = tmp_path / "backup"
    dest.mkdir()
    (dest / "precious.txt").write_text("keep me")
    refused = server.cli("backup", str(dest))
    assert refused.returncode == 1 and "not empty" in refused.stderr
    assert (dest / "precious.txt").read_text() == "keep me"
    inside = server.cli("backup", str(server.data_root / "inner"))
    assert inside.returncode == 1 and "inside the data root" in inside.stderr
    assert server.cli("backup", str(dest), "--replace").returncode == 0
    assert not (dest / "precious.txt").exists()
    assert (dest / "alice" / "collection.anki2").is_file()
    assert (dest / ".ankisyncd" / "auth.db").is_file()


def test_check_names_each_planted_fault_and_repair_fixes_what_it_says(
    server: ServerProcess, tmp_path: Path
) -> None:
    alice = device_with_media(server, tmp_path)
    device_with_media(server, tmp_path, "bob")
    assert server.cli("check").returncode == 0
    media = server.data_root / "alice" / "media"
    (media / "alice0000.bin").unlink()  # row without file
    (media / "alice0001.bin").write_bytes(b"changed on disk")  # hash mismatch
    (media / "stray.txt").write_text("nobody synced me")  # file without row
    bob_col = server.data_root / "bob" / "collection.anki2"
    server.stop()  # the collection is damaged with no server holding it
    with bob_col.open("r+b") as fh:
        fh.seek(4096 * 3)
        fh.write(b"\xff" * 4096)
    server.start()
    leftover = server.data_root / "alice" / f".ankisyncd-tmp-upload-{DEAD_PID}-0"
    leftover.write_bytes(b"half an upload")  # after start-up, which would clear it

    found = server.cli("check")
    assert found.returncode == 1
    lines = found.stdout.splitlines()
    assert "alice: media row without file: 'alice0000.bin'" in lines
    assert "alice: media hash does not match file: 'alice0001.bin'" in lines
    assert "alice: media file without row: 'stray.txt' (kept)" in lines
    assert f"alice: leftover temporary file: {leftover.name}" in lines
    assert any(line.startswith("bob: collection") for line in lines), lines
    assert server.cli("check", "alice").stdout.count("alice:") == 4

    repaired = server.cli("check", "--repair")
    assert repaired.returncode == 1
    assert "(forgotten: clients upload it again)" in repaired.stdout
    assert "(re-hashed: clients download it again)" in repaired.stdout
    assert "(removed)" in repaired.stdout
    assert not leftover.exists() and (media / "stray.txt").exists()
    again = server.cli("check").stdout.splitlines()
    assert [line for line in again if line.startswith("alice")] == [
        "alice: media file without row: 'stray.txt' (kept)"
    ]

    (media / "stray.txt").unlink()
    # The client notices the forgotten file at its next media syncs and uploads it again;
    # the re-hashed one comes down as the server holds it.
    alice.step("sync_media")
    alice.step("sync_media")
    stored = server_media(server.data_root / "alice")
    assert "alice0000.bin" in stored
    assert alice.step("media_files")["alice0001.bin"] == stored["alice0001.bin"]


@pytest.mark.parametrize("args", [["check", "nobody"], ["check", "../x"]])
def test_check_refuses_unknown_or_unsafe_users(server: ServerProcess, args: list[str]) -> None:
    result = server.cli(*args)
    assert result.returncode == 1 and result.stderr.startswith("error: user")

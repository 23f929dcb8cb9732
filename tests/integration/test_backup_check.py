"""``backup`` and ``check`` against data written by real clients, also while they sync."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from ankisyncd.storage.backup import MARKER
from ankisyncd.storage.collection import TEMPLATE
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


def test_backup_refuses_a_non_empty_destination_it_did_not_make(
    server: ServerProcess, tmp_path: Path
) -> None:
    device_with_media(server, tmp_path)
    dest = tmp_path / "backup"
    dest.mkdir()
    (dest / "precious.txt").write_text("keep me")
    refused = server.cli("backup", str(dest))
    assert refused.returncode == 1 and "not empty" in refused.stderr
    inside = server.cli("backup", str(server.data_root / "inner"))
    assert inside.returncode == 1 and "inside the data root" in inside.stderr
    # --replace deletes only an earlier backup (one holding the marker), never this folder.
    replace = server.cli("backup", str(dest), "--replace")
    assert replace.returncode == 1 and f"has no {MARKER} file" in replace.stderr
    assert "Traceback" not in replace.stderr
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".backup")) == []
    assert [p.name for p in dest.iterdir()] == ["precious.txt"]
    assert (dest / "precious.txt").read_text() == "keep me"


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
    staged = server.data_root / ".ankisyncd" / "snapshots" / "alice"
    staged.mkdir(parents=True, exist_ok=True)
    staged = staged / f".ankisyncd-tmp-snapshot-{DEAD_PID}-0"
    staged.write_bytes(b"half a snapshot")  # a crash during a snapshot's copy

    found = server.cli("check")
    assert found.returncode == 1
    lines = found.stdout.splitlines()
    assert "alice: media row without file: 'alice0000.bin'" in lines
    assert "alice: media hash does not match file: 'alice0001.bin'" in lines
    assert "alice: media file without row: 'stray.txt' (kept)" in lines
    assert f"alice: leftover temporary file: {leftover.name}" in lines
    assert f"alice: snapshots: leftover temporary file: {staged.name}" in lines
    assert any(line.startswith("bob: collection") for line in lines), lines
    assert server.cli("check", "alice").stdout.count("alice:") == 5

    repaired = server.cli("check", "--repair")
    assert repaired.returncode == 1
    assert "(forgotten: clients upload it again)" in repaired.stdout
    assert "(re-hashed: clients download it again)" in repaired.stdout
    assert "(removed)" in repaired.stdout
    assert not leftover.exists() and not staged.exists() and (media / "stray.txt").exists()
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


def offline(tmp_path: Path, env: dict[str, str] | None = None) -> ServerProcess:
    """A data root with a user (collection, media.db, media files, login), no server on it."""
    srv = ServerProcess(tmp_path / "srv" / "data", env)
    user = srv.data_root / "alice"
    (user / "media").mkdir(parents=True)
    shutil.copyfile(TEMPLATE, user / "collection.anki2")
    con = sqlite3.connect(user / "media.db")
    with con:
        con.execute("create table media (fname text primary key)")
    con.close()
    for i in range(3):
        (user / "media" / f"img{i}.jpg").write_bytes(bytes([i]) * 5000)
    srv.add_user("alice", "pw")
    return srv


def digests(root: Path) -> dict[str, str]:
    """Relative path -> sha1 of every file under ``root``."""
    return {
        str(p.relative_to(root)): hashlib.sha1(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


@pytest.mark.parametrize("dest", ["srv", "srv/data", "etc"])
def test_backup_refuses_a_destination_holding_what_the_server_uses(
    tmp_path: Path, dest: str
) -> None:
    # `backup /srv --replace` meant for /srv/backups/x deleted the live data root (audit A §1).
    srv = offline(tmp_path, {"ANKISYNCD_AUTH_DB_PATH": str(tmp_path / "etc" / "auth.db")})
    (tmp_path / "srv" / "other-service").mkdir()
    (tmp_path / "srv" / "other-service" / "config.txt").write_text("precious")
    before = digests(tmp_path)
    assert "srv/data/alice/collection.anki2" in before and "etc/auth.db" in before
    result = srv.cli("backup", str(tmp_path / dest), "--replace")
    assert result.returncode == 1
    assert result.stderr.startswith("error: ") and "which the server uses" in result.stderr
    assert digests(tmp_path) == before
    assert not [p for p in tmp_path.rglob(".*") if ".partial-" in p.name or ".old-" in p.name]


def test_backup_replace_over_an_earlier_backup_leaves_a_complete_copy(tmp_path: Path) -> None:
    srv = offline(tmp_path)
    dest = tmp_path / "backups" / "latest"
    assert srv.cli("backup", str(dest)).returncode == 0
    assert json.loads((dest / MARKER).read_text())["ankisyncd_backup"] == 1
    media = srv.data_root / "alice" / "media"
    (media / "img0.jpg").unlink()
    (media / "new.png").write_bytes(b"new" * 1000)
    (srv.data_root / "bob").mkdir()
    shutil.copyfile(TEMPLATE, srv.data_root / "bob" / "collection.anki2")

    result = srv.cli("backup", str(dest), "--replace")
    assert result.returncode == 0, result.stderr
    assert "2 users (2 collections, 3 media files" in result.stdout
    assert {p.name for p in dest.iterdir()} == {".ankisyncd", MARKER, "alice", "bob"}
    assert digests(dest / "alice" / "media") == digests(media)
    assert (dest / ".ankisyncd" / "auth.db").is_file()
    for name in ("alice", "bob"):
        con = connect(dest / name / "collection.anki2")
        try:
            assert con.execute("pragma integrity_check").fetchone()[0] == "ok"
        finally:
            con.close()
    assert [p.name for p in dest.parent.iterdir()] == ["latest"]  # no staging or old copy left


def test_a_backup_removes_what_interrupted_backups_left_beside_it(tmp_path: Path) -> None:
    srv = offline(tmp_path)
    dest = tmp_path / "backups" / "latest"
    left = {
        name: dest.parent / name
        for name in (
            f".latest.partial-{DEAD_PID}",  # a crash while copying
            f".latest.old-{DEAD_PID}",  # a crash between the two renames of --replace
            f".latest.partial-{os.getpid()}",  # a process still running: not ours to remove
            f".other.partial-{DEAD_PID}",  # another destination's
        )
    }
    for path in left.values():
        (path / "alice").mkdir(parents=True)
    assert srv.cli("backup", str(dest)).returncode == 0
    assert sorted(p.name for p in dest.parent.iterdir()) == sorted(
        ["latest", f".latest.partial-{os.getpid()}", f".other.partial-{DEAD_PID}"]
    )


def test_backup_refuses_a_symlink_destination(tmp_path: Path) -> None:
    srv = offline(tmp_path)
    disk = tmp_path / "nas" / "ankisyncd"
    assert srv.cli("backup", str(disk)).returncode == 0
    before = digests(disk)
    link = tmp_path / "backups" / "latest"
    link.parent.mkdir()
    link.symlink_to(disk)
    result = srv.cli("backup", str(link), "--replace")
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith("error: ") and "symbolic link" in result.stderr
    assert "Traceback" not in result.stderr
    assert link.is_symlink() and [p.name for p in link.parent.iterdir()] == ["latest"]
    assert digests(disk) == before


def test_backup_syncs_the_new_copy_before_deleting_the_old(tmp_path: Path) -> None:
    srv = offline(tmp_path)
    dest = (tmp_path / "backups" / "latest").resolve()
    assert srv.cli("backup", str(dest)).returncode == 0
    trace = tmp_path / "trace"
    calls = "trace=fsync,rename,renameat,renameat2,unlinkat"
    strace = ["strace", "-f", "-qq", "-y", "-o", str(trace), "-e", calls]
    command = [*strace, sys.executable, "-m", "ankisyncd", "backup", str(dest), "--replace"]
    result = subprocess.run(command, env=srv.env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    lines = trace.read_text().splitlines()
    swap = next(i for i, line in enumerate(lines) if "rename" in line and ".partial-" in line)
    staging = dest.parent / re.findall(r"\.latest\.partial-\d+", lines[swap])[0]
    staged = {str(staging / p.relative_to(dest)) for p in dest.rglob("*")}
    assert staged | {str(staging), str(dest.parent)} <= fsynced(lines[:swap])
    delete = next(i for i in range(swap, len(lines)) if "unlinkat(" in lines[i])
    assert ".latest.old-" in lines[delete]
    assert str(dest.parent) in fsynced(lines[swap:delete])  # the renames are durable first


def fsynced(lines: list[str]) -> set[str]:
    """The paths of the descriptors that these strace -y lines fsync."""
    return {m[1] for line in lines if (m := re.match(r"\d+ +fsync\(\d+<(.*)>\) += 0", line))}

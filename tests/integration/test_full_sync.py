"""Log in, full upload and full download with real anki clients of several versions."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from tests.support.clients import NEWEST, OLDER_V11, Device, upload_notes
from tests.support.compare import FULL_DOWNLOAD, FULL_UPLOAD, NO_CHANGES, content
from tests.support.server import ServerProcess

VERSIONS = [NEWEST, pytest.param(OLDER_V11, marks=pytest.mark.older_client)]


def fill(device: Device) -> None:
    """Give a device notes in two decks, tags and reviews (revlog rows)."""
    results = device.run(
        {"op": "add_notes", "count": 12, "prefix": "a"},
        {"op": "add_notes", "count": 5, "prefix": "b", "deck": "Languages::Japanese"},
        {"op": "answer_cards", "count": 4},
    )
    assert results[0]["notes"] == 12 and results[1]["notes"] == 17
    assert results[2]["answered"] == 4


@pytest.mark.parametrize("version", VERSIONS)
def test_login_refuses_wrong_password_and_unknown_user(
    server: ServerProcess, tmp_path: Path, version: str
) -> None:
    server.add_user("alice", "correct horse")
    device = Device(tmp_path / "dev", version)
    for user, password in [("alice", "wrong"), ("mallory", "correct horse"), ("", "x")]:
        result = device.login(user, password, server.url)
        assert result["error"] == "SyncError", result
        assert result["kind"] == "AUTH", result
    assert len(device.login("alice", "correct horse", server.url)["hkey"]) == 40


@pytest.mark.parametrize("version", VERSIONS)
def test_upload_then_download_gives_identical_collections(
    server: ServerProcess, tmp_path: Path, version: str
) -> None:
    server.add_user("alice", "pw")
    laptop, phone = Device(tmp_path / "laptop", version), Device(tmp_path / "phone", version)
    laptop.login("alice", "pw", server.url)
    fill(laptop)

    assert laptop.sync() == {"required": FULL_UPLOAD, "server_message": ""}
    assert laptop.step("full_upload") == {}
    assert laptop.sync()["required"] == NO_CHANGES

    phone.login("alice", "pw", server.url)
    assert phone.sync()["required"] == FULL_DOWNLOAD
    assert phone.step("full_download") == {}
    assert phone.sync()["required"] == NO_CHANGES

    laptop_dump, phone_dump = laptop.dump(), phone.dump()
    assert len(phone_dump["notes"]) == 17 and len(phone_dump["revlog"]) == 4
    assert content(phone_dump) == content(laptop_dump)
    # The download bumped the server's usn and mod; the phone holds exactly those.
    assert phone_dump["col"][0][4] == laptop_dump["col"][0][4] + 1


def test_new_account_has_nothing_to_sync_and_downloads_a_stock_collection(
    server: ServerProcess, tmp_path: Path
) -> None:
    server.add_user("newbie", "pw")
    device = Device(tmp_path / "dev")
    device.login("newbie", "pw", server.url)
    assert device.sync()["required"] == NO_CHANGES  # both sides untouched: mod 0
    assert device.step("full_download") == {}
    dump = device.dump()
    assert dump["notes"] == [] and dump["cards"] == []
    assert [row[1] for row in dump["decks"]] == ["Default"]
    assert {"Basic", "Cloze"} <= {row[1] for row in dump["notetypes"]}
    # As with the official server, the server-made collection has no creationOffset; the
    # client sets it on opening, so its next sync is a normal one.
    assert dump["col"][0][1] > 0


def test_two_users_are_isolated(server: ServerProcess, tmp_path: Path) -> None:
    server.add_user("alice", "pw-a")
    server.add_user("bob", "pw-b")
    alice, bob = Device(tmp_path / "alice"), Device(tmp_path / "bob")
    alice.login("alice", "pw-a", server.url)
    bob.login("bob", "pw-b", server.url)
    fill(alice)
    alice.step("full_upload")
    # Bob's account is still empty: his empty device has nothing to fetch.
    assert bob.sync()["required"] == NO_CHANGES
    bob.step("full_download")
    assert bob.dump()["notes"] == []
    assert (server.data_root / "alice" / "collection.anki2").exists()
    assert (server.data_root / "bob" / "collection.anki2").exists()


def test_restart_keeps_devices_logged_in(server: ServerProcess, tmp_path: Path) -> None:
    server.add_user("alice", "pw")
    device = Device(tmp_path / "dev")
    device.login("alice", "pw", server.url)
    fill(device)
    device.step("full_upload")
    server.stop()
    server.start()
    assert device.sync()["required"] == NO_CHANGES


def test_changing_password_logs_old_devices_out(server: ServerProcess, tmp_path: Path) -> None:
    server.add_user("alice", "old")
    phone, laptop = Device(tmp_path / "phone"), Device(tmp_path / "laptop")
    phone.login("alice", "old", server.url)
    laptop.login("alice", "old", server.url)
    assert phone.sync()["required"] == NO_CHANGES

    result = server.cli("user", "passwd", "alice", "--password-stdin", stdin="new\n")
    assert result.returncode == 0, result.stderr
    for device in (phone, laptop):
        assert device.sync()["kind"] == "AUTH"
    assert phone.login("alice", "old", server.url)["kind"] == "AUTH"
    phone.login("alice", "new", server.url)
    assert phone.sync()["required"] == NO_CHANGES


def test_removed_user_is_logged_out_and_keeps_data(server: ServerProcess, tmp_path: Path) -> None:
    server.add_user("alice", "pw")
    device = Device(tmp_path / "dev")
    device.login("alice", "pw", server.url)
    fill(device)
    device.step("full_upload")
    assert server.cli("user", "remove", "alice").returncode == 2  # needs --yes
    assert server.cli("user", "remove", "alice", "--yes").returncode == 0
    assert device.sync()["kind"] == "AUTH"
    assert (server.data_root / "alice" / "collection.anki2").stat().st_size > 0


def test_official_server_users_switch_over_without_logging_in_again(tmp_path: Path) -> None:
    """SYNC_USERn users keep the host key the official server gave their devices."""
    env = {"SYNC_USER1": "alice:pw one", "SYNC_USER2": "bob:pw:two"}
    server = ServerProcess(tmp_path / "data", env).start()
    try:
        official_key = hashlib.sha1(b"alice:pw one").hexdigest()
        device = Device(tmp_path / "dev")
        device.step("set_hkey", hkey=official_key, endpoint=server.url)
        fill(device)
        assert device.sync()["required"] == FULL_UPLOAD
        assert device.step("full_upload") == {}
        assert device.login("alice", "pw one", server.url)["hkey"] == official_key
        bob = Device(tmp_path / "bob")
        assert (
            bob.login("bob", "pw:two", server.url)["hkey"]
            == hashlib.sha1(b"bob:pw:two").hexdigest()
        )
        assert bob.login("bob", "pw", server.url)["kind"] == "AUTH"
    finally:
        server.stop()


def test_hashed_official_passwords_are_accepted(tmp_path: Path) -> None:
    import base64

    salt = b"0123456789abcdef"
    derived = hashlib.pbkdf2_hmac("sha256", b"s3cret", salt, 10000, 32)
    b64 = lambda raw: base64.b64encode(raw).decode().rstrip("=")  # noqa: E731
    phc = f"$pbkdf2-sha256$i=10000,l=32${b64(salt)}${b64(derived)}"
    env = {"SYNC_USER1": f"carol:{phc}", "PASSWORDS_HASHED": "1"}
    server = ServerProcess(tmp_path / "data", env).start()
    try:
        device = Device(tmp_path / "dev")
        key = device.login("carol", "s3cret", server.url)["hkey"]
        assert key == hashlib.sha1(f"carol:{phc}".encode()).hexdigest()
        assert device.login("carol", phc, server.url)["kind"] == "AUTH"
    finally:
        server.stop()


def test_full_download_holds_every_commit_while_another_process_reads(
    server: ServerProcess, tmp_path: Path
) -> None:
    """A backup tool's open read transaction must not hide the newest commits from a download
    (the checkpoint it blocks once decided what the snapshot held)."""
    server.add_user("alice", "pw")
    laptop = upload_notes(tmp_path / "laptop", server.url, "alice", "pw", 300)
    reader = sqlite3.connect(server.data_root / "alice" / "collection.anki2")
    try:
        reader.execute("begin")
        assert reader.execute("select count() from notes").fetchone() == (300,)
        laptop.step("add_notes", count=50, prefix="late")
        assert laptop.sync()["required"] == NO_CHANGES  # a normal sync: committed to the WAL

        phone = Device(tmp_path / "phone")
        phone.login("alice", "pw", server.url)
        assert phone.step("full_download") == {}
        assert len(phone.dump()["notes"]) == 350
        assert reader.execute("select count() from notes").fetchone() == (300,)
    finally:
        reader.close()

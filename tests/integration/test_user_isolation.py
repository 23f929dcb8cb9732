"""One user's broken files never affect another user."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.support.clients import Device
from tests.support.compare import NO_CHANGES
from tests.support.server import ServerProcess

SERVER_PROBLEM = "Please try again in a few minutes."


def test_broken_files_of_one_user_leave_the_others_syncing(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data")
    names = ["good", "badmedia", "newmedia", "badcol"]
    for name in names:
        server.add_user(name, "pw")
    server.start()
    devices = {name: Device(tmp_path / name) for name in names}
    for name, device in devices.items():
        device.login(name, "pw", server.url)
        device.step("add_media", name=f"{name}.txt", text=name)
        assert device.step("sync_all")["required"] == NO_CHANGES  # collection, then media
    server.stop()

    root = server.data_root
    (root / "badmedia" / "media.db").write_bytes(b"this is not a database" * 100)
    for suffix in ("-wal", "-shm"):
        (root / "badmedia" / f"media.db{suffix}").unlink(missing_ok=True)
    con = sqlite3.connect(root / "newmedia" / "media.db")
    con.execute("pragma user_version = 99")  # written by a newer server
    con.close()
    (root / "badcol" / "collection.anki2").write_bytes(b"\0garbage" * 4096)
    server.start()  # a broken user must not stop the server from starting
    try:
        devices["good"].step("add_media", name="more.txt", text="more")
        assert devices["good"].step("sync_all")["required"] == NO_CHANGES
        assert devices["good"].step("sync_media") == {}
        for name in ("badmedia", "newmedia", "badcol"):
            for _ in range(2):  # meta reports the media usn too: the sync stops at once
                failed = devices[name].sync()
                assert SERVER_PROBLEM in failed["message"], failed
    finally:
        server.stop()
    log = server.log_path.read_text()
    for path in (
        root / "badmedia" / "media.db",
        root / "newmedia" / "media.db",
        root / "badcol" / "collection.anki2",
    ):
        assert log.count(f"cannot be used (other users are not affected): {path}") == 1, path

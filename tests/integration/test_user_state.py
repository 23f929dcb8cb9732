"""Per-user state is bounded: abandoned syncs rolled back, idle users released, many users
served within a small descriptor limit."""

from __future__ import annotations

import hashlib
import json
import os
import resource
import sqlite3
import time
from pathlib import Path

from tests.support.server import ServerProcess
from tests.support.wire import RawClient, zstd

USERS = 2000
# A PBKDF2 hash with one round: thousands of SYNC_USERn users start in a moment.
SALT = b"0123456789abcdef"


def _phc(password: str) -> str:
    import base64

    derived = hashlib.pbkdf2_hmac("sha256", password.encode(), SALT, 1, 32)
    b64 = lambda raw: base64.b64encode(raw).decode().rstrip("=")  # noqa: E731
    return f"$pbkdf2-sha256$i=1,l=32${b64(SALT)}${b64(derived)}"


def test_an_abandoned_sync_is_rolled_back(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data", {"ANKISYNCD_SYNC_IDLE_SECONDS": "1"})
    server.add_user("alice", "pw")
    server.start()
    raw = RawClient(server.url)
    try:
        raw.login("alice", "pw")
        meta = raw.call("meta", {"v": 11, "cv": "test"})
        raw.call("start", {"minUsn": meta["usn"], "lnewer": False, "graves": None})
        # The phone lost its network: nothing more comes. Another writer gets the lock soon.
        con = sqlite3.connect(server.data_root / "alice" / "collection.anki2", timeout=30)
        try:
            started = time.monotonic()
            con.execute("begin immediate")
            con.execute("rollback")
            assert time.monotonic() - started < 25
        finally:
            con.close()
        assert raw.post("finish", b"{}").status_code == 409  # no active sync
    finally:
        raw.close()
        server.stop()


def _limit_descriptors() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))


def test_two_thousand_users_sync_in_turn_within_1024_descriptors(tmp_path: Path) -> None:
    env = {"PASSWORDS_HASHED": "1"}
    for i in range(USERS):
        env[f"SYNC_USER{i + 1}"] = f"u{i}:{_phc('pw')}"
    server = ServerProcess(tmp_path / "data", env)
    server.preexec = _limit_descriptors
    server.start()
    assert server.proc is not None
    raw = RawClient(server.url)
    try:
        for i in range(USERS):
            raw.hkey = hashlib.sha1(env[f"SYNC_USER{i + 1}"].encode()).hexdigest()
            meta = raw.call("meta", {"v": 11, "cv": "test"})
            raw.call("start", {"minUsn": meta["usn"], "lnewer": False, "graves": None})
            raw.call("finish", {})
            resp = raw.http.post(
                "msync/mediaChanges",
                content=zstd(json.dumps({"lastUsn": 0}).encode()),
                headers={"anki-sync": json.dumps({"v": 11, "k": raw.hkey, "c": "t", "s": ""})},
            )
            assert resp.status_code == 200, (i, resp.status_code)
        open_now = len(os.listdir(f"/proc/{server.proc.pid}/fd"))
        assert open_now < 900, open_now
    finally:
        raw.close()
        server.stop()
    assert "Too many open files" not in server.log_path.read_text()

"""Per-user state is bounded: abandoned syncs rolled back, idle users released, many users
served within a small descriptor limit, and more users syncing at once than are kept open
wait for room instead of breaking each other's syncs."""

from __future__ import annotations

import hashlib
import json
import os
import resource
import sqlite3
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from tests.integration.test_login_throttle import TRY_LATER
from tests.integration.test_observe import scrape, value
from tests.support.clients import Device, ok
from tests.support.hold import HoldingProxy
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
    log = server.log_path.read_text()
    assert "Too many open files" not in log
    # 1,024 descriptors hold fewer users than max_open_users (1,000) with 1,000 connections.
    assert "the limit of 1024 open files (ulimit -n) keeps 80 users open" in log


def test_start_up_raises_the_soft_limit_on_open_files_to_what_the_users_need(
    tmp_path: Path,
) -> None:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    server = ServerProcess(tmp_path / "data")
    server.preexec = lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))
    server.start()
    assert server.proc is not None
    try:
        limits = Path(f"/proc/{server.proc.pid}/limits").read_text()
        soft = next(line.split()[3] for line in limits.splitlines() if "open files" in line)
    finally:
        server.stop()
    needed = 6 * 1000 + 1000 + 64  # six per kept user, one per connection, and spare ones
    assert int(soft) == (needed if hard == resource.RLIM_INFINITY else min(needed, hard))
    assert ("keeps" in server.log_path.read_text()) == (int(soft) < needed)


def test_more_users_syncing_than_are_kept_open_wait_their_turn(tmp_path: Path) -> None:
    """Two users kept open (``max_open_users``), both paused in the middle of a sync by a
    proxy: a third user's sync waits until one of them ends, and all three syncs succeed
    (real clients; before, the newcomer rolled back the first sync, which then failed)."""
    server = ServerProcess(tmp_path / "data", {"ANKISYNCD_MAX_OPEN_USERS": "2"})
    for name in ("alice", "bob", "carol"):
        server.add_user(name, "pw")
    server.start()
    results: dict[str, dict[str, Any]] = {}
    try:
        with ExitStack() as stack:
            proxies = {
                name: stack.enter_context(HoldingProxy(server.url, "/sync/applyChanges").running())
                for name in ("alice", "bob")
            }
            devices = {}
            for name in ("alice", "bob", "carol"):
                device = devices[name] = Device(tmp_path / name)
                url = proxies[name].url if name in proxies else server.url
                device.login(name, "pw", url)
                ok(
                    device.run(
                        {"op": "add_notes", "count": 3, "prefix": name}, {"op": "full_upload"}
                    )
                )
                ok(device.run({"op": "edit_notes", "count": 1, "text": f"{name} edited"}))

            def sync(name: str) -> threading.Thread:
                thread = threading.Thread(
                    target=lambda: results.update({name: devices[name].sync()})
                )
                thread.start()
                return thread

            threads = {}
            for name in ("alice", "bob"):
                threads[name] = sync(name)
                assert proxies[name].held.wait(120), f"{name} never reached applyChanges"
            threads["carol"] = sync("carol")
            time.sleep(2)
            assert threads["carol"].is_alive()  # waiting for room, not breaking a sync
            proxies["alice"].release()
            for name in ("alice", "carol"):
                threads[name].join(120)
            assert set(results) == {"alice", "carol"}, results
            proxies["bob"].release()
            threads["bob"].join(120)
            for proxy in proxies.values():
                assert all(status == 200 for _, status in proxy.statuses), proxy.statuses
            samples = scrape(server, token=None)
            assert value(samples, "ankisyncd_room_waits_total", outcome="admitted") >= 1
            assert value(samples, "ankisyncd_room_waits_total", outcome="refused") == 0
            assert value(samples, "ankisyncd_open_users") == 2
    finally:
        server.stop()
    assert all("error" not in result for result in results.values()), results
    for name in ("alice", "bob", "carol"):
        con = sqlite3.connect(server.data_root / name / "collection.anki2")
        try:
            fields = [row[0] for row in con.execute("select flds from notes")]
        finally:
            con.close()
        assert sum(f.startswith(f"{name} edited") for f in fields) == 1, (name, fields)
    assert "users kept open are in a sync" in server.log_path.read_text()


def test_a_users_first_request_removes_what_an_earlier_process_left(tmp_path: Path) -> None:
    """Temporary files of an interrupted request (an upload when the process died) go at the
    user's first request after start-up; other files stay."""
    folder = tmp_path / "data" / "alice"
    folder.mkdir(parents=True)
    leftover = folder / ".ankisyncd-tmp-upload-999999-0"
    leftover.write_bytes(b"half an upload")
    kept = folder / "notes.txt"
    kept.write_text("not ours")
    old = time.time() - 3600
    os.utime(leftover, (old, old))
    server = ServerProcess(tmp_path / "data")
    server.add_user("alice", "pw")
    server.start()
    raw = RawClient(server.url)
    try:
        raw.login("alice", "pw")
        assert leftover.exists()  # start-up walks no user's folder
        raw.call("meta", {"v": 11, "cv": "test"})
        assert not leftover.exists() and kept.exists()
        assert "removed 1 temporary files left in" in server.log_path.read_text()
    finally:
        raw.close()
        server.stop()


def test_a_newcomer_the_server_has_no_room_for_is_told_to_try_later(tmp_path: Path) -> None:
    """One user kept open, paused in the middle of a sync: another user's sync waits 30 s, then
    the real client shows the 503 as "try again later"; the paused sync still ends well, and
    the newcomer's next sync succeeds."""
    server = ServerProcess(tmp_path / "data", {"ANKISYNCD_MAX_OPEN_USERS": "1"})
    for name in ("alice", "bob"):
        server.add_user(name, "pw")
    server.start()
    result: dict[str, Any] = {}
    try:
        with HoldingProxy(server.url, "/sync/applyChanges").running() as proxy:
            alice, bob = Device(tmp_path / "alice"), Device(tmp_path / "bob")
            alice.login("alice", "pw", proxy.url)
            bob.login("bob", "pw", server.url)
            for name, device in (("alice", alice), ("bob", bob)):
                ok(
                    device.run(
                        {"op": "add_notes", "count": 2, "prefix": name}, {"op": "full_upload"}
                    )
                )
                ok(device.run({"op": "edit_notes", "count": 1, "text": f"{name} edited"}))
            held = threading.Thread(target=lambda: result.update(alice.sync()))
            held.start()
            assert proxy.held.wait(120), "alice never reached applyChanges"
            started = time.monotonic()
            refused = bob.sync()
            assert time.monotonic() - started >= 25  # it waited for room first
            assert TRY_LATER in refused.get("message", ""), refused
            proxy.release()
            held.join(120)
        assert "error" not in result, result
        assert "error" not in bob.sync()
        samples = scrape(server, token=None)
        assert value(samples, "ankisyncd_room_waits_total", outcome="refused") == 1
    finally:
        server.stop()

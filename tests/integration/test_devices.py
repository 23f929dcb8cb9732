"""Devices: each login's host key listed, revoked one at a time, never accepted again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.clients import LEGACY_V10, NEWEST, Device
from tests.support.compare import NO_CHANGES
from tests.support.server import ServerProcess
from tests.support.wire import RawClient


def devices(server: ServerProcess, name: str) -> list[dict[str, object]]:
    result = server.cli("user", "devices", name, "--json")
    assert result.returncode == 0, result.stderr
    return list(json.loads(result.stdout))


@pytest.mark.parametrize(
    "version", [NEWEST, pytest.param(LEGACY_V10, marks=pytest.mark.older_client)]
)
def test_a_revoked_device_must_log_in_again_and_others_keep_syncing(
    server: ServerProcess, tmp_path: Path, version: str
) -> None:
    server.add_user("alice", "pw")
    phone, laptop = Device(tmp_path / "phone", version), Device(tmp_path / "laptop", version)
    phone.login("alice", "pw", server.url)
    laptop.login("alice", "pw", server.url)
    listed = devices(server, "alice")
    assert [d["address"] for d in listed] == ["127.0.0.1", "127.0.0.1"]
    assert all(isinstance(d["created"], int) and d["last_seen"] for d in listed)
    phone_id, laptop_id = (d["id"] for d in listed)

    assert server.cli("user", "revoke", "alice", str(phone_id)).returncode == 0
    assert phone.sync()["kind"] == "AUTH"  # the client clears its key and asks to log in
    assert laptop.sync()["required"] == NO_CHANGES
    assert [d["id"] for d in devices(server, "alice")] == [laptop_id]
    again = server.cli("user", "revoke", "alice", str(phone_id))
    assert again.returncode == 1 and "no device" in again.stderr

    phone.login("alice", "pw", server.url)
    assert phone.sync()["required"] == NO_CHANGES
    assert server.cli("user", "revoke", "alice", "--all").returncode == 0
    assert phone.sync()["kind"] == "AUTH" and laptop.sync()["kind"] == "AUTH"
    assert devices(server, "alice") == []


def test_devices_show_the_client_version_and_last_use(server: ServerProcess) -> None:
    server.add_user("alice", "pw")
    raw = RawClient(server.url)
    try:
        raw.login("alice", "pw")
        [device] = devices(server, "alice")
        assert device["client"] == "test,1,linux" and device["address"] == "127.0.0.1"
        assert device["last_seen"] == device["created"]
        usage = server.cli("user", "revoke", "alice")
        assert usage.returncode == 2 and "DEVICE_ID or --all" in usage.stderr
        assert server.cli("user", "devices", "nobody").returncode == 1
    finally:
        raw.close()


def test_unauthenticated_requests_create_no_auth_database(server: ServerProcess) -> None:
    raw = RawClient(server.url)
    try:
        assert raw.post("meta", b'{"v":11,"cv":"x"}', hkey="0" * 40).status_code == 403
        assert raw.post("hostKey", b'{"u":"mallory","p":"x"}').status_code == 403
        assert raw.http.get("msync/begin", params={"k": "1" * 40, "v": "x"}).status_code == 403
    finally:
        raw.close()
    assert not (server.data_root / ".ankisyncd").exists()
    assert [p.name for p in server.data_root.iterdir()] == []

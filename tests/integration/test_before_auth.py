"""Before authentication: legacy forms stop at a wrong key, spool nothing to the system's temp
folder; request log lines name the client and cannot be forged."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server import ServerProcess, serving
from tests.support.wire import RawClient, zstd

BOUNDARY = "----ankisyncdtest"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("before-auth")
    system_temp = tmp / "system-temp"
    system_temp.mkdir()
    env = {
        "TMPDIR": str(system_temp),
        "ANKISYNCD_IP_HEADER": "XRealIp",
        "ANKISYNCD_TRUSTED_PROXIES": "127.0.0.1",
    }
    with serving(tmp / "data", env, {"alice": "pw"}) as server:
        yield server


def _field(name: str, value: str) -> bytes:
    return (
        f'--{BOUNDARY}\r\ncontent-disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
    ).encode()


DATA_HEAD = (
    f'--{BOUNDARY}\r\ncontent-disposition: form-data; name="data"; filename="data"\r\n'
    "content-type: application/octet-stream\r\n\r\n"
).encode()


def _start_form(server: ServerProcess, method: str, length: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.sendall(
        f"POST /sync/{method} HTTP/1.1\r\nhost: x\r\n"
        f"content-type: multipart/form-data; boundary={BOUNDARY}\r\n"
        f"content-length: {length}\r\n\r\n".encode()
    )
    return sock


def test_a_legacy_form_with_a_wrong_key_is_not_read_past_the_key(server: ServerProcess) -> None:
    fields = _field("c", "0") + _field("k", "f" * 40) + _field("s", "x")
    sock = _start_form(server, "applyChunk", len(fields) + (50 << 20))
    sock.sendall(fields + DATA_HEAD + bytes(64 << 10))  # of 50 MiB announced
    sock.settimeout(60)
    try:
        assert sock.recv(65536).startswith(b"HTTP/1.1 403")
    finally:
        sock.close()


def _open_files(server: ServerProcess) -> list[str]:
    assert server.proc is not None
    fds = Path(f"/proc/{server.proc.pid}/fd")
    links = []
    for fd in fds.iterdir():
        with contextlib.suppress(OSError):  # closed meanwhile
            links.append(os.readlink(fd))
    return links


def test_legacy_data_is_spooled_under_the_data_root(server: ServerProcess) -> None:
    """Desktop 2.1.50-2.1.56 send data before the key: over 1 MiB it goes to a file."""
    sock = _start_form(server, "upload", 10 << 20)
    try:
        sock.sendall(DATA_HEAD + os.urandom(3 << 20))
        deadline = time.monotonic() + 60
        while True:
            spooled = [p for p in _open_files(server) if "(deleted)" in p or "/#" in p]
            if spooled or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert spooled, _open_files(server)
        assert all(p.startswith(str(server.data_root)) for p in spooled), spooled
    finally:
        sock.close()


def test_log_lines_name_the_client_and_escape_what_it_sent(server: ServerProcess) -> None:
    raw = RawClient(server.url)
    header = json.dumps({"v": 11, "k": "", "c": "26.9\x1b[2J", "s": ""})
    body = json.dumps({"u": "mallory\nINFO hostKey user=alice status=200", "p": "x"})
    resp = raw.http.post(
        "sync/hostKey",
        content=zstd(body.encode()),
        headers={"anki-sync": header, "x-real-ip": "203.0.113.7"},
    )
    assert resp.status_code == 403
    raw.login("alice", "pw")
    raw.call("meta", {"v": 11, "cv": "test"})
    raw.close()
    deadline = time.monotonic() + 10
    while "meta user=alice" not in server.log():
        assert time.monotonic() < deadline
        time.sleep(0.1)
    lines = server.log().splitlines()
    assert not any(line.startswith("INFO hostKey") for line in lines)
    forged = [line for line in lines if "mallory" in line]
    assert forged and all("mallory\\nINFO" in line for line in forged), forged
    assert all("\x1b" not in line for line in lines)
    assert any("addr=203.0.113.7" in line and "mallory" in line for line in lines)
    meta = [line for line in lines if "meta user=alice client=test,1,linux status=200" in line]
    assert meta and "addr=127.0.0.1 " in meta[-1], lines[-5:]

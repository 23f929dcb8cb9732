"""Stalled connections are closed after the configured time; slow but moving requests are not."""

from __future__ import annotations

import json
import selectors
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server import ServerProcess, serving
from tests.support.wire import RawClient, unzstd, zstd

TIMEOUT = 2.0  # header and body timeouts of the server under test
MARGIN = 40.0  # the machine is shared: closing may come late, but must come


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("limits")
    env = {
        "ANKISYNCD_HEADER_TIMEOUT": str(TIMEOUT),
        "ANKISYNCD_BODY_TIMEOUT": str(TIMEOUT),
        "ANKISYNCD_KEEP_ALIVE_TIMEOUT": str(TIMEOUT),
        "ANKISYNCD_MAX_CONNECTIONS": "2000",
    }
    with serving(tmp / "data", env, {"alice": "pw"}) as server:
        yield server


def _open(server: ServerProcess, first_bytes: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port))
    if first_bytes:
        sock.sendall(first_bytes)
    sock.setblocking(False)
    return sock


def _wait_closed(socks: list[socket.socket], deadline: float) -> list[float]:
    """Seconds until each socket was closed by the server (end of stream or reset)."""
    started, closed = time.monotonic(), []
    sel = selectors.DefaultSelector()
    for s in socks:
        sel.register(s, selectors.EVENT_READ)
    while sel.get_map() and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=0.5):
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                data = b""
            if not data:
                sel.unregister(sock)
                sock.close()
                closed.append(time.monotonic() - started)
    for key in list(sel.get_map().values()):
        key.fileobj.close()  # type: ignore[union-attr]
    return closed


HALF_LINE = b"POST /sync/me"
HEADERS_NO_BODY = (
    b"POST /sync/meta HTTP/1.1\r\nhost: x\r\ncontent-type: application/octet-stream\r\n"
    b'anki-sync: {"v":11,"k":"x","c":"x","s":""}\r\ncontent-length: 100\r\n\r\n'
)


@pytest.mark.parametrize("first_bytes", [b"", HALF_LINE, HEADERS_NO_BODY], ids=str)
def test_stalled_connections_are_closed_after_the_timeout(
    server: ServerProcess, first_bytes: bytes
) -> None:
    count = 300
    socks = [_open(server, first_bytes) for _ in range(count)]
    closed = _wait_closed(socks, time.monotonic() + TIMEOUT + MARGIN)
    assert len(closed) == count
    assert min(closed) > TIMEOUT / 2  # closed by the timer, not refused at once
    assert server.alive()


def test_headers_sent_slowly_do_not_extend_the_deadline(server: ServerProcess) -> None:
    sock = _open(server, b"POST /sync/meta HTTP/1.1\r\n")
    started = time.monotonic()
    try:
        with pytest.raises((BrokenPipeError, ConnectionResetError)):
            while time.monotonic() - started < TIMEOUT + MARGIN:
                sock.send(b"x-slow: 1\r\n")
                time.sleep(0.2)
    finally:
        sock.close()


def test_a_slow_but_moving_body_is_served(server: ServerProcess) -> None:
    raw = RawClient(server.url)
    hkey = raw.login("alice", "pw")
    raw.close()
    body = zstd(json.dumps({"v": 11, "cv": "test"}).encode())
    head = (
        "POST /sync/meta HTTP/1.1\r\nhost: x\r\ncontent-type: application/octet-stream\r\n"
        f'anki-sync: {{"v":11,"k":"{hkey}","c":"test","s":""}}\r\n'
        f"content-length: {len(body)}\r\n\r\n"
    ).encode()
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.sendall(head)
    pieces = [body[i : i + 4] for i in range(0, len(body), 4)]
    pause = 3 * TIMEOUT / len(pieces)  # the whole body takes three timeouts, each gap far less
    assert pause < TIMEOUT / 2
    for piece in pieces:
        time.sleep(pause)
        sock.sendall(piece)
    sock.settimeout(MARGIN)
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += sock.recv(65536)
    head_end = answer.index(b"\r\n\r\n") + 4
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    length = int(answer.split(b"content-length: ")[1].split(b"\r\n")[0])
    while len(answer) < head_end + length:
        answer += sock.recv(65536)
    sock.close()
    assert json.loads(unzstd(answer[head_end:]))["usn"] == 0


def test_connections_beyond_the_cap_get_503(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data", {"ANKISYNCD_MAX_CONNECTIONS": "5"}).start()
    try:
        held = [_open(server, HALF_LINE) for _ in range(5)]
        time.sleep(0.5)
        sock = socket.create_connection(("127.0.0.1", server.port))
        sock.sendall(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
        sock.settimeout(MARGIN)
        assert sock.recv(65536).startswith(b"HTTP/1.1 503")
        sock.close()
        for s in held:
            s.close()
    finally:
        server.stop()


def _meta_request(hkey: str) -> bytes:
    body = zstd(json.dumps({"v": 11, "cv": "test"}).encode())
    return (
        "POST /sync/meta HTTP/1.1\r\nhost: x\r\ncontent-type: application/octet-stream\r\n"
        f'anki-sync: {{"v":11,"k":"{hkey}","c":"test","s":""}}\r\n'
        f"content-length: {len(body)}\r\n\r\n"
    ).encode() + body


def _answer(sock: socket.socket) -> bytes:
    """One whole answer (head and body) from ``sock``."""
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += sock.recv(65536)
    head_end = answer.index(b"\r\n\r\n") + 4
    length = int(answer.split(b"content-length: ")[1].split(b"\r\n")[0])
    while len(answer) < head_end + length:
        answer += sock.recv(65536)
    return answer


@pytest.mark.parametrize("stall", [HALF_LINE, HEADERS_NO_BODY], ids=str)
def test_a_next_request_that_stalls_on_a_kept_alive_connection_is_closed(
    server: ServerProcess, stall: bytes
) -> None:
    # The connection's one timer was set for its first request; it must follow the later ones.
    raw = RawClient(server.url)
    hkey = raw.login("alice", "pw")
    raw.close()
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.settimeout(MARGIN)
    for _ in range(3):  # answered requests, each well before the server's timeouts
        sock.sendall(_meta_request(hkey))
        assert _answer(sock).startswith(b"HTTP/1.1 200")
        time.sleep(TIMEOUT / 4)
    sock.sendall(stall)
    sock.setblocking(False)
    closed = _wait_closed([sock], time.monotonic() + TIMEOUT + MARGIN)
    assert len(closed) == 1
    assert closed[0] > TIMEOUT / 2  # by the timer, counted from this request's first byte
    assert server.alive()

"""An answer leaves the server in one write: on loopback the client receives one TCP segment
carrying data per answer (the kernel's own count, ``tcpi_data_segs_in``), head and body
together; a lone head (``100 Continue``) still leaves at once."""

from __future__ import annotations

import json
import socket
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

import pytest

from tests.support.server import ServerProcess, serving
from tests.support.wire import unzstd, zstd

DATA_SEGS_IN = 152  # offset of tcpi_data_segs_in in Linux's struct tcp_info (since 4.6)
SIGN_IN = zstd(json.dumps({"u": "alice", "p": "pw"}).encode())
HEADER = json.dumps({"v": 11, "k": "", "c": "test,1,linux", "s": "s1"})


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with serving(tmp_path_factory.mktemp("segments") / "data", None, {"alice": "pw"}) as server:
        yield server


@contextmanager
def _connection(server: ServerProcess) -> Iterator[tuple[socket.socket, BinaryIO]]:
    """A connection and a reader of it; a read that waits 30 s fails (a head held forever)."""
    address = ("127.0.0.1", server.port)
    with socket.create_connection(address, timeout=30) as sock, sock.makefile("rb") as stream:
        yield sock, stream


def _data_segments(sock: socket.socket) -> int:
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    return int(struct.unpack_from("I", info, DATA_SEGS_IN)[0])


def _head(stream: BinaryIO) -> list[bytes]:
    lines = []
    while (line := stream.readline()) not in (b"\r\n", b""):
        lines.append(line)
    return lines


def _answer(stream: BinaryIO) -> tuple[bytes, bytes]:
    """Read one answer with a content-length: its head and its body."""
    lines = _head(stream)
    fields = dict(line.split(b":", 1) for line in lines[1:])
    return b"".join(lines), stream.read(int(fields[b"content-length"]))


def _request(method: str, path: str, body: bytes = b"", header: str = "") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "host: x", f"content-length: {len(body)}"]
    if header:
        lines.append(f"anki-sync: {header}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def test_each_answer_arrives_as_one_segment(server: ServerProcess) -> None:
    with _connection(server) as (sock, stream):
        before = _data_segments(sock)
        sock.sendall(_request("GET", "/health"))  # through the Router
        head, _ = _answer(stream)
        assert head.startswith(b"HTTP/1.1 200")
        sock.sendall(_request("POST", "/sync/hostKey", SIGN_IN, HEADER))  # straight to it
        head, body = _answer(stream)
        assert head.startswith(b"HTTP/1.1 200")
        key = json.loads(unzstd(body))["key"]
        meta = zstd(json.dumps({"v": 11, "cv": "test,1,linux"}).encode())
        signed = HEADER.replace('"k": ""', f'"k": "{key}"')
        sock.sendall(_request("POST", "/sync/meta", meta, signed))
        head, body = _answer(stream)
        assert head.startswith(b"HTTP/1.1 200") and "usn" in json.loads(unzstd(body))
        sock.sendall(_request("POST", "/sync/meta", b"not zstd", HEADER))  # an error answer
        head, _ = _answer(stream)
        assert not head.startswith(b"HTTP/1.1 200")
        assert _data_segments(sock) - before == 4


def test_a_continue_head_is_sent_before_the_body(server: ServerProcess) -> None:
    head, body = _request("POST", "/sync/hostKey", SIGN_IN, HEADER).split(b"\r\n\r\n", 1)
    with _connection(server) as (sock, stream):
        sock.sendall(head + b"\r\nexpect: 100-continue\r\n\r\n")
        assert sock.recv(65536) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(body)
        answer, _ = _answer(stream)
        assert answer.startswith(b"HTTP/1.1 200")


def test_an_answer_without_body_leaves_at_once(server: ServerProcess) -> None:
    with _connection(server) as (sock, stream):
        sock.sendall(_request("HEAD", "/health"))
        assert _head(stream)[0].startswith(b"HTTP/1.1 200")
        sock.sendall(_request("GET", "/health"))
        head, body = _answer(stream)
        assert head.startswith(b"HTTP/1.1 200") and json.loads(body)


def test_pipelined_answers_come_whole_and_in_order(server: ServerProcess) -> None:
    paths = ["/health", "/nowhere", "/health", "/nowhere", "/health"]
    with _connection(server) as (sock, stream):
        sock.sendall(b"".join(_request("GET", path) for path in paths))
        for path in paths:
            head, _ = _answer(stream)
            assert head.startswith(b"HTTP/1.1 200" if path == "/health" else b"HTTP/1.1 404")

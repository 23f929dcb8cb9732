"""The Caddy and nginx recipes of deploy/, each with a real client over HTTPS."""

from __future__ import annotations

import http.client
import http.server
import socket
import ssl
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from tests.support.clients import Device, ok
from tests.support.proxies import Proxy
from tests.support.server import ServerProcess

PROXIES = ["caddy", "nginx"]


@pytest.fixture
def proxy_factory(tmp_path: Path, certs: Path) -> Iterator[Any]:
    started: list[Proxy] = []

    def make(kind: str, upstream: int, drop: str | None = None) -> Proxy:
        proxy = Proxy(kind, tmp_path / f"{kind}-{len(started)}", upstream, certs)
        started.append(proxy)
        return proxy.start(drop)

    yield make
    for proxy in started:
        proxy.stop()


def big_setting() -> dict[str, Any]:
    """Makes the full upload well over nginx's default 1 MB limit: 4 MB of random hex digits
    in a setting compress to about 2 MB."""
    return {"op": "set_random_config", "key": "bulk", "size": 4 * 1024 * 1024}


@pytest.mark.parametrize("kind", PROXIES)
def test_recipe_carries_large_uploads_media_and_a_sub_path(
    server: ServerProcess, proxy_factory: Any, certs: Path, tmp_path: Path, kind: str
) -> None:
    server.add_user("alice", "pw")
    proxy = proxy_factory(kind, server.port)
    env = {"SSL_CERT_FILE": str(certs / "ca.pem")}
    a, b = Device(tmp_path / "a", env=env), Device(tmp_path / "b", env=env)
    a.login("alice", "pw", proxy.whole_host)
    ok(
        a.run(
            big_setting(),
            {"op": "add_notes", "count": 10, "prefix": "a"},
            {"op": "full_upload"},
            {"op": "add_media", "name": "lecture.mp3", "size": 3_000_000},
            {"op": "add_media", "name": "small.txt", "text": "hi"},
            {"op": "sync_media"},
        )
    )
    b.login("alice", "pw", proxy.sub_path)
    ok(
        b.run(
            {"op": "full_download"},
            {"op": "sync_media"},
            {"op": "add_notes", "count": 1, "prefix": "b"},
            {"op": "sync"},
        )
    )
    assert b.step("media_files") == a.step("media_files")
    assert len(a.step("media_files")) == 2
    ok(a.run({"op": "sync"}))
    assert len(a.dump()["notes"]) == 11
    assert "/sync/upload" in server.log() or "sync/upload" in server.log()


def test_nginx_without_the_body_size_line_refuses_the_full_upload(
    server: ServerProcess, proxy_factory: Any, certs: Path, tmp_path: Path
) -> None:
    """Shows the upload above is over nginx's default limit, and why the recipe raises it."""
    server.add_user("alice", "pw")
    proxy = proxy_factory("nginx", server.port, drop="client_max_body_size")
    a = Device(tmp_path / "a", env={"SSL_CERT_FILE": str(certs / "ca.pem")})
    a.login("alice", "pw", proxy.whole_host)
    result = a.run(big_setting(), {"op": "full_upload"})[1]
    assert "error" in result
    assert "413" in (proxy.folder / "access.log").read_text()


class Recorder(http.server.BaseHTTPRequestHandler):
    seen: ClassVar[list[tuple[str, dict[str, str]]]] = []

    def do_GET(self) -> None:
        Recorder.seen.append((self.path, dict(self.headers)))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.mark.parametrize("kind", PROXIES)
def test_recipe_passes_the_client_address_and_strips_the_sub_path(
    proxy_factory: Any, certs: Path, kind: str
) -> None:
    upstream = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=upstream.serve_forever, daemon=True)
    thread.start()
    try:
        Recorder.seen.clear()
        proxy = proxy_factory(kind, upstream.server_address[1])
        context = ssl.create_default_context(cafile=str(certs / "ca.pem"))
        for url in (proxy.whole_host + "health", proxy.sub_path + "health"):
            with urllib.request.urlopen(url, context=context, timeout=30) as resp:
                assert resp.status == 200
    finally:
        upstream.shutdown()
        upstream.server_close()
    assert [path for path, _ in Recorder.seen] == ["/health", "/health"]
    for _, headers in Recorder.seen:
        lowered = {k.lower(): v for k, v in headers.items()}
        assert lowered["x-forwarded-for"] == "127.0.0.1"
        assert lowered["x-real-ip"] == "127.0.0.1"


def raw_exchange(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(data)
        return sock.recv(200)


def test_headers_and_a_large_body_in_one_write_are_not_taken_for_large_headers(
    server: ServerProcess,
) -> None:
    """nginx writes a request's headers and the start of its body together."""
    body = b"\0" * 300_000
    head = f"POST /sync/hostKey HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n"
    answer = raw_exchange(server.port, head.encode() + body)
    assert answer.startswith(b"HTTP/1.1 400"), answer
    endless = b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"X-Pad: " + b"a" * 100_000
    assert raw_exchange(server.port, endless).startswith(b"HTTP/1.1 431")


@pytest.mark.parametrize(
    ("kind", "header"), [("caddy", "XRealIp"), ("nginx", "RightmostXForwardedFor")]
)
def test_client_address_reaches_the_server_log_through_the_recipe(
    tmp_path: Path, proxy_factory: Any, certs: Path, kind: str, header: str
) -> None:
    """The server trusts the proxy on 127.0.0.1; the client connects from 127.0.0.7."""
    server = ServerProcess(
        tmp_path / "data",
        env={"ANKISYNCD_IP_HEADER": header, "ANKISYNCD_TRUSTED_PROXIES": "127.0.0.1"},
    ).start()
    try:
        proxy = proxy_factory(kind, server.port)
        context = ssl.create_default_context(cafile=str(certs / "ca.pem"))
        conn = http.client.HTTPSConnection(
            "localhost", proxy.port, context=context, timeout=30, source_address=("127.0.0.7", 0)
        )
        conn.request("POST", "/sync/hostKey", body=b"not json")
        assert conn.getresponse().status == 400
        conn.close()
        deadline = time.monotonic() + 30
        while "addr=127.0.0.7" not in server.log() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "addr=127.0.0.7" in server.log()
    finally:
        server.stop()

"""A loopback HTTP proxy that holds one kind of request until the test lets it go.

Used to put a real client's sync on pause between two steps, so that another device's sync
certainly runs in between.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


class HoldingProxy:
    """Forwards every request to ``target``; the first request whose path ends with ``hold``
    waits (``held`` is set) until ``release`` is called."""

    def __init__(self, target: str, hold: str) -> None:
        self.target = target.rstrip("/")
        self.hold = hold
        self.held = threading.Event()
        self._release = threading.Event()
        self.statuses: list[tuple[str, int]] = []  # (path, status) of forwarded requests
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self._body()
                if self.path.endswith(proxy.hold) and not proxy.held.is_set():
                    proxy.held.set()
                    assert proxy._release.wait(120), "the test never released the request"
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                resp = httpx.post(
                    proxy.target + self.path, content=body, headers=headers, timeout=120
                )
                proxy.statuses.append((self.path, resp.status_code))
                self.send_response(resp.status_code)
                for key, value in resp.headers.items():
                    if key.lower() not in _HOP_BY_HOP | {"content-encoding", "date", "server"}:
                        self.send_header(key, value)
                self.send_header("content-length", str(len(resp.content)))
                self.end_headers()
                self.wfile.write(resp.content)

            def _body(self) -> bytes:
                if "chunked" not in self.headers.get("transfer-encoding", ""):
                    return self.rfile.read(int(self.headers.get("content-length", 0)))
                parts = []
                while size := int(self.rfile.readline().split(b";")[0], 16):
                    parts.append(self.rfile.read(size))
                    self.rfile.readline()
                self.rfile.readline()
                return b"".join(parts)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/"

    def release(self) -> None:
        self._release.set()

    @contextmanager
    def running(self) -> Iterator[HoldingProxy]:
        thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self.release()
            self._server.shutdown()
            self._server.server_close()
            thread.join(10)

"""W9, sustained load, and M, the servers' CPU per request method.

W9: each of N users edits one note and syncs, back to back, for T seconds; all users at once.
M: one user's small syncs go through a proxy in this process that reads the server's CPU clock
before forwarding each request and after its whole answer is back, so with one client syncing
at a time, the difference is that request's cost to the server.
"""

from __future__ import annotations

import http.client
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

from anki.sync_pb2 import SyncCollectionResponse
from harness import Client, Meter, Server, percentile

if TYPE_CHECKING:
    from bench import Bench

# A sync that ends asking for a full sync did not sync: counted as an error.
_FULL_SYNC = SyncCollectionResponse.ChangesRequired.FULL_SYNC
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


def _edit(client: Client, nids: list[int], count: int, serial: int) -> None:
    """Change the back of ``count`` notes, as a study session's small edits would."""
    notes = [client.col.get_note(nids[(serial * count + i) % len(nids)]) for i in range(count)]
    for note in notes:
        note["Back"] = f"edited {serial}"
    client.col.update_notes(notes)


def _user(bench: Bench, server: Server, user: int, label: str) -> tuple[Client, list[int]]:
    """A client whose collection (the small one) is on the server and in sync."""
    client = Client(bench.folder(f"{label}-{user}"), server, user, bench.small)
    client.full(upload=True)
    client.sync()
    return client, client.col.db.list("select id from notes order by id")


def w9_sustained(bench: Bench, server: Server, meter: Meter) -> dict[str, float]:
    users = [_user(bench, server, u, "w9") for u in range(bench.load_users)]
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    barrier = threading.Barrier(len(users) + 1)
    deadline = [0.0]

    def loop(client: Client, nids: list[int]) -> None:
        barrier.wait()
        mine: list[float] = []
        failed = 0
        serial = 0
        while time.perf_counter() < deadline[0]:
            serial += 1
            _edit(client, nids, 1, serial)
            started = time.perf_counter()
            try:
                ok = client.sync() < _FULL_SYNC
            except Exception:  # counted, and the user goes on syncing
                ok = False
            if ok:
                mine.append(time.perf_counter() - started)
            else:
                failed += 1
        with lock:
            latencies.extend(mine)
            errors[0] += failed

    threads = [threading.Thread(target=loop, args=u) for u in users]
    for t in threads:
        t.start()

    def run() -> None:
        deadline[0] = time.perf_counter() + bench.load_seconds
        barrier.wait()
        for t in threads:
            t.join()

    seconds = meter(run)
    for client, _nids in users:
        client.close()
    syncs = len(latencies)
    return {
        "syncs_per_s": syncs / seconds,
        "p50_ms": percentile(latencies, 0.5) * 1000,
        "p95_ms": percentile(latencies, 0.95) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "errors": errors[0],
        "cpu_per_sync_ms": meter.cpu / max(syncs, 1) * 1000,
    }


# --- M: server CPU per request method -----------------------------------------------------


class _Proxy(ThreadingHTTPServer):
    """Forwards to ``target`` and adds up, per path, the target's CPU and time per request."""

    daemon_threads = True

    def __init__(self, target: Server) -> None:
        super().__init__(("127.0.0.1", 0), _Forward)
        self.target = target
        self.costs: dict[str, list[float]] = {}  # path -> [requests, cpu seconds, seconds]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/"


class _Forward(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Proxy
    upstream: http.client.HTTPConnection | None = None

    def log_message(self, format: str, *args: object) -> None:
        pass

    def finish(self) -> None:
        super().finish()
        if self.upstream is not None:  # the client's connection ended: so does its upstream
            self.upstream.close()

    def do_GET(self) -> None:
        self._forward(b"")

    def do_POST(self) -> None:
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while size := int(self.rfile.readline().split(b";")[0], 16):
                body += self.rfile.read(size)
                self.rfile.readline()
            self.rfile.readline()
        else:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
        self._forward(body)

    def _forward(self, body: bytes) -> None:
        target = self.server.target
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        cpu, started = target.cpu_seconds(), time.perf_counter()
        answer = self._send(body, headers)
        data = answer.read()
        cost = [1, target.cpu_seconds() - cpu, time.perf_counter() - started]
        path = self.path.split("?")[0]
        totals = self.server.costs.setdefault(path, [0, 0.0, 0.0])
        for i, value in enumerate(cost):
            totals[i] += value
        self.send_response(answer.status)
        for key, value in answer.getheaders():
            if key.lower() not in _HOP_BY_HOP:
                self.send_header(key, value)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _send(self, body: bytes, headers: dict[str, str]) -> http.client.HTTPResponse:
        """Send the request upstream; a kept-alive connection the server has closed meanwhile
        (its idle timeout) is replaced once, as HTTP clients do: nothing was answered on it."""
        if self.upstream is not None:
            try:
                self.upstream.request(self.command, self.path, body, headers)
                return self.upstream.getresponse()
            except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
                self.upstream.close()
        self.upstream = http.client.HTTPConnection("127.0.0.1", self.server.target.port)
        self.upstream.request(self.command, self.path, body, headers)
        return self.upstream.getresponse()


def per_method(bench: Bench, server: Server, meter: Meter) -> dict[str, float]:
    """Small syncs of one user through the proxy: CPU and time per request, per method."""
    client, nids = _user(bench, server, 0, "m")
    proxy = _Proxy(server)
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    client.via(proxy.url)
    client.sync()  # the first sync through the proxy warms its connection
    proxy.costs.clear()

    def syncs() -> None:
        for serial in range(bench.method_syncs):
            _edit(client, nids, bench.method_edits, serial)
            client.sync()

    meter(syncs)
    proxy.shutdown()
    proxy.server_close()
    client.close()
    result: dict[str, float] = {}
    for path, (calls, cpu, seconds) in sorted(proxy.costs.items()):
        result[f"{path} calls"] = calls / bench.method_syncs
        result[f"{path} cpu_us"] = cpu / calls * 1e6
        result[f"{path} time_us"] = seconds / calls * 1e6
    result["per sync cpu_us"] = sum(c[1] for c in proxy.costs.values()) / bench.method_syncs * 1e6
    result["per sync time_us"] = sum(c[2] for c in proxy.costs.values()) / bench.method_syncs * 1e6
    return result

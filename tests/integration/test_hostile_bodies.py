"""Hostile bodies cost bounded memory and do not stall other users.

A real server process; its peak RSS comes from /proc (VmHWM), other users' latency from a
client timing its own requests.
"""

from __future__ import annotations

import json
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.support.server import ServerProcess, serving
from tests.support.wire import RawClient, zstd

MiB = 1 << 20


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data_root = tmp_path_factory.mktemp("hostile") / "data"
    with serving(data_root, users={"alice": "pw", "bob": "pw"}) as server:
        yield server


def _status_kib(server: ServerProcess, key: str) -> int:
    assert server.proc is not None
    for line in Path(f"/proc/{server.proc.pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise AssertionError(key)


def _skippable(size: int) -> bytes:
    return (0x184D2A50).to_bytes(4, "little") + size.to_bytes(4, "little") + bytes(size)


def _hostile_bodies() -> list[tuple[str, bytes, bool]]:
    """(method, compressed body, needs a host key)."""
    many_lists = b'{"changes":[' + b"[]," * (10 * MiB) + b"[]]}"
    emoji_string = b'{"chunk":{"done":true,"notes":[["' + b"a" * (30 * MiB) + '😀"]]}}'.encode()
    return [
        ("applyChunk", zstd(bytes(512 * MiB)), True),  # zeros: tiny on the wire
        ("applyChanges", zstd(many_lists), True),  # 20 bytes of objects per byte
        ("start", zstd(b'{"graves":{"cards":[' + b"[]," * (5 * MiB) + b"[]]}}"), True),
        ("applyChunk", zstd(emoji_string), True),  # one wide string: 4 bytes per character
        ("hostKey", _skippable(4 * MiB) * 8 + zstd(b'{"u":"alice","p":"pw"}'), False),
        ("meta", zstd(b"[" * (1 << 20)), True),  # deep nesting
        ("upload", zstd(bytes(400 * MiB)), True),  # decodes to the 300 MiB cap, onto disk
    ]


def test_four_hostile_requests_at_once_stay_within_256_mib(server: ServerProcess) -> None:
    raw = RawClient(server.url)
    hkey = raw.login("alice", "pw")
    raw.call("meta", {"v": 11, "cv": "test"})
    bodies = _hostile_bodies()
    assert server.proc is not None
    # Reset the peak (VmHWM) to the current RSS: the login's password hash had its own peak.
    Path(f"/proc/{server.proc.pid}/clear_refs").write_text("5")
    idle_kib = _status_kib(server, "VmRSS")

    def send(item: tuple[str, bytes, bool]) -> int:
        method, body, keyed = item
        with httpx.Client(base_url=server.url, timeout=120) as http:
            header = json.dumps({"v": 11, "k": hkey if keyed else "", "c": "x", "s": "s"})
            try:
                resp = http.post(f"sync/{method}", content=body, headers={"anki-sync": header})
            except httpx.TransportError:
                return 0  # refused mid-body: the connection was closed
            return resp.status_code

    with ThreadPoolExecutor(4) as pool:
        statuses = list(pool.map(send, bodies * 2))
    for (method, _, _), status in zip(bodies * 2, statuses, strict=True):
        # A full upload's refusal is in-band ("collection exceeds size limit"), with 200.
        assert status in ((200,) if method == "upload" else (0, 400, 409)), (method, status)
    grown_mib = (_status_kib(server, "VmHWM") - idle_kib) / 1024
    assert grown_mib <= 256, f"peak RSS grew by {grown_mib:.0f} MiB"
    assert raw.call("meta", {"v": 11, "cv": "test"})["cont"]
    raw.close()


def _p95_ms(run: Callable[[], object], seconds: float) -> tuple[float, int]:
    times: list[float] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.perf_counter()
        run()
        times.append((time.perf_counter() - started) * 1000)
        time.sleep(0.005)
    return statistics.quantiles(times, n=20)[-1], len(times)


def test_other_users_stay_fast_while_large_bodies_are_processed(server: ServerProcess) -> None:
    bob = RawClient(server.url)
    bob.login("bob", "pw")
    alice = RawClient(server.url)
    alice.login("alice", "pw")
    tags = [f"tag{i:07d}" for i in range(600_000)]  # ~9 MB: a valid, very large applyChanges
    big = zstd(json.dumps({"changes": {"models": [], "decks": [[], []], "tags": tags}}).encode())

    def meta_and_health() -> None:
        bob.call("meta", {"v": 11, "cv": "test"})
        assert bob.http.get("health").status_code == 200

    quiet_p95, _ = _p95_ms(meta_and_health, 3)  # for the failure message
    stop = threading.Event()
    body_ms: list[float] = []

    def load() -> None:
        while not stop.is_set():
            started = time.perf_counter()
            assert alice.post("applyChanges", big, compress=False).status_code == 409
            body_ms.append((time.perf_counter() - started) * 1000)

    loader = threading.Thread(target=load)
    loader.start()
    try:
        time.sleep(0.5)
        busy_p95, samples = _p95_ms(meta_and_health, 8)
    finally:
        stop.set()
        loader.join()
    bob.close()
    alice.close()
    assert samples > 20 and len(body_ms) >= 3
    # The machine is shared: rather than a fixed figure, bob must not wait for alice's bodies.
    # When they are handled on the event loop, his p95 is longer than one body (measured: 2.1 s
    # against 1.0 s per body); handled off it, a small fraction (0.06-0.14 s against 0.3-0.8 s
    # on a machine at load 14; docs/security.md).
    assert busy_p95 <= max(20.0, statistics.mean(body_ms) / 2), (busy_p95, quiet_p95, body_ms)

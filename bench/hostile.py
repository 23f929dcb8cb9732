"""Hostile-load figures for docs/security.md: a wrong-password flood and many users.

Usage: python -m bench.hostile [--src SRC] flood|users. ``--src`` runs the server from another
checkout's ``src`` (to compare with an older version). Prints one JSON line of figures.

flood: 40 connections send wrong passwords for 20 s while another user sends ``meta`` every
50 ms; reports logins answered per second (by status), that user's meta latency and the
server's peak RSS over its idle RSS. users: 2,000 users each do meta, start, finish and a
media request in turn; reports open descriptors afterwards and the next start-up's time.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import zstandard


def _zstd(data: bytes) -> bytes:
    out = zstandard.ZstdCompressor().compressobj()
    return out.compress(data) + out.flush()


def _header(hkey: str, skey: str = "s1") -> dict[str, str]:
    return {"anki-sync": json.dumps({"v": 11, "k": hkey, "c": "bench,1,linux", "s": skey})}


def _phc(password: str) -> str:
    salt = b"0123456789abcdef"
    raw = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, 1, 32)
    b64 = lambda b: base64.b64encode(b).decode().rstrip("=")  # noqa: E731
    return f"$pbkdf2-sha256$i=1,l=32${b64(salt)}${b64(raw)}"


class Server:
    def __init__(self, root: Path, env: dict[str, str], src: str | None) -> None:
        with __import__("socket").socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/"
        self.env = {
            **os.environ,
            "ANKISYNCD_DATA_ROOT": str(root),
            "ANKISYNCD_PORT": str(self.port),
            "ANKISYNCD_CONFIG": "",
            "ANKISYNCD_LOG_LEVEL": "warning",
            **env,
        }
        if src:
            self.env["PYTHONPATH"] = src
        self.log = root.parent / "server.log"

    def cli(self, *args: str, stdin: str = "") -> None:
        cmd = [sys.executable, "-m", "ankisyncd", *args]
        subprocess.run(cmd, env=self.env, input=stdin, text=True, check=True)

    def start(self) -> float:
        started = time.monotonic()
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "ankisyncd", "serve"], env=self.env, stdout=log, stderr=log
            )
        while True:
            try:
                if httpx.get(self.url + "health", timeout=1).status_code == 200:
                    return time.monotonic() - started
            except httpx.HTTPError:
                time.sleep(0.02)
            if self.proc.poll() is not None:
                raise RuntimeError(self.log.read_text()[-2000:])

    def rss_mib(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def fds(self) -> int:
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def flood(root: Path, src: str | None) -> dict[str, object]:
    server = Server(root, {}, src)
    server.cli("user", "add", "victim", "--password-stdin", stdin="right\n")
    server.cli("user", "add", "bob", "--password-stdin", stdin="pw\n")
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=60) as c:
            r = c.post("sync/hostKey", content=_zstd(b'{"u":"bob","p":"pw"}'), headers=_header(""))
            bob = json.loads(zstandard.ZstdDecompressor().decompressobj().decompress(r.content))
        idle = server.rss_mib()
        stop = threading.Event()
        statuses: Counter[int] = Counter()
        latencies: list[float] = []
        peak = [idle]

        def attacker() -> None:
            with httpx.Client(base_url=server.url, timeout=120) as c:
                body = _zstd(b'{"u":"victim","p":"wrong"}')
                while not stop.is_set():
                    statuses[
                        c.post("sync/hostKey", content=body, headers=_header("")).status_code
                    ] += 1

        def victim() -> None:
            with httpx.Client(base_url=server.url, timeout=120) as c:
                body = _zstd(b'{"v":11,"cv":"bench"}')
                while not stop.is_set():
                    t = time.perf_counter()
                    assert (
                        c.post("sync/meta", content=body, headers=_header(bob["key"])).status_code
                        == 200
                    )
                    latencies.append((time.perf_counter() - t) * 1000)
                    time.sleep(0.05)

        threads = [threading.Thread(target=attacker) for _ in range(40)]
        threads.append(threading.Thread(target=victim))
        for t in threads:
            t.start()
        started = time.monotonic()
        while time.monotonic() - started < 20:
            peak[0] = max(peak[0], server.rss_mib())
            time.sleep(0.2)
        stop.set()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - started
        q = statistics.quantiles(latencies, n=20)
        return {
            "logins_per_s": {str(k): round(v / elapsed, 1) for k, v in statuses.items()},
            "meta_ms_p50": round(statistics.median(latencies), 1),
            "meta_ms_p95": round(q[18], 1),
            "meta_ms_max": round(max(latencies), 1),
            "rss_idle_mib": round(idle),
            "rss_peak_over_idle_mib": round(peak[0] - idle),
        }
    finally:
        server.stop()


def users(root: Path, src: str | None, count: int = 2000) -> dict[str, object]:
    env = {"PASSWORDS_HASHED": "1"}
    for i in range(count):
        env[f"SYNC_USER{i + 1}"] = f"u{i}:{_phc('pw')}"
    server = Server(root, env, src)
    first_start = server.start()
    errors = 0
    try:
        with httpx.Client(base_url=server.url, timeout=60) as c:
            for i in range(count):
                hkey = hashlib.sha1(env[f"SYNC_USER{i + 1}"].encode()).hexdigest()
                steps = [
                    ("sync/meta", b'{"v":11,"cv":"bench"}'),
                    ("sync/start", b'{"minUsn":0,"lnewer":false,"graves":null}'),
                    ("sync/finish", b"{}"),
                    ("msync/mediaChanges", b'{"lastUsn":0}'),
                ]
                for path, body in steps:
                    if c.post(path, content=_zstd(body), headers=_header(hkey)).status_code != 200:
                        errors += 1
        fds = server.fds()
    finally:
        server.stop()
    restart = server.start()
    server.stop()
    return {
        "users": count,
        "errors": errors,
        "open_fds_after": fds,
        "first_start_s": round(first_start, 2),
        "restart_s": round(restart, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=["flood", "users"])
    parser.add_argument("--src", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "data"
        result = flood(root, args.src) if args.what == "flood" else users(root, args.src)
    print(json.dumps(result))


if __name__ == "__main__":
    main()

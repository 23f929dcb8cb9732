"""Compare HTTP servers for ankisyncd's app: requests per second and server CPU per ``meta``.

Runs the real app (a user, a host key, v11 ``meta`` requests) under each server with one
worker, loads it with ``wrk`` (Debian package) for a few seconds, and reads the server's CPU
time from /proc. hypercorn and granian are not dependencies: install them into the venv that
runs this script to include them (``pip install hypercorn granian``).

    .venv/bin/python bench/transport.py [--seconds 10] [--connections 8]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import zstandard

APP = """
import os
from ankisyncd.config import load
from ankisyncd.http.app import build_app
from ankisyncd.server import SyncServer
app = build_app(SyncServer(load({}, os.environ)))
"""

SERVE_GUARDED = """
import logging, os
from ankisyncd.config import load
from ankisyncd.http import serve
serve(load({}, os.environ))
"""


def _servers(port: int) -> dict[str, list[str]]:
    py = sys.executable
    servers = {
        "uvicorn (httptools), as before": [
            py,
            "-m",
            "uvicorn",
            "benchapp:app",
            "--port",
            str(port),
            "--http",
            "httptools",
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        "uvicorn + guard (ankisyncd serve)": [py, "-c", SERVE_GUARDED],
    }
    if importlib.util.find_spec("hypercorn"):
        servers["hypercorn (h11, read_timeout)"] = [
            py,
            "-m",
            "hypercorn",
            "benchapp:app",
            "--bind",
            f"127.0.0.1:{port}",
            "--read-timeout",
            "30",
            "--log-level",
            "warning",
        ]
    if importlib.util.find_spec("granian"):
        servers["granian (Rust, HTTP/1)"] = [
            py,
            "-m",
            "granian",
            "--interface",
            "asgi",
            "--http",
            "1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--log-level",
            "warning",
            "benchapp:app",
        ]
    return servers


def _cpu_seconds(pid: int) -> float:
    """CPU time of ``pid`` and its descendants (hypercorn and granian run workers apart)."""
    parents, ticks = {}, {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        child = int(stat.parent.name)
        parents[child], ticks[child] = int(fields[1]), int(fields[11]) + int(fields[12])
    total = 0
    for child, tick in ticks.items():
        node = child
        while node in parents and node != pid:
            node = parents[node]
        if node == pid:
            total += tick
    return total / os.sysconf("SC_CLK_TCK")


def _wait_up(url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "health", timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("server did not start")


def _login(url: str) -> str:
    body = zstandard.ZstdCompressor().compress(json.dumps({"u": "bench", "p": "pw"}).encode())
    header = json.dumps({"v": 11, "k": "", "c": "bench", "s": ""})
    req = urllib.request.Request(url + "sync/hostKey", body, {"anki-sync": header})
    with urllib.request.urlopen(req) as resp:
        return str(json.loads(zstandard.ZstdDecompressor().decompress(resp.read()))["key"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install wrk")
    root = Path(tempfile.mkdtemp(prefix="ankisyncd-transport-"))
    (root / "benchapp.py").write_text(APP)
    port = 27900
    env = {
        **os.environ,
        "ANKISYNCD_DATA_ROOT": str(root / "data"),
        "ANKISYNCD_PORT": str(port),
        "ANKISYNCD_LOG_LEVEL": "warning",
        "ANKISYNCD_CONFIG": "",
        "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]),
    }
    subprocess.run(
        [sys.executable, "-m", "ankisyncd", "user", "add", "bench", "--password-stdin"],
        input="pw\n",
        text=True,
        env=env,
        check=True,
        capture_output=True,
    )
    url = f"http://127.0.0.1:{port}/"
    meta = zstandard.ZstdCompressor().compress(b'{"v":11,"cv":"bench"}')
    (root / "meta.bin").write_bytes(meta)
    for name, command in _servers(port).items():
        proc = subprocess.Popen(command, env=env, cwd=root, stderr=subprocess.DEVNULL)
        try:
            _wait_up(url)
            header = json.dumps({"v": 11, "k": _login(url), "c": "bench", "s": ""})
            script = root / "meta.lua"
            script.write_text(
                f'local f = io.open("{root / "meta.bin"}", "rb")\n'
                'wrk.method = "POST"\nwrk.body = f:read("*all")\nf:close()\n'
                f"wrk.headers['anki-sync'] = '{header}'\n"
            )
            cpu = _cpu_seconds(proc.pid)
            out = subprocess.run(
                [
                    "wrk",
                    "-t1",
                    f"-c{args.connections}",
                    f"-d{args.seconds}s",
                    "-s",
                    str(script),
                    url + "sync/meta",
                ],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            cpu = _cpu_seconds(proc.pid) - cpu
            requests = int(out.split(" requests in ")[0].split()[-1])
            errors = "Non-2xx" in out or "Socket errors" in out
            print(
                f"{name:36} {requests / args.seconds:8.0f} req/s "
                f"{cpu / requests * 1e6:7.0f} us CPU/meta{'  (errors!)' if errors else ''}",
                flush=True,
            )
        finally:
            proc.terminate()
            proc.wait(10)
            time.sleep(0.5)
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()

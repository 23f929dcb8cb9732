"""Server CPU per small request: ``meta`` requests, one at a time on one kept-alive connection;
with ``--syncs``, per small sync: the real client edits one note and syncs, one sync at a time.

Each request reaches an idle server, as a real client's do. Variants of our server switch
pieces of the request path off (by patching them before ``serve``), so their cost shows
against the full server in the same rotation; the official server runs beside them.

    .venv/bin/python bench/request_cpu.py [--requests 3000] [--rounds 3] [--variants full,bare]
    .venv/bin/python bench/request_cpu.py --syncs --requests 300 [--callgrind]
"""

from __future__ import annotations

import argparse
import http.client
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import zstandard
from harness import CACHE, PASSWORD, Server, process_cpu_seconds

CLIENT = "anki,26.9.3 (bench),lin:bench"
PATCHES: dict[str, str | None] = {
    "full": "",
    "cli": None,  # `ankisyncd serve` as it is (for another checkout: cli@NAME)
    # uvicorn's own httptools protocol instead of our guarded subclass
    "noguard": "serving.guarded_protocol = lambda limits: 'httptools'\n",
    # no metrics and no request log event
    "noobserve": "from ankisyncd.http import direct\ndirect.observed = lambda *a: None\n",
    # glibc's adaptive mmap threshold, Python's default switch interval
    "nomemory": "serving.return_large_blocks = lambda: False\n",
    "switch5ms": "serving.SWITCH_INTERVAL = 0.005\n",
    # the page cache kept after a sync ends (no ``pragma shrink_memory``)
    # the most a flat request path could save on ``meta``: no metrics, log, activity, router,
    # Request or Response objects between uvicorn and the server (an experiment, not a product)
    "flatmeta": """
from ankisyncd.http import framing, zstd
from ankisyncd.protocol.messages import MetaRequest
_build = serving.build_app
def build_app(server, *a, **k):
    full = _build(server, *a, **k)
    async def flat(scope, receive, send):
        if scope["type"] != "http" or scope["path"] != "/sync/meta":
            return await full(scope, receive, send)
        header = framing.parse_sync_header(framing.raw_sync_header(scope["headers"]))
        message = await receive()
        req = MetaRequest.from_wire(framing._decode_whole(message["body"], 1 << 16))
        user = await server.authenticate(header.host_key, header.client_version, "")
        body = zstd.compress((await server.meta(user, req)).to_wire())
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
    return flat
serving.build_app = build_app
""",
    # SQLite reading the collection through a memory map, not pread64 into its page cache
    "mmap": "from ankisyncd.storage import sqlite as _s\n"
    "_open = _s._open\n"
    "def _mm(path):\n"
    "    con = _open(path)\n"
    "    con.execute('pragma mmap_size = 268435456')\n"
    "    return con\n"
    "_s._open = _mm\n",
    "keepcache": "from ankisyncd.sync import session\n"
    "session.SyncSession.release_memory = lambda self: None\n",
}
# The floor: uvicorn (httptools, uvloop) and an ASGI function that reads the body and answers
# a fixed zstd body, nothing else.
BARE = """
import os, uvicorn, zstandard
ANSWER = zstandard.compress(b'{"key":"k","usn":0}')
HEAD = {"type": "http.response.start", "status": 200,
        "headers": [(b"content-length", str(len(ANSWER)).encode())]}
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    more = True
    while more:
        more = (await receive()).get("more_body", False)
    await send(HEAD)
    await send({"type": "http.response.body", "body": ANSWER})
uvicorn.run(app, host="127.0.0.1", port=int(os.environ["SYNC_PORT"]), log_level="warning",
            http="httptools", loop="uvloop", lifespan="off")
"""
LAUNCH = """
import os, sys
from ankisyncd.http import app, serving
{patch}
from ankisyncd.config import load
serving.serve(load({{}}, os.environ))
"""


def _post(conn: http.client.HTTPConnection, path: str, key: str, body: bytes) -> bytes:
    header = json.dumps({"v": 11, "k": key, "c": CLIENT, "s": ""}, separators=(",", ":"))
    conn.request("POST", path, zstandard.compress(body), {"anki-sync": header})
    response = conn.getresponse()
    data = response.read()
    if response.status != 200:
        raise RuntimeError(f"{path}: {response.status} {data[:100]!r}")
    return zstandard.ZstdDecompressor().decompressobj().decompress(data)


class _SlowServer(Server):
    """A server started under valgrind: waits up to five minutes for it."""

    start_seconds = 300.0


SYSTEM_SHARE: list[float] = []


def _user_system(pid: int) -> tuple[int, int]:
    """User and system CPU clock ticks of ``pid``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]), int(fields[12])


def _callgrind(pid: int, *args: str) -> None:
    subprocess.run(["callgrind_control", *args, str(pid)], check=True, capture_output=True)


def _metas(server: Server, gap: float) -> Callable[[], None]:
    """One ``meta`` per call, on one kept-alive connection (warmed by 50 first)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port)
    login = json.dumps({"u": "user0", "p": PASSWORD}).encode()
    key = json.loads(_post(conn, "/sync/hostKey", "", login))["key"]
    meta = json.dumps({"v": 11, "cv": CLIENT}).encode()

    def one() -> None:
        _post(conn, "/sync/meta", key, meta)
        if gap:
            time.sleep(gap)  # a client's own work between requests: the server idles

    for _ in range(50):  # warm: caches, the collection's connection
        _post(conn, "/sync/meta", key, meta)
    return one


def _syncs(server: Server, folder: Path) -> Callable[[], None]:
    """One small sync per call by the real client: one note edited (warmed by 20 first)."""
    from harness import Client, build_collection
    from load import _edit

    template = build_collection(CACHE / "w6-2000.anki2", 2_000, 2_000)
    client = Client(folder / server.name, server, 0, template)
    client.full(upload=True)
    nids = client.col.db.list("select id from notes order by id")
    serial = [0]

    def one() -> None:
        serial[0] += 1
        _edit(client, nids, 1, serial[0])
        if client.sync():
            raise RuntimeError("the small sync asked for a full sync")

    for _ in range(20):
        one()
    return one


def measure(server: Server, requests: int, out: Path | None, one: Callable[[], None]) -> float:
    """Microseconds of server CPU per call of ``one``; with ``out`` (under callgrind),
    thousands of instructions per call (user space only: the kernel's work is not counted)."""
    pid = server.proc.pid  # type: ignore[union-attr]
    if out is not None:
        _callgrind(pid, "-i", "on")
        one()  # the first instrumented one costs more
        _callgrind(pid, "-z")
    before, ticks = process_cpu_seconds(pid), _user_system(pid)
    for _ in range(requests):
        one()
    after = process_cpu_seconds(pid)
    user, system = (b - a for a, b in zip(ticks, _user_system(pid), strict=True))
    if out is None:
        SYSTEM_SHARE.append(system / max(1, user + system))
        return (after - before) / requests * 1e6
    _callgrind(pid, "-d")
    time.sleep(1)
    totals = [ln for p in out.parent.glob(out.name + "*") for ln in p.read_text().splitlines()]
    events = sum(int(ln.split()[1]) for ln in totals if ln.startswith("totals:"))
    return events / requests / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--variants", default="full,official")
    parser.add_argument("--gap", type=float, default=0.0, help="seconds between requests")
    parser.add_argument("--callgrind", action="store_true", help="count instructions")
    parser.add_argument("--syncs", action="store_true", help="small syncs, not metas")
    parser.add_argument("--src", action="append", default=[], help="NAME=checkout: its src/")
    parser.add_argument(
        "--python", action="append", default=[], help="NAME=interpreter, for variant%%NAME"
    )
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="ankisyncd-request-cpu-"))
    servers: list[Server] = []
    sources = dict(item.split("=", 1) for item in args.src)
    pythons = dict(item.split("=", 1) for item in args.python)
    for name in args.variants.split(","):
        variant_name, _, py = name.partition("%")
        python = pythons[py] if py else sys.executable
        if name == "official":
            command = [sys.executable, "-m", "anki.syncserver"]
        elif name == "bare":
            command = [sys.executable, "-c", BARE]
        else:
            variant, _, base = variant_name.partition("@")
            patch = PATCHES[variant]
            if patch is None:
                code = "from ankisyncd.cli import main; main(['serve'])\n"
            else:
                code = LAUNCH.format(patch=patch)
            if base:
                code = f"import sys; sys.path.insert(0, {sources[base] + '/src'!r})\n" + code
            command = [python, "-c", code]
        if args.callgrind:
            out = root / f"callgrind.{name.replace('@', '_').replace('%', '_')}"
            command = [
                "valgrind",
                "--tool=callgrind",
                "--instr-atstart=no",
                f"--callgrind-out-file={out}.%p",
                *command,
            ]
        kind = _SlowServer if args.callgrind else Server
        servers.append(kind(name.replace("@", "_").replace("%", "_"), command, root, 1))
    results: dict[str, list[float]] = {s.name: [] for s in servers}
    system: dict[str, list[float]] = {s.name: [] for s in servers}
    for _ in range(args.rounds):
        for server in servers:
            server.start()
            out = None
            if args.callgrind:
                out = root / f"callgrind.{server.name}.{server.proc.pid}"  # type: ignore[union-attr]
            try:
                clients = root / "clients"
                one = _syncs(server, clients) if args.syncs else _metas(server, args.gap)
                results[server.name].append(measure(server, args.requests, out, one))
                system[server.name] += SYSTEM_SHARE[-1:]
            finally:
                server.stop()
            time.sleep(0.5)
    if not args.callgrind:
        shutil.rmtree(root, ignore_errors=True)
    for name, values in results.items():
        shown = " ".join(f"{v:6.0f}" for v in values)
        unit = "k instructions" if args.callgrind else "us CPU"
        unit += "/sync" if args.syncs else "/meta"
        share = f"  system {statistics.median(system[name]):.0%}" if system[name] else ""
        print(f"{name:16} median {statistics.median(values):6.0f} {unit}  ({shown}){share}")


if __name__ == "__main__":
    main()

"""What every benchmark shares: the two server processes, the real client, measuring.

The servers' CPU is read from the kernel's per-process CPU clock (nanoseconds, all threads,
ended ones included), so one request's cost can be measured, not only a run's.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from anki.collection import Collection
from anki.sync_pb2 import SyncAuth

PASSWORD = "bench-password"
CACHE = Path(os.environ.get("ANKISYNCD_BENCH_CACHE", Path.home() / ".cache/ankisyncd/bench"))


# --- servers ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """One server process; both get the same SYNC_* environment (ours reads it too)."""

    start_seconds = 30.0  # how long start() waits for the server to answer

    def __init__(self, name: str, command: list[str], root: Path, users: int) -> None:
        self.name, self.command = name, command
        self.base = root / name
        self.port = free_port()
        self.env = {
            **os.environ,
            "SYNC_BASE": str(self.base),
            "SYNC_HOST": "127.0.0.1",
            "SYNC_PORT": str(self.port),
            "MAX_SYNC_PAYLOAD_MEGS": "300",
            "ANKISYNCD_LOG_LEVEL": "warning",
            "RUST_LOG": "warn",
        }
        for i in range(users):  # user0, user1, ...
            self.env[f"SYNC_USER{i + 1}"] = f"user{i}:{PASSWORD}"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            self.command, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + self.start_seconds
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url + "health", timeout=5):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not start")

    def stop(self) -> None:
        if self.proc:
            self.proc.terminate()
            self.proc.wait(20)

    def cpu_seconds(self) -> float:
        """User + system CPU of the whole process so far."""
        assert self.proc
        return process_cpu_seconds(self.proc.pid)

    def reset_peak_rss(self) -> None:
        assert self.proc
        Path(f"/proc/{self.proc.pid}/clear_refs").write_text("5")

    def peak_rss_mib(self) -> float:
        assert self.proc
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return 0.0


def process_cpu_seconds(pid: int) -> float:
    """The CPU of process ``pid`` and of the children it has waited for (ours copies a
    collection for a download with ``cp``). Linux: the process's own clock (clockid
    ``~pid << 3 | CPUCLOCK_SCHED``) plus its children's clock ticks (10 ms resolution)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    children = (int(fields[13]) + int(fields[14])) / tick
    try:
        own = time.clock_gettime((~pid << 3) | 2)
    except OSError:  # no per-process clock: its clock ticks
        own = (int(fields[11]) + int(fields[12])) / tick
    return own + children


# --- clients ------------------------------------------------------------------------------


class Client:
    """One device of one user: a collection file and the server's host key."""

    def __init__(self, folder: Path, server: Server, user: int, template: Path | None = None):
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "collection.anki2"
        if template is not None:
            shutil.copyfile(template, path)
        self.col = Collection(str(path))
        self.auth = self.col.sync_login(f"user{user}", PASSWORD, server.url)

    def via(self, url: str) -> None:
        """Send this client's requests to ``url`` (a proxy) with the same host key."""
        self.auth = SyncAuth(hkey=self.auth.hkey, endpoint=url)

    def sync(self) -> int:
        return int(self.col.sync_collection(self.auth, False).required)

    def full(self, upload: bool) -> None:
        self.col.full_upload_or_download(auth=self.auth, server_usn=None, upload=upload)

    def sync_media(self) -> None:
        self.col.sync_media(self.auth)
        while self.col.media_sync_status().active:
            time.sleep(0.02)

    def close(self) -> None:
        self.col.close()


def build_collection(path: Path, notes: int, revlog: int) -> Path:
    """A collection of ``notes`` two-card notes and ``revlog`` review rows (cached)."""
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".building-{os.getpid()}")  # another run may be building it too
    tmp.unlink(missing_ok=True)
    col = Collection(str(tmp))
    notetype = col.models.by_name("Basic (and reversed card)")
    from anki.collection import AddNoteRequest

    batch = []
    for i in range(notes):
        note = col.new_note(notetype)
        note["Front"] = f"question {i} <b>with some html</b> and text to make it realistic"
        note["Back"] = f"answer {i} — ünïcödé 日本語 " + "lorem ipsum " * 4
        note.tags = [f"tag{i % 50}"]
        batch.append(AddNoteRequest(note=note, deck_id=1))
        if len(batch) == 2000:
            col.add_notes(batch)
            batch = []
    if batch:
        col.add_notes(batch)
    cids = col.db.list("select id from cards order by id")
    rows = [
        (1_700_000_000_000 + i, cids[i % len(cids)], -1, 3, 10, 1, 2500, 8000, 1)
        for i in range(revlog)
    ]
    col.db.executemany("insert into revlog values (?,?,?,?,?,?,?,?,?)", rows)
    col.close()
    tmp.rename(path)
    return path


# --- measuring ----------------------------------------------------------------------------


@dataclass
class Result:
    seconds: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    rss: list[float] = field(default_factory=list)
    extra: dict[str, list[float]] = field(default_factory=dict)


class Meter:
    """Times the measured parts of one run, and the server's CPU and peak RSS during them."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.seconds = self.cpu = 0.0
        self.rss = 0.0

    def __call__(self, fn: Callable[[], object]) -> float:
        self.server.reset_peak_rss()
        cpu = self.server.cpu_seconds()
        start = time.perf_counter()
        fn()
        elapsed = time.perf_counter() - start
        self.cpu += self.server.cpu_seconds() - cpu
        self.rss = max(self.rss, self.server.peak_rss_mib())
        self.seconds += elapsed
        return elapsed


def measure(
    server: Server, result: Result, work: Callable[[Meter], dict[str, float] | None]
) -> None:
    meter = Meter(server)
    extra = work(meter) or {}
    result.seconds.append(extra.pop("seconds", meter.seconds))
    result.cpu.append(meter.cpu)
    result.rss.append(meter.rss)
    for key, value in extra.items():
        result.extra.setdefault(key, []).append(value)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

"""Benchmark ankisyncd against the official sync server, both driven by the real anki client.

Runs each workload on both servers, alternating (ours, official, ours, official, ...), and
prints per workload the median time of each, the ratio ours/official, the server's CPU
seconds and its peak RSS. It prints numbers; it does not pass or fail.

    .venv/bin/python bench/bench.py [--reps 3] [--scale 1.0] [--only W1,W4]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from anki.collection import Collection

USERS = 9  # user0..user8
PASSWORD = "bench-password"
CACHE = Path(os.environ.get("ANKISYNCD_BENCH_CACHE", Path.home() / ".cache/ankisyncd/bench"))


# --- servers ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """One server process; both get the same SYNC_* environment (ours reads it too)."""

    def __init__(self, name: str, command: list[str], root: Path) -> None:
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
        for i in range(USERS):
            self.env[f"SYNC_USER{i + 1}"] = f"user{i}:{PASSWORD}"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            self.command, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        for _ in range(400):
            try:
                with urllib.request.urlopen(self.url + "health", timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not start")

    def stop(self) -> None:
        if self.proc:
            self.proc.terminate()
            self.proc.wait(20)

    def cpu_seconds(self) -> float:
        assert self.proc
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def reset_peak_rss(self) -> None:
        assert self.proc
        Path(f"/proc/{self.proc.pid}/clear_refs").write_text("5")

    def peak_rss_mib(self) -> float:
        assert self.proc
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return 0.0


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
    tmp = path.with_suffix(".building")
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


# --- workloads ----------------------------------------------------------------------------


class Bench:
    def __init__(self, root: Path, scale: float) -> None:
        self.root = root
        self.scale = scale
        n = lambda x: max(1, int(x * scale))  # noqa: E731
        self.big = build_collection(CACHE / f"w1-{n(50_000)}.anki2", n(50_000), n(100_000))
        self.medium = build_collection(CACHE / f"w7-{n(20_000)}.anki2", n(20_000), n(20_000))
        self.small = build_collection(CACHE / f"w6-{n(2_000)}.anki2", n(2_000), n(2_000))
        self.n = n
        self.runs = 0

    def folder(self, label: str) -> Path:
        self.runs += 1
        return self.root / "clients" / f"{self.runs:04d}-{label}"

    def w1_full_upload(self, server: Server, meter: Meter) -> None:
        client = Client(self.folder("w1"), server, 0, self.big)
        try:
            meter(lambda: client.full(upload=True))
        finally:
            client.close()

    def w2_full_download(self, server: Server, meter: Meter) -> None:
        uploader = Client(self.folder("w2-up"), server, 0, self.big)
        uploader.full(upload=True)
        uploader.close()
        client = Client(self.folder("w2"), server, 0)
        try:
            meter(lambda: client.full(upload=False))
        finally:
            client.close()

    def w3_incremental(self, server: Server, meter: Meter) -> dict[str, float]:
        a = Client(self.folder("w3a"), server, 1, self.big)
        a.full(upload=True)
        b = Client(self.folder("w3b"), server, 1)
        b.full(upload=False)
        a.sync()
        count = self.n(5_000)
        notes = [
            a.col.get_note(nid)
            for nid in a.col.db.list("select id from notes order by id limit ?", count)
        ]
        for note in notes:
            note["Front"] += " (edited)"
        a.col.update_notes(notes)
        cards = [
            a.col.get_card(cid)
            for cid in a.col.db.list("select id from cards order by id desc limit ?", count)
        ]
        for card in cards:
            card.due += 3
        a.col.update_cards(cards)
        push = meter(a.sync)
        pull = meter(b.sync)
        a.close()
        b.close()
        return {"push": push, "pull": pull}

    def w4_noop(self, server: Server, meter: Meter) -> dict[str, float]:
        client = Client(self.folder("w4"), server, 2, self.small)
        client.full(upload=True)
        client.sync()
        times = [meter(client.sync) for _ in range(50)]
        client.close()
        return {"seconds": statistics.median(times)}

    def w5_media(self, server: Server, meter: Meter) -> dict[str, float]:
        a = Client(self.folder("w5a"), server, 3)
        b = Client(self.folder("w5b"), server, 3)
        run = self.runs
        for i in range(self.n(2_000)):
            a.col.media.write_data(f"m{run}-{i:05d}.bin", os.urandom(20_000))
        up = meter(a.sync_media)
        down = meter(b.sync_media)
        a.close()
        b.close()
        return {"up": up, "down": down}

    def w6_parallel_incremental(self, server: Server, meter: Meter) -> None:
        clients = []
        for user in range(1, 9):
            c = Client(self.folder(f"w6-{user}"), server, user, self.small)
            c.full(upload=True)
            c.sync()
            notes = [
                c.col.get_note(nid)
                for nid in c.col.db.list("select id from notes limit ?", self.n(500))
            ]
            for note in notes:
                note["Back"] += " (changed)"
            c.col.update_notes(notes)
            clients.append(c)
        meter(lambda: _all_at_once([c.sync for c in clients]))
        for c in clients:
            c.close()

    def w7_parallel_uploads(self, server: Server, meter: Meter) -> None:
        clients = [Client(self.folder(f"w7-{u}"), server, u, self.medium) for u in range(1, 9)]
        meter(lambda: _all_at_once([lambda c=c: c.full(upload=True) for c in clients]))
        for c in clients:
            c.close()

    def w8_head_of_line(self, server: Server, meter: Meter) -> dict[str, float]:
        uploader = Client(self.folder("w8-up"), server, 0, self.big)
        others = []
        for user in range(1, 8):
            c = Client(self.folder(f"w8-{user}"), server, user, self.small)
            c.full(upload=True)
            c.sync()
            others.append(c)
        start = time.perf_counter()
        baseline = _poll_latencies(others, lambda: start + 3.0)
        upload_end: list[float] = []

        def upload() -> None:
            try:
                uploader.full(upload=True)
            finally:
                upload_end.append(time.perf_counter())

        during: list[float] = []

        def contended() -> None:
            thread = threading.Thread(target=upload)
            thread.start()
            during.extend(_poll_latencies(others, lambda: upload_end[0] if upload_end else None))
            thread.join()

        meter(contended)
        for c in [uploader, *others]:
            c.close()
        return {
            "p50_ms": percentile(during, 0.5) * 1000,
            "p95_ms": percentile(during, 0.95) * 1000,
            "max_ms": max(during) * 1000,
            "idle_p50_ms": percentile(baseline, 0.5) * 1000,
            "idle_p95_ms": percentile(baseline, 0.95) * 1000,
            "idle_max_ms": max(baseline) * 1000,
        }


def _all_at_once(jobs: list[Callable[[], object]]) -> None:
    barrier = threading.Barrier(len(jobs))
    errors: list[BaseException] = []

    def run(job: Callable[[], object]) -> None:
        barrier.wait()
        try:
            job()
        except BaseException as exc:  # reported after all threads end
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def _poll_latencies(clients: list[Client], end: Callable[[], float | None]) -> list[float]:
    """Each client runs a no-op sync every 20 ms until `end()` (once known) is passed.

    Latency counts from when a sync was due, and every sync due before the end is run, so a
    stall shows in the syncs that queued up behind it, not only in the one it held.
    """
    latencies: list[float] = []
    lock = threading.Lock()

    def loop(client: Client) -> None:
        due = time.perf_counter()
        while True:
            stop_at = end()
            if stop_at is not None and due > stop_at:
                return
            now = time.perf_counter()
            if now < due:
                time.sleep(due - now)
            client.sync()
            with lock:
                latencies.append(time.perf_counter() - due)
            due += 0.020

    threads = [threading.Thread(target=loop, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies


WORKLOADS = {
    "W1": ("full upload, 50k notes / 100k cards / 100k revlog", Bench.w1_full_upload),
    "W2": ("full download of it", Bench.w2_full_download),
    "W3": ("incremental: push 5k notes + 5k cards, pull on 2nd client", Bench.w3_incremental),
    "W4": ("no-op sync (median latency)", Bench.w4_noop),
    "W5": ("media: 2,000 x 20 KB up, then down", Bench.w5_media),
    "W6": ("8 users' incremental syncs at once", Bench.w6_parallel_incremental),
    "W7": ("8 users' full uploads (20k notes) at once", Bench.w7_parallel_uploads),
    "W8": ("no-op syncs of 7 users while 1 uploads W1", Bench.w8_head_of_line),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply all sizes")
    parser.add_argument("--only", default="", help="comma-separated workloads, e.g. W1,W4")
    args = parser.parse_args()
    chosen = [w for w in WORKLOADS if not args.only or w in args.only.split(",")]
    with tempfile.TemporaryDirectory(prefix="ankisyncd-bench-") as tmp:
        root = Path(tmp)
        bench = Bench(root, args.scale)
        ours = Server("ankisyncd", [sys.executable, "-m", "ankisyncd", "serve"], root)
        official = Server("official", [sys.executable, "-m", "anki.syncserver"], root)
        results: dict[tuple[str, str], Result] = {}
        for server in (ours, official):
            server.start()
        try:
            for workload in chosen:
                _title, fn = WORKLOADS[workload]
                for _rep in range(args.reps):
                    for server in (ours, official):
                        result = results.setdefault((workload, server.name), Result())
                        measure(server, result, lambda m, s=server, f=fn: f(bench, s, m))
                print_row(workload, results)
        finally:
            for server in (ours, official):
                server.stop()


def print_row(workload: str, results: dict[tuple[str, str], Result]) -> None:
    ours, theirs = results[(workload, "ankisyncd")], results[(workload, "official")]
    a, b = statistics.median(ours.seconds), statistics.median(theirs.seconds)
    cpu_a, cpu_b = statistics.median(ours.cpu), statistics.median(theirs.cpu)
    print(f"{workload} {WORKLOADS[workload][0]}")
    print(f"   time   ours {a * 1000:9.1f}ms official {b * 1000:9.1f}ms ratio {a / b:5.2f}")
    print(
        f"   cpu    ours {cpu_a:8.3f}s  official {cpu_b:8.3f}s  ratio "
        f"{cpu_a / cpu_b if cpu_b else float('nan'):5.2f}"
    )
    print(f"   rss    ours {max(ours.rss):7.1f}MiB official {max(theirs.rss):7.1f}MiB")
    for key in ours.extra:
        x, y = statistics.median(ours.extra[key]), statistics.median(theirs.extra[key])
        print(f"   {key:<12} ours {x:9.3f}  official {y:9.3f}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()

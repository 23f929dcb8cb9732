"""Benchmark ankisyncd against the official sync server, both driven by the real anki client.

Runs each workload on both servers, alternating (ours, official, ours, official, ...), and
prints per workload the median time of each, the ratio ours/official, the server's CPU
seconds and its peak RSS. It prints numbers; it does not pass or fail.

    .venv/bin/python bench/bench.py [--reps 3] [--scale 1.0] [--only W1,W4]
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

# harness.py and load.py sit beside this file, which also runs imported as bench.bench.
sys.path.insert(0, str(Path(__file__).parent))

from harness import (
    CACHE,
    Client,
    Meter,
    Result,
    Server,
    build_collection,
    measure,
    percentile,
)
from load import per_method, w9_sustained

# --- workloads ----------------------------------------------------------------------------


class Bench:
    def __init__(self, root: Path, args: argparse.Namespace) -> None:
        self.root = root
        self.scale = args.scale
        self.load_users, self.load_seconds = args.users, args.seconds
        self.method_syncs, self.method_edits = args.method_syncs, args.edits
        self.runs = 0

    # Built on first use (and cached on disk), so a run of a few workloads builds only theirs.
    @functools.cached_property
    def big(self) -> Path:
        n = self.n
        return build_collection(CACHE / f"w1-{n(50_000)}.anki2", n(50_000), n(100_000))

    @functools.cached_property
    def medium(self) -> Path:
        n = self.n
        return build_collection(CACHE / f"w7-{n(20_000)}.anki2", n(20_000), n(20_000))

    @functools.cached_property
    def small(self) -> Path:
        n = self.n
        return build_collection(CACHE / f"w6-{n(2_000)}.anki2", n(2_000), n(2_000))

    def n(self, size: int) -> int:
        """``size`` times the scale (at least 1)."""
        return max(1, int(size * self.scale))

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
    "W9": ("N users' small syncs back to back for T seconds", w9_sustained),
    "M": ("server CPU per request method, small syncs of one user", per_method),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply all sizes")
    parser.add_argument("--only", default="", help="comma-separated workloads, e.g. W1,W4")
    parser.add_argument("--users", type=int, default=20, help="W9: users syncing at once")
    parser.add_argument("--seconds", type=float, default=60, help="W9: how long they sync")
    parser.add_argument("--method-syncs", type=int, default=200, help="M: syncs measured")
    parser.add_argument("--edits", type=int, default=1, help="M: notes edited per sync")
    parser.add_argument(
        "--baseline", type=Path, help="also run ankisyncd from this checkout (before/after)"
    )
    parser.add_argument(
        "--python",
        type=Path,
        help="also run ankisyncd (this checkout) under this interpreter, e.g. a venv's python",
    )
    args = parser.parse_args()
    chosen = [w for w in WORKLOADS if not args.only or w in args.only.split(",")]
    with tempfile.TemporaryDirectory(prefix="ankisyncd-bench-") as tmp:
        root = Path(tmp)
        bench = Bench(root, args)
        users = max(9, args.users)
        ours = Server("ankisyncd", [sys.executable, "-m", "ankisyncd", "serve"], root, users)
        official = Server("official", [sys.executable, "-m", "anki.syncserver"], root, users)
        servers = [ours, official]
        if args.baseline:
            baseline = Server("baseline", ours.command, root, users)
            baseline.env["PYTHONPATH"] = str(args.baseline.resolve() / "src")
            servers.append(baseline)
        if args.python:
            other = Server("python", [str(args.python), *ours.command[1:]], root, users)
            other.env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1] / "src")
            servers.append(other)
        results: dict[tuple[str, str], Result] = {}
        for server in servers:
            server.start()
        try:
            for workload in chosen:
                _title, fn = WORKLOADS[workload]
                for _rep in range(args.reps):
                    for server in servers:
                        result = results.setdefault((workload, server.name), Result())
                        measure(server, result, lambda m, s=server, f=fn: f(bench, s, m))
                for server in servers:
                    if server is not official:
                        show = print_methods if workload == "M" else print_row
                        show(workload, results, server.name)
        finally:
            for server in servers:
                server.stop()


def print_row(workload: str, results: dict[tuple[str, str], Result], name: str) -> None:
    ours, theirs = print_totals(workload, results, name)
    for key in ours.extra:
        x, y = statistics.median(ours.extra[key]), statistics.median(theirs.extra[key])
        print(f"   {key:<15} ours {x:9.3f}  official {y:9.3f}  ratio {_ratio(x, y):5.2f}")
    sys.stdout.flush()


def print_totals(
    workload: str, results: dict[tuple[str, str], Result], name: str
) -> tuple[Result, Result]:
    """The title, then time, CPU and peak RSS of server ``name`` ("ours") and the official
    server; returns their results."""
    ours, theirs = results[(workload, name)], results[(workload, "official")]
    a, b = statistics.median(ours.seconds), statistics.median(theirs.seconds)
    cpu_a, cpu_b = statistics.median(ours.cpu), statistics.median(theirs.cpu)
    print(f"{workload} {WORKLOADS[workload][0]}" + ("" if name == "ankisyncd" else f" [{name}]"))
    print(f"   time   ours {a * 1000:9.1f}ms official {b * 1000:9.1f}ms ratio {a / b:5.2f}")
    print(
        f"   cpu    ours {cpu_a:8.3f}s  official {cpu_b:8.3f}s  ratio "
        f"{cpu_a / cpu_b if cpu_b else float('nan'):5.2f}"
    )
    print(f"   rss    ours {max(ours.rss):7.1f}MiB official {max(theirs.rss):7.1f}MiB")
    return ours, theirs


def print_methods(workload: str, results: dict[tuple[str, str], Result], name: str) -> None:
    """M's table: per request path, calls per sync and the server's CPU and time per call."""
    ours, theirs = print_totals(workload, results, name)
    print(
        f"   {'request':<22} {'calls':>5} {'cpu us ours':>12} {'official':>9} {'ratio':>6}"
        f" {'time us ours':>13} {'official':>9}"
    )
    paths = sorted({k.rsplit(" ", 1)[0] for k in [*ours.extra, *theirs.extra]})
    for path in paths:

        def value(result: Result, what: str, path: str = path) -> float:
            values = result.extra.get(f"{path} {what}")
            return statistics.median(values) if values else float("nan")

        cpu_a, cpu_b = value(ours, "cpu_us"), value(theirs, "cpu_us")
        calls = value(ours, "calls") if f"{path} calls" in ours.extra else value(theirs, "calls")
        calls_text = "" if path == "per sync" else f"{calls:5.1f}"
        print(
            f"   {path:<22} {calls_text:>5} {cpu_a:12.0f} {cpu_b:9.0f} {_ratio(cpu_a, cpu_b):6.2f}"
            f" {value(ours, 'time_us'):13.0f} {value(theirs, 'time_us'):9.0f}"
        )
    sys.stdout.flush()


def _ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


if __name__ == "__main__":
    main()

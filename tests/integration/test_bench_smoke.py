"""A tiny run of the benchmark: it starts both servers, runs every workload and prints a row
of numbers for each (what the numbers are is not checked here: it is a benchmark)."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import uvicorn

from bench.bench import WORKLOADS
from bench.load import _Proxy

ROOT = Path(__file__).resolve().parents[2]


def _bench(tmp_path: Path, *options: str, timeout: float) -> list[str]:
    """The lines a tiny run of ``bench/bench.py`` prints (its collections cached in
    ``tmp_path``); the run must succeed."""
    env = {**os.environ, "ANKISYNCD_BENCH_CACHE": str(tmp_path / "cache")}
    run = subprocess.run(
        [sys.executable, "bench/bench.py", "--scale", "0.002", "--reps", "1", *options],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return run.stdout.splitlines()


def test_the_benchmark_runs_every_workload_on_both_servers(tmp_path: Path) -> None:
    options = ("--users", "2", "--seconds", "1", "--method-syncs", "3")
    lines = _bench(tmp_path, *options, timeout=600)
    for workload in WORKLOADS:
        header = next(i for i, line in enumerate(lines) if line.startswith(workload + " "))
        time_row = lines[header + 1].split()
        assert time_row[0] == "time" and "ratio" in time_row
        assert float(time_row[time_row.index("ratio") + 1]) > 0
    assert any(line.split()[0] == "p95_ms" for line in lines)


def test_the_benchmark_runs_this_checkout_under_another_interpreter_too(tmp_path: Path) -> None:
    lines = _bench(tmp_path, "--only", "W4", "--python", sys.executable, timeout=300)
    titles = [line for line in lines if line.startswith("W4 ")]
    assert len(titles) == 2 and titles[1].endswith("[python]"), lines
    rows = [line.split() for line in lines if line.split()[:1] == ["time"]]
    assert len(rows) == 2 and all(float(r[r.index("ratio") + 1]) > 0 for r in rows)


def test_the_method_proxy_replaces_a_connection_the_server_closed_while_idle() -> None:
    """M's proxy keeps one upstream connection per client connection; a server that closes it
    after its keep-alive timeout must not stop the run (it did: BrokenPipeError)."""

    async def app(scope: dict[str, Any], receive: object, send: Any) -> None:
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(app, port=port, timeout_keep_alive=1, log_level="error")
    upstream = uvicorn.Server(config)
    threading.Thread(target=upstream.run, daemon=True).start()
    while not upstream.started:
        time.sleep(0.01)
    proxy = _Proxy(SimpleNamespace(port=port, cpu_seconds=lambda: 0.0))
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    client = http.client.HTTPConnection("127.0.0.1", proxy.server_address[1], timeout=10)
    try:
        answers = []
        for _ in range(2):
            client.request("POST", "/sync/meta", b"{}")
            response = client.getresponse()
            answers.append((response.status, response.read()))
            time.sleep(1.5)  # past the upstream's keep-alive timeout: it closes its end
        assert answers == [(200, b"ok"), (200, b"ok")]
        assert proxy.costs["/sync/meta"][0] == 2
    finally:
        client.close()
        proxy.shutdown()
        proxy.server_close()
        upstream.should_exit = True

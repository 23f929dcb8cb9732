"""A tiny run of the benchmark: it starts both servers, runs every workload and prints a row
of numbers for each (what the numbers are is not checked here: it is a benchmark)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bench.bench import WORKLOADS

ROOT = Path(__file__).resolve().parents[2]


def test_the_benchmark_runs_every_workload_on_both_servers(tmp_path: Path) -> None:
    env = {**os.environ, "ANKISYNCD_BENCH_CACHE": str(tmp_path / "cache")}
    run = subprocess.run(
        [
            *(sys.executable, "bench/bench.py", "--scale", "0.002", "--reps", "1"),
            *("--users", "2", "--seconds", "1", "--method-syncs", "3"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    lines = run.stdout.splitlines()
    for workload in WORKLOADS:
        header = next(i for i, line in enumerate(lines) if line.startswith(workload + " "))
        time_row = lines[header + 1].split()
        assert time_row[0] == "time" and "ratio" in time_row
        assert float(time_row[time_row.index("ratio") + 1]) > 0
    assert any(line.split()[0] == "p95_ms" for line in lines)

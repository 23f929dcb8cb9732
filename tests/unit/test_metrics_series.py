"""/metrics from plain counts (observe.series) reads as it did from prometheus_client's
Counter and Histogram: the same events give the same exposition, ``_created`` included."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client import metrics as client_metrics
from prometheus_client.parser import text_string_to_metric_families

from ankisyncd.observe.events import OUTCOMES, Moved
from ankisyncd.observe.exposition import StateCollector
from ankisyncd.observe.metrics import DURATION_BUCKETS, Metrics


class _State:
    def active_sessions(self) -> int:
        return 2

    def open_users(self) -> int:
        return 5

    def room_waits(self) -> dict[str, int]:
        return {"admitted": 7, "refused": 1}

    def user_count(self) -> int:
        return 3

    def data_sizes(self) -> Iterable[tuple[str, int | None, int | None]]:
        return [("alice", 4096, None)]

    def free_bytes(self) -> int | None:
        return 10**9


class _Reference:
    """The metrics as they were kept before: prometheus_client's own Counter and Histogram."""

    def __init__(self, metrics: Metrics) -> None:
        self.registry = r = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "ankisyncd_requests",
            "HTTP requests by endpoint, HTTP method and status",
            ["endpoint", "method", "status"],
            registry=r,
        )
        self.duration = Histogram(
            "ankisyncd_request_duration_seconds",
            "time from a request's arrival to the last byte of its answer",
            ["endpoint"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.received = Counter(
            "ankisyncd_received_bytes", "request body bytes received", ["endpoint"], registry=r
        )
        self.sent = Counter(
            "ankisyncd_sent_bytes", "response body bytes sent", ["endpoint"], registry=r
        )
        self.syncs = Counter(
            "ankisyncd_syncs", "collection syncs by how they ended", ["outcome"], registry=r
        )
        self.rows = Counter(
            "ankisyncd_sync_rows",
            "rows moved by normal syncs, by kind and direction (up: client to server)",
            ["kind", "direction"],
            registry=r,
        )
        self.media_files = Counter(
            "ankisyncd_media_files", "media files moved, by direction", ["direction"], registry=r
        )
        self.logins = Counter("ankisyncd_logins", "logins by result", ["result"], registry=r)
        for outcome in OUTCOMES:
            self.syncs.labels(outcome)
        for result in ("ok", "failed"):
            self.logins.labels(result)
        for direction in ("up", "down"):
            self.media_files.labels(direction)
        r.register(StateCollector(metrics))  # the gauges read the same state in both

    def request(
        self, endpoint: str, method: str, status: int, seconds: float, received: int, sent: int
    ) -> None:
        self.requests.labels(endpoint, method, str(status)).inc()
        self.duration.labels(endpoint).observe(seconds)
        if received:
            self.received.labels(endpoint).inc(received)
        if sent:
            self.sent.labels(endpoint).inc(sent)

    def login(self, ok: bool) -> None:
        self.logins.labels("ok" if ok else "failed").inc()

    def sync_ended(self, user: str, outcome: str, up: Moved, down: Moved) -> None:
        self.syncs.labels(outcome).inc()
        for direction, moved in (("up", up), ("down", down)):
            for kind, count in moved.counts().items():
                if count:
                    self.rows.labels(kind, direction).inc(count)

    def full_sync(self, user: str, direction: str, size: int) -> None:
        self.syncs.labels(f"full_{direction}").inc()

    def media_moved(self, user: str, up: int, down: int) -> None:
        self.media_files.labels("up").inc(up)
        self.media_files.labels("down").inc(down)


_ENDPOINTS = ["sync/meta", "sync/applyChunk", "msync/begin", "health", "metrics", "other"]
# Every bound, either side of it, and past the last one.
_SECONDS = [0.0, 1e-6, 200.0] + [b + d for b in DURATION_BUCKETS for d in (-1e-9, 0, 1e-9)]
_request = st.tuples(
    st.just("request"),
    st.sampled_from(_ENDPOINTS),
    st.sampled_from(["GET", "POST"]),
    st.sampled_from([200, 400, 403, 500]),
    st.one_of(st.sampled_from(_SECONDS), st.floats(0, 300)),
    st.sampled_from([0, 0, 1, 17, 65536]),
    st.sampled_from([0, 0, 2, 1_000_003]),
)
_moved = st.builds(Moved, *[st.sampled_from([0, 0, 1, 500])] * 5)
_events = st.lists(
    st.one_of(
        _request,
        st.tuples(st.just("login"), st.booleans()),
        st.tuples(st.just("sync_ended"), st.just("u"), st.sampled_from(OUTCOMES), _moved, _moved),
        st.tuples(
            st.just("full_sync"), st.just("u"), st.sampled_from(["upload", "download"]), st.just(9)
        ),
        st.tuples(st.just("media_moved"), st.just("u"), st.integers(0, 9), st.integers(0, 9)),
    ),
    max_size=40,
)


def _feed(target: Any, events: list[tuple[Any, ...]]) -> None:
    for name, *args in events:
        getattr(target, name)(*args)


def _both(events: list[tuple[Any, ...]]) -> tuple[str, str, float, float]:
    """(reference text, new text, time before, time after) for the same events."""
    before = time.time()
    metrics = Metrics(_State())
    reference = _Reference(metrics)
    _feed(reference, events)
    _feed(metrics, events)
    after = time.time()
    return (
        generate_latest(reference.registry).decode(),
        metrics.exposition().decode(),
        before,
        after,
    )


_CREATED = re.compile(r"^(\w+_created(?:\{[^}]*\})?) (\S+)$", re.MULTILINE)


def _created(text: str) -> Iterator[float]:
    return (float(m[2]) for m in _CREATED.finditer(text))


def _families(text: str) -> list[tuple[str, str, str, list[tuple[str, dict[str, str], float]]]]:
    return [
        (f.name, f.documentation, f.type, [(s.name, s.labels, s.value) for s in f.samples])
        for f in text_string_to_metric_families(text)
    ]


@settings(max_examples=150, deadline=None)
@given(_events)
def test_the_same_events_give_the_same_exposition(events: list[tuple[Any, ...]]) -> None:
    old, new, before, after = _both(events)
    # The moments a series was first used differ by microseconds; everything else is equal.
    assert _CREATED.sub(r"\1 T", new) == _CREATED.sub(r"\1 T", old)
    assert len(list(_created(new))) == len(list(_created(old))) > 0
    assert all(before <= stamp <= after for stamp in _created(new))
    assert _families(_CREATED.sub(r"\1 0", new)) == _families(_CREATED.sub(r"\1 0", old))


def test_label_sets_appear_at_first_use_in_that_order() -> None:
    events: list[tuple[Any, ...]] = [
        ("request", "sync/meta", "POST", 200, 0.003, 0, 0),  # no bytes: no byte series yet
        ("request", "msync/begin", "GET", 403, 0.5, 0, 12),
        ("request", "sync/meta", "POST", 400, 121.0, 7, 0),
        ("sync_ended", "u", "normal", Moved(cards=2), Moved(notes=1)),
    ]
    old, new, _, _ = _both(events)
    assert _CREATED.sub("", new) == _CREATED.sub("", old)
    lines = new.splitlines()
    assert [line for line in lines if line.startswith("ankisyncd_requests_total")] == [
        'ankisyncd_requests_total{endpoint="sync/meta",method="POST",status="200"} 1.0',
        'ankisyncd_requests_total{endpoint="msync/begin",method="GET",status="403"} 1.0',
        'ankisyncd_requests_total{endpoint="sync/meta",method="POST",status="400"} 1.0',
    ]
    assert [line for line in lines if line.startswith("ankisyncd_received_bytes_total")] == [
        'ankisyncd_received_bytes_total{endpoint="sync/meta"} 7.0'
    ]
    assert 'ankisyncd_request_duration_seconds_bucket{endpoint="sync/meta",le="120.0"} 1.0' in lines
    assert 'ankisyncd_request_duration_seconds_bucket{endpoint="sync/meta",le="+Inf"} 2.0' in lines
    assert 'ankisyncd_request_duration_seconds_sum{endpoint="sync/meta"} 121.003' in lines
    assert [line for line in lines if line.startswith("ankisyncd_sync_rows_total")] == [
        'ankisyncd_sync_rows_total{direction="up",kind="cards"} 2.0',
        'ankisyncd_sync_rows_total{direction="down",kind="notes"} 1.0',
    ]


@pytest.fixture
def no_created() -> Iterator[None]:
    client_metrics.disable_created_metrics()  # type: ignore[no-untyped-call]
    try:
        yield
    finally:
        client_metrics.enable_created_metrics()  # type: ignore[no-untyped-call]


@pytest.mark.usefixtures("no_created")
def test_created_series_follow_the_library_switch() -> None:
    events: list[tuple[Any, ...]] = [("request", "sync/meta", "POST", 200, 0.003, 5, 6)]
    old, new, _, _ = _both(events)
    assert "_created" not in new
    assert new == old


def test_prometheus_client_is_imported_at_the_first_scrape(tmp_path: Path) -> None:
    """A server whose /metrics nobody reads does not load it (~1.6 MiB resident)."""
    code = """
import os, sys
from ankisyncd.config import load
from ankisyncd.http.app import build_app
from ankisyncd.server import SyncServer
server = SyncServer(load({}, os.environ))
server.startup()
build_app(server)
print("prometheus_client" in sys.modules)
server.metrics.count_users()
text = server.metrics.exposition().decode()
print("prometheus_client" in sys.modules, "ankisyncd_users 1.0" in text)
"""
    env = {**os.environ, "SYNC_BASE": str(tmp_path), "SYNC_USER1": "u:p"}
    env["ANKISYNCD_LOG_LEVEL"] = "warning"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["False", "True", "True"]

"""Prometheus metrics, in a registry of their own (several servers can share a process)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ankisyncd.observe.events import OUTCOMES, LogEvents, Moved

# Seconds; a meta takes milliseconds, a full sync of a large collection tens of seconds.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class ServerState(Protocol):
    """What the server already knows, read at each scrape (nothing is walked or opened)."""

    def active_sessions(self) -> int: ...

    def user_count(self) -> int:
        """Reads the auth database: called from a worker thread (``Metrics.count_users``)."""
        ...

    def data_sizes(self) -> Iterable[tuple[str, int | None, int | None]]:
        """(user, collection bytes, media bytes) of the users seen since start; None: unknown."""
        ...

    def free_bytes(self) -> int | None:
        """Free bytes on the file system of the data root; None if it cannot be read."""
        ...


class Metrics(LogEvents):
    """Counts requests and sync events; ``exposition`` renders them for ``/metrics``."""

    def __init__(self, state: ServerState) -> None:
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
        self._outcomes = {outcome: self.syncs.labels(outcome) for outcome in OUTCOMES}
        for result in ("ok", "failed"):
            self.logins.labels(result)
        for direction in ("up", "down"):
            self.media_files.labels(direction)
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self._byte_children: dict[tuple[Counter, str], Counter] = {}
        self.collector = _StateCollector(state)
        r.register(self.collector)

    def request(
        self, endpoint: str, method: str, status: int, seconds: float, received: int, sent: int
    ) -> None:
        # A label lookup takes a lock and builds a key each time: the children are kept.
        children = self._children.get((endpoint, method, status))
        if children is None:
            children = self._children[endpoint, method, status] = (
                self.requests.labels(endpoint, method, str(status)),
                self.duration.labels(endpoint),
            )
        children[0].inc()
        children[1].observe(seconds)
        if received:
            self._bytes(self.received, endpoint).inc(received)
        if sent:
            self._bytes(self.sent, endpoint).inc(sent)

    def _bytes(self, counter: Counter, endpoint: str) -> Counter:
        """``counter``'s child for ``endpoint``, made (and shown) at its first bytes."""
        child = self._byte_children.get((counter, endpoint))
        if child is None:
            child = self._byte_children[counter, endpoint] = counter.labels(endpoint)
        return child

    def login(self, ok: bool) -> None:
        self.logins.labels("ok" if ok else "failed").inc()

    def sync_ended(self, user: str, outcome: str, up: Moved, down: Moved) -> None:
        (self._outcomes.get(outcome) or self.syncs.labels(outcome)).inc()
        for direction, moved in (("up", up), ("down", down)):
            for kind, count in moved.counts().items():
                if count:
                    self.rows.labels(kind, direction).inc(count)
        super().sync_ended(user, outcome, up, down)

    def full_sync(self, user: str, direction: str, size: int) -> None:
        self.syncs.labels(f"full_{direction}").inc()
        super().full_sync(user, direction, size)

    def media_moved(self, user: str, up: int, down: int) -> None:
        self.media_files.labels("up").inc(up)
        self.media_files.labels("down").inc(down)
        super().media_moved(user, up, down)

    def count_users(self) -> None:
        """Read the number of users for the next exposition (blocking: run it in a thread)."""
        self.collector.users = self.collector.state.user_count()

    def exposition(self) -> bytes:
        """The text format; only reads memory, so it may run on the event loop."""
        return generate_latest(self.registry)


class _StateCollector(Collector):
    def __init__(self, state: ServerState) -> None:
        self.state = state
        self.users = 0

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "ankisyncd_active_sync_sessions",
            "normal syncs begun and not yet finished or aborted",
            value=self.state.active_sessions(),
        )
        yield GaugeMetricFamily("ankisyncd_users", "users who can log in", value=self.users)
        collection = GaugeMetricFamily(
            "ankisyncd_user_collection_bytes",
            "size of each user's collection file, as last seen (users seen since start)",
            labels=["user"],
        )
        media = GaugeMetricFamily(
            "ankisyncd_user_media_bytes",
            "size of each user's media files per media.db, as last seen",
            labels=["user"],
        )
        for user, col_bytes, media_bytes in self.state.data_sizes():
            if col_bytes is not None:
                collection.add_metric([user], col_bytes)
            if media_bytes is not None:
                media.add_metric([user], media_bytes)
        yield collection
        yield media
        free = self.state.free_bytes()
        if free is not None:
            yield GaugeMetricFamily(
                "ankisyncd_data_root_free_bytes",
                "free bytes on the file system of the data root (low_space_megs warns)",
                value=free,
            )

    def describe(self) -> Iterator[Metric]:
        return iter(())

"""Prometheus metrics: counted here as plain numbers, shown by ``observe/exposition.py``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol

from ankisyncd.observe.events import OUTCOMES, LogEvents, Moved
from ankisyncd.observe.series import Buckets, Cell, CounterSeries, HistogramSeries

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

# Seconds; a meta takes milliseconds, a full sync of a large collection tens of seconds.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class ServerState(Protocol):
    """What the server already knows, read at each scrape (nothing is walked or opened)."""

    def active_sessions(self) -> int: ...

    def open_users(self) -> int:
        """Users whose collection is kept open between requests."""
        ...

    def room_waits(self) -> dict[str, int]:
        """Newcomers who found every kept user in a sync, by outcome: admitted, refused."""
        ...

    def user_count(self) -> int:
        """Reads the auth database: called from a worker thread (``Metrics.count_users``)."""
        ...

    def data_sizes(self) -> Iterable[tuple[str, int | None, int | None]]:
        """(user, collection bytes, media bytes) of the users seen since start; None: unknown."""
        ...

    def free_bytes(self) -> int | None:
        """Free bytes on the file system of the data root; None if it cannot be read."""
        ...


class _Route:
    """The series one (endpoint, method, status) updates, looked up once per request."""

    __slots__ = ("duration", "received", "requests", "sent")

    def __init__(self, requests: Cell, duration: Buckets) -> None:
        self.requests, self.duration = requests, duration
        self.received: Cell | None = None  # shown from the endpoint's first bytes on
        self.sent: Cell | None = None


class Metrics(LogEvents):
    """Counts requests and sync events; ``exposition`` renders them for ``/metrics``.

    Every method but ``count_users`` runs on the event loop: the counts take no lock
    (``observe.series``)."""

    def __init__(self, state: ServerState) -> None:
        self.state = state
        self.users = 0  # read by ``count_users`` before each exposition
        self._registry: CollectorRegistry | None = None  # made at the first exposition
        self.requests = CounterSeries(
            "ankisyncd_requests",
            "HTTP requests by endpoint, HTTP method and status",
            ["endpoint", "method", "status"],
        )
        self.duration = HistogramSeries(
            "ankisyncd_request_duration_seconds",
            "time from a request's arrival to the last byte of its answer",
            ["endpoint"],
            DURATION_BUCKETS,
        )
        self.received = CounterSeries(
            "ankisyncd_received_bytes", "request body bytes received", ["endpoint"]
        )
        self.sent = CounterSeries("ankisyncd_sent_bytes", "response body bytes sent", ["endpoint"])
        self.syncs = CounterSeries(
            "ankisyncd_syncs", "collection syncs by how they ended", ["outcome"]
        )
        self.rows = CounterSeries(
            "ankisyncd_sync_rows",
            "rows moved by normal syncs, by kind and direction (up: client to server)",
            ["kind", "direction"],
        )
        self.media_files = CounterSeries(
            "ankisyncd_media_files", "media files moved, by direction", ["direction"]
        )
        self.logins = CounterSeries("ankisyncd_logins", "logins by result", ["result"])
        # Shown from the start, with 0.
        self._outcomes = {outcome: self.syncs.cell(outcome) for outcome in OUTCOMES}
        self._login_ok, self._login_failed = self.logins.cell("ok"), self.logins.cell("failed")
        self._media_up, self._media_down = (
            self.media_files.cell("up"),
            self.media_files.cell("down"),
        )
        self._routes: dict[tuple[str, str, int], _Route] = {}
        # In the order in which the scrape lists them.
        self.series: tuple[CounterSeries | HistogramSeries, ...] = (
            *(self.requests, self.duration, self.received, self.sent),
            *(self.syncs, self.rows, self.media_files, self.logins),
        )

    def request(
        self, endpoint: str, method: str, status: int, seconds: float, received: int, sent: int
    ) -> None:
        route = self._routes.get((endpoint, method, status))
        if route is None:
            route = self._routes[endpoint, method, status] = _Route(
                self.requests.cell(endpoint, method, str(status)),
                self.duration.buckets(endpoint),
            )
        route.requests.value += 1
        route.duration.observe(seconds)
        if received:
            if route.received is None:
                route.received = self.received.cell(endpoint)
            route.received.value += received
        if sent:
            if route.sent is None:
                route.sent = self.sent.cell(endpoint)
            route.sent.value += sent

    def login(self, ok: bool) -> None:
        (self._login_ok if ok else self._login_failed).value += 1

    def sync_ended(self, user: str, outcome: str, up: Moved, down: Moved) -> None:
        (self._outcomes.get(outcome) or self.syncs.cell(outcome)).value += 1
        for direction, moved in (("up", up), ("down", down)):
            for kind, count in moved.counts().items():
                if count:
                    self.rows.cell(kind, direction).value += count
        super().sync_ended(user, outcome, up, down)

    def full_sync(self, user: str, direction: str, size: int) -> None:
        self.syncs.cell(f"full_{direction}").value += 1
        super().full_sync(user, direction, size)

    def media_moved(self, user: str, up: int, down: int) -> None:
        self._media_up.value += up
        self._media_down.value += down
        super().media_moved(user, up, down)

    def count_users(self) -> None:
        """Read the number of users for the next exposition (blocking: run it in a thread,
        which also loads prometheus_client the first time)."""
        self.users = self.state.user_count()
        self._shown()

    def exposition(self) -> bytes:
        """The text format; only reads memory, so it runs on the event loop with the counts."""
        from ankisyncd.observe.exposition import render

        return render(self._shown())

    def _shown(self) -> CollectorRegistry:
        """The registry showing these metrics, made at the first scrape: a server whose
        metrics nobody reads never imports prometheus_client (~1.6 MiB)."""
        if self._registry is None:
            from ankisyncd.observe.exposition import registry_of

            self._registry = registry_of(self)
        return self._registry

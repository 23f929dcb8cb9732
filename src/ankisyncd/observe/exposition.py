"""The counts of ``Metrics`` as Prometheus families, built at each scrape of ``/metrics``.

prometheus_client (~1.6 MiB resident with what it imports, an HTTP server among it) is
imported by this module alone, which ``Metrics.exposition`` imports at the first scrape: a
server whose metrics nobody reads never loads it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, cast

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client import metrics as client_metrics
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from ankisyncd.observe.series import CounterSeries, HistogramSeries

if TYPE_CHECKING:
    from ankisyncd.observe.metrics import Metrics


def _with_created() -> bool:
    """Whether ``_created`` samples are shown: prometheus_client's own switch
    (``PROMETHEUS_DISABLE_CREATED_SERIES``, ``disable_created_metrics()``), read at each scrape
    as its classes do."""
    return bool(getattr(client_metrics, "_use_created", True))


def _empty(series: CounterSeries | HistogramSeries) -> Metric:
    """The series' family without samples: its name, help and label names."""
    kind = CounterMetricFamily if isinstance(series, CounterSeries) else HistogramMetricFamily
    return kind(series.name, series.documentation, labels=series.labelnames)


class CounterCollector(Collector):
    """A ``CounterSeries`` as a counter family."""

    def __init__(self, counter: CounterSeries) -> None:
        self.counter = counter

    def collect(self) -> Iterator[Metric]:
        family, created = cast(CounterMetricFamily, _empty(self.counter)), _with_created()
        for labels, cell in self.counter.cells.items():
            family.add_metric(labels, cell.value, cell.created if created else None)
        yield family

    def describe(self) -> Iterator[Metric]:
        """The names, for the registry's duplicate check (without reading any value)."""
        yield _empty(self.counter)


class HistogramCollector(Collector):
    """A ``HistogramSeries`` as a histogram family."""

    def __init__(self, histogram: HistogramSeries) -> None:
        self.histogram = histogram
        # The library's own formatting: ``le`` values as Histogram writes them ("1.0", "+Inf").
        self._le: list[str] = [floatToGoString(b) for b in histogram.bounds]  # type: ignore[no-untyped-call]

    def collect(self) -> Iterator[Metric]:
        h, created = self.histogram, _with_created()
        family = cast(HistogramMetricFamily, _empty(h))
        for labels, series in h.series.items():
            cumulative, total = [], 0.0
            for le, count in zip(self._le, series.counts, strict=True):
                total += count
                cumulative.append((le, total))
            family.add_metric(labels, cumulative, series.sum)
            if created:
                named = dict(zip(h.labelnames, labels, strict=True))
                family.add_sample(f"{h.name}_created", named, series.created)
        yield family

    def describe(self) -> Iterator[Metric]:
        yield _empty(self.histogram)


class StateCollector(Collector):
    """Gauges of what the server already knows (``ServerState``), read at each scrape."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        state = self.metrics.state
        yield GaugeMetricFamily(
            "ankisyncd_active_sync_sessions",
            "normal syncs begun and not yet finished or aborted",
            value=state.active_sessions(),
        )
        yield GaugeMetricFamily("ankisyncd_users", "users who can log in", value=self.metrics.users)
        yield GaugeMetricFamily(
            "ankisyncd_open_users",
            "users whose collection is kept open between requests (at most max_open_users)",
            value=state.open_users(),
        )
        waits = CounterMetricFamily(
            "ankisyncd_room_waits",
            "new users who found every kept user in a sync, by whether room came in time",
            labels=["outcome"],
        )
        for outcome, count in state.room_waits().items():
            waits.add_metric([outcome], count)
        yield waits
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
        for user, col_bytes, media_bytes in state.data_sizes():
            if col_bytes is not None:
                collection.add_metric([user], col_bytes)
            if media_bytes is not None:
                media.add_metric([user], media_bytes)
        yield collection
        yield media
        free = state.free_bytes()
        if free is not None:
            yield GaugeMetricFamily(
                "ankisyncd_data_root_free_bytes",
                "free bytes on the file system of the data root (low_space_megs warns)",
                value=free,
            )

    def describe(self) -> Iterator[Metric]:
        return iter(())


def registry_of(metrics: Metrics) -> CollectorRegistry:
    """A registry of its own (several servers can share a process) showing ``metrics``."""
    registry = CollectorRegistry(auto_describe=True)
    for series in metrics.series:
        if isinstance(series, CounterSeries):
            registry.register(CounterCollector(series))
        else:
            registry.register(HistogramCollector(series))
    registry.register(StateCollector(metrics))
    return registry


def render(registry: CollectorRegistry) -> bytes:
    """The text format."""
    return generate_latest(registry)

"""Counters and histograms kept as plain numbers, turned into Prometheus families at each scrape.

prometheus_client's ``Counter`` and ``Histogram`` take a lock and go through a value object on
every increment: ~60 of them per small sync. Every update here runs on the event loop (the
middleware and the server's async methods), never in a worker thread, so plain ints and floats
need no lock. ``collect`` yields what those classes would: the same names, help, label names,
label sets in the order of their first use, bucket bounds, ``_sum``, ``_count`` and ``_created``
(``tests/unit/test_metrics_series.py`` compares the two expositions).
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Iterator, Sequence

from prometheus_client import metrics as client_metrics
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import INF, floatToGoString


def _with_created() -> bool:
    """Whether ``_created`` samples are shown: prometheus_client's own switch
    (``PROMETHEUS_DISABLE_CREATED_SERIES``, ``disable_created_metrics()``), read at each scrape
    as its classes do."""
    return bool(getattr(client_metrics, "_use_created", True))


class Cell:
    """One counter series: its value and when it was first used (``_created``)."""

    __slots__ = ("created", "value")

    def __init__(self) -> None:
        self.value = 0
        self.created = time.time()


class CounterSeries(Collector):
    """A labelled counter; a label set is shown from its first ``cell`` call on."""

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str]) -> None:
        self.name, self.documentation, self.labelnames = name, documentation, list(labelnames)
        self.cells: dict[tuple[str, ...], Cell] = {}

    def cell(self, *labels: str) -> Cell:
        """The series of ``labels`` (made, and shown with 0, if new): keep it for hot paths."""
        cell = self.cells.get(labels)
        if cell is None:
            cell = self.cells[labels] = Cell()
        return cell

    def collect(self) -> Iterator[Metric]:
        created = _with_created()
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for labels, cell in self.cells.items():
            family.add_metric(labels, cell.value, cell.created if created else None)
        yield family

    def describe(self) -> Iterator[Metric]:
        """The names, for the registry's duplicate check (without reading any value)."""
        yield CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)


class Buckets:
    """One histogram series: the count in each bucket (not cumulative), the sum, ``_created``."""

    __slots__ = ("bounds", "counts", "created", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * len(bounds)
        self.sum = 0.0
        self.created = time.time()

    def observe(self, value: float) -> None:
        # The first bucket whose upper bound is >= value, as Histogram.observe finds it.
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value


class HistogramSeries(Collector):
    """A labelled histogram with fixed upper bounds (``+Inf`` added, as Histogram does)."""

    def __init__(
        self, name: str, documentation: str, labelnames: Sequence[str], buckets: Sequence[float]
    ) -> None:
        self.name, self.documentation, self.labelnames = name, documentation, list(labelnames)
        bounds = [float(b) for b in buckets]
        if bounds != sorted(bounds) or not bounds:
            raise ValueError(f"{name}: buckets must be given in increasing order")
        if bounds[-1] != INF:
            bounds.append(INF)
        self.bounds = tuple(bounds)
        # The library's own formatting: ``le`` values as Histogram writes them ("1.0", "+Inf").
        self._le: list[str] = [floatToGoString(b) for b in bounds]  # type: ignore[no-untyped-call]
        self.series: dict[tuple[str, ...], Buckets] = {}

    def buckets(self, *labels: str) -> Buckets:
        """The series of ``labels`` (made, and shown empty, if new): keep it for hot paths."""
        series = self.series.get(labels)
        if series is None:
            series = self.series[labels] = Buckets(self.bounds)
        return series

    def collect(self) -> Iterator[Metric]:
        created = _with_created()
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for labels, series in self.series.items():
            cumulative, total = [], 0.0
            for le, count in zip(self._le, series.counts, strict=True):
                total += count
                cumulative.append((le, total))
            family.add_metric(labels, cumulative, series.sum)
            if created:
                named = dict(zip(self.labelnames, labels, strict=True))
                family.add_sample(f"{self.name}_created", named, series.created)
        yield family

    def describe(self) -> Iterator[Metric]:
        yield HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)

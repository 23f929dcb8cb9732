"""Counters and histograms kept as plain numbers, turned into Prometheus families only when
``/metrics`` is read (``observe/exposition.py``).

prometheus_client's ``Counter`` and ``Histogram`` take a lock and go through a value object on
every increment: ~60 of them per small sync. Every update here runs on the event loop (the
request front and the server's async methods), never in a worker thread, so plain ints and
floats need no lock. The exposition shows what those classes would: the same names, help,
label names, label sets in the order of their first use, bucket bounds, ``_sum``, ``_count``
and ``_created`` (``tests/unit/test_metrics_series.py`` compares the two).
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Sequence

INF = float("inf")


class Cell:
    """One counter series: its value and when it was first used (``_created``)."""

    __slots__ = ("created", "value")

    def __init__(self) -> None:
        self.value = 0
        self.created = time.time()


class CounterSeries:
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


class HistogramSeries:
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
        self.series: dict[tuple[str, ...], Buckets] = {}

    def buckets(self, *labels: str) -> Buckets:
        """The series of ``labels`` (made, and shown empty, if new): keep it for hot paths."""
        series = self.series.get(labels)
        if series is None:
            series = self.series[labels] = Buckets(self.bounds)
        return series

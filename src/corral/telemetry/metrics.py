"""Invocation counters, and an in-memory history of every metric (the last hour, per second).

``InvocationMetrics.record`` is on the invoke path: a dictionary lookup and a few integer
additions, no lock (the event loop is the only writer). Everything else (gauges of
environments, instances and providers) is read when asked, by ``api.metrics``.

``MetricHistory`` keeps, per series, one point a second for an hour in a ring buffer; the
sampler that feeds it turns counters into per-second rates.
"""

from __future__ import annotations

import bisect
import collections
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

__all__ = [
    "DURATION_BUCKETS_S",
    "InvocationMetrics",
    "InvocationStats",
    "MetricHistory",
    "Point",
    "SeriesKey",
    "sparkline",
]

# Upper bounds of the duration histogram, in seconds (Lambda's timeouts reach 900 s).
DURATION_BUCKETS_S = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                      30.0, 60.0, 300.0, 900.0)  # fmt: skip


@dataclass
class InvocationStats:
    """Counters of one function version since the server started."""

    invocations: int = 0
    errors: int = 0
    duration_sum_s: float = 0.0
    # Invocations that waited for a slot (``corral:queue-timeout-ms``): waiting now, in all,
    # and the seconds they waited.
    queued_now: int = 0
    queued: int = 0
    queue_wait_sum_s: float = 0.0
    # Per bucket of ``DURATION_BUCKETS_S`` (not cumulative), plus one for +Inf.
    buckets: list[int] = field(default_factory=lambda: [0] * (len(DURATION_BUCKETS_S) + 1))

    def cumulative_buckets(self) -> list[tuple[str, int]]:
        """``(le, count)`` pairs as Prometheus wants them, ``+Inf`` last."""
        total = 0
        out: list[tuple[str, int]] = []
        for bound, count in zip((*DURATION_BUCKETS_S, math.inf), self.buckets, strict=True):
            total += count
            out.append(("+Inf" if bound == math.inf else repr(bound), total))
        return out


class InvocationMetrics:
    """Invocations, errors and durations per ``(function, version)``."""

    def __init__(self) -> None:
        self._stats: dict[tuple[str, str], InvocationStats] = {}

    def record(self, function: str, version: str, duration_s: float, error: bool) -> None:
        key = (function, version)
        stats = self._stats.get(key)
        if stats is None:
            stats = self._stats[key] = InvocationStats()
        stats.invocations += 1
        if error:
            stats.errors += 1
        stats.duration_sum_s += duration_s
        stats.buckets[bisect.bisect_left(DURATION_BUCKETS_S, duration_s)] += 1

    def queued(self, function: str, version: str, delta: int, waited_s: float = 0.0) -> None:
        """An invocation starts waiting for a slot (+1), or stops after ``waited_s`` (-1)."""
        key = (function, version)
        stats = self._stats.get(key)
        if stats is None:
            stats = self._stats[key] = InvocationStats()
        stats.queued_now += delta
        if delta > 0:
            stats.queued += delta
        else:
            stats.queue_wait_sum_s += waited_s

    def snapshot(self) -> dict[tuple[str, str], InvocationStats]:
        return dict(self._stats)

    def forget(self, function: str) -> None:
        """Drop a deleted function's counters."""
        for key in [k for k in self._stats if k[0] == function]:
            del self._stats[key]


# A series: metric name and sorted label pairs.
SeriesKey = tuple[str, tuple[tuple[str, str], ...]]


@dataclass(frozen=True)
class Point:
    timestamp_s: float
    value: float


class MetricHistory:
    """The last ``seconds`` points of every series."""

    def __init__(self, seconds: int = 3600) -> None:
        self._seconds = seconds
        self._series: dict[SeriesKey, collections.deque[Point]] = {}

    def add(self, timestamp_s: float, values: Mapping[SeriesKey, float]) -> None:
        for key, value in values.items():
            points = self._series.get(key)
            if points is None:
                points = self._series[key] = collections.deque(maxlen=self._seconds)
            points.append(Point(timestamp_s, value))
        cutoff = timestamp_s - self._seconds
        for key in [k for k, p in self._series.items() if p and p[-1].timestamp_s < cutoff]:
            del self._series[key]  # a series nobody has fed for the whole window

    def latest(self, labels: Mapping[str, str]) -> dict[SeriesKey, Point]:
        """The last point of every series whose labels include ``labels``."""
        wanted = set(labels.items())
        return {
            key: points[-1]
            for key, points in self._series.items()
            if points and wanted <= set(key[1])
        }

    def select(self, labels: Mapping[str, str], since_s: float) -> dict[SeriesKey, list[Point]]:
        """Series whose labels include ``labels``, points from ``since_s`` on."""
        wanted = set(labels.items())
        return {
            key: [p for p in points if p.timestamp_s >= since_s]
            for key, points in self._series.items()
            if wanted <= set(key[1])
        }


_BARS = "▁▂▃▄▅▆▇█"


def sparkline(values: Iterable[float], width: int = 40) -> str:
    """A one-line chart of ``values`` (their last ``width``, scaled to their own range)."""
    data = list(values)[-width:]
    if not data:
        return ""
    low, high = min(data), max(data)
    if high == low:
        return (_BARS[0] if high == 0 else _BARS[3]) * len(data)
    span = high - low
    return "".join(_BARS[min(7, int((v - low) / span * 7.999))] for v in data)

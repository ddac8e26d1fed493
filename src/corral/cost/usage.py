"""What a function really used, from its logs: pure, no I/O.

Every invocation ends with a report record (``platform.report`` JSON for Managed Instances,
a ``REPORT`` line for classic functions) carrying its duration; its end is the record's
timestamp, so its start is that minus the duration. From those: invocations, durations,
requests per hour of the day, and the peak concurrency (the most invocations running at
one moment). Instances come from the capacity provider's system log: ``Launched`` to
``Terminated``, clipped to the window (a provider whose ``SystemLogLevel`` is ``WARN`` logs
neither, and its instance-hours are unknown).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

__all__ = [
    "Invocation",
    "Usage",
    "instance_hours",
    "invocation_of",
    "measure",
]

_TEXT_REPORT = re.compile(r"^REPORT RequestId: \S+\tDuration: ([0-9.]+) ms")


@dataclass(frozen=True)
class Invocation:
    end_ms: int
    duration_ms: float

    @property
    def start_ms(self) -> float:
        return self.end_ms - self.duration_ms


def invocation_of(timestamp_ms: int, message: str) -> Invocation | None:
    """The invocation a report record describes; ``None`` for any other record."""
    match = _TEXT_REPORT.match(message)
    if match is not None:
        return Invocation(timestamp_ms, float(match.group(1)))
    if '"platform.report"' not in message:
        return None
    try:
        record = json.loads(message)
        duration = float(record["record"]["metrics"]["durationMs"])
    except (ValueError, KeyError, TypeError):
        return None
    return Invocation(timestamp_ms, duration)


@dataclass(frozen=True)
class Usage:
    """A function's load over a window of time."""

    since_ms: int
    until_ms: int
    invocations: int
    total_duration_ms: float
    peak_concurrency: int
    # Mean rate per hour of the day (UTC) over the window; a window shorter than a day has
    # one mean rate for every hour.
    hourly_rps: tuple[float, ...]
    instance_hours: dict[str, float] = field(default_factory=dict)  # by instance type

    @property
    def hours(self) -> float:
        return (self.until_ms - self.since_ms) / 3_600_000

    @property
    def mean_duration_ms(self) -> float:
        return self.total_duration_ms / self.invocations if self.invocations else 0.0


def measure(
    invocations: Sequence[Invocation],
    since_ms: int,
    until_ms: int,
    instances: dict[str, float] | None = None,
) -> Usage:
    """The usage of these invocations over ``[since_ms, until_ms]``."""
    span_ms = max(1, until_ms - since_ms)
    per_hour = [0] * 24
    seconds_per_hour = [0.0] * 24
    for hour_start in range(since_ms - since_ms % 3_600_000, until_ms, 3_600_000):
        begin, end = max(hour_start, since_ms), min(hour_start + 3_600_000, until_ms)
        seconds_per_hour[(hour_start // 3_600_000) % 24] += max(0, end - begin) / 1000
    for invocation in invocations:
        per_hour[(invocation.end_ms // 3_600_000) % 24] += 1
    if span_ms < 24 * 3_600_000:  # less than a day: its mean rate stands for every hour
        hourly: tuple[float, ...] = (len(invocations) / (span_ms / 1000),) * 24
    else:
        hourly = tuple(
            count / seconds if seconds else 0.0
            for count, seconds in zip(per_hour, seconds_per_hour, strict=True)
        )
    return Usage(
        since_ms=since_ms,
        until_ms=since_ms + span_ms,
        invocations=len(invocations),
        total_duration_ms=sum(i.duration_ms for i in invocations),
        peak_concurrency=_peak(invocations),
        hourly_rps=hourly,
        instance_hours=dict(instances or {}),
    )


def _peak(invocations: Iterable[Invocation]) -> int:
    edges: list[tuple[float, int]] = []
    for invocation in invocations:
        edges.append((invocation.start_ms, 1))
        edges.append((invocation.end_ms, -1))
    edges.sort()  # at the same moment an end (-1) comes before a start (+1)
    running = peak = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    return peak


def instance_hours(
    events: Iterable[tuple[int, dict[str, object]]], since_ms: int, until_ms: int
) -> dict[str, float]:
    """Hours each instance type ran within the window, from system-log records
    ``(timestamp_ms, record)`` in AWS's shape (``metadata.event``, ``.instanceId``,
    ``.instanceTypes``): from ``Launched`` (EC2 bills running instances) to ``Terminated``;
    an instance not yet terminated runs to the end of the window."""
    started: dict[str, tuple[int, str]] = {}
    spans: list[tuple[int, int, str]] = []
    for timestamp_ms, record in sorted(events, key=lambda e: e[0]):
        metadata = record.get("metadata")
        if not isinstance(metadata, dict):
            continue
        event = str(metadata.get("event", ""))
        instance = str(metadata.get("instanceId", ""))
        kinds = metadata.get("instanceTypes") or ["unknown"]
        kind = str(kinds[0]) if isinstance(kinds, list) and kinds else "unknown"
        if event == "Launched" and instance not in started:
            started[instance] = (timestamp_ms, kind)
        elif event == "Terminated" and instance in started:
            begin, kind = started.pop(instance)
            spans.append((begin, timestamp_ms, kind))
    spans.extend((begin, until_ms, kind) for begin, kind in started.values())
    hours: dict[str, float] = {}
    for begin, end, kind in spans:
        overlap = min(end, until_ms) - max(begin, since_ms)
        if overlap > 0:
            hours[kind] = hours.get(kind, 0.0) + overlap / 3_600_000
    return hours

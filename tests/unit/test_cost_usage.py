"""Measured usage from report records and system-log events (pure)."""

from __future__ import annotations

import pytest

from corral.cost.chart import svg
from corral.cost.usage import Invocation, instance_hours, invocation_of, measure

HOUR = 3_600_000


def test_report_records_of_both_kinds_give_their_duration() -> None:
    text = "REPORT RequestId: abc\tDuration: 12.50 ms\tBilled Duration: 13 ms\tMemory Size: 128 MB"
    assert invocation_of(1000, text) == Invocation(1000, 12.5)
    record = (
        '{"time": "t", "type": "platform.report", '
        '"record": {"requestId": "r", "metrics": {"durationMs": 7.25}}}'
    )
    assert invocation_of(2000, record) == Invocation(2000, 7.25)
    assert invocation_of(1, "START RequestId: abc Version: 1") is None
    assert invocation_of(1, '{"type": "platform.report", "record": {}}') is None
    assert invocation_of(1, "print says platform.report") is None


def test_peak_concurrency_counts_overlaps_and_touching_ends_do_not_overlap() -> None:
    calls = [
        Invocation(1000, 500),
        Invocation(1200, 500),
        Invocation(1400, 500),
        Invocation(2000, 600),
    ]
    # [500,1000] [700,1200] [900,1400] [1400,2000]: from 900 to 1000 three run at once;
    # the last starts as the third ends.
    usage = measure(calls, 0, HOUR)
    assert usage.peak_concurrency == 3
    assert usage.invocations == 4 and usage.mean_duration_ms == pytest.approx(525)
    assert usage.hourly_rps == (4 / 3600,) * 24  # less than a day: one mean rate


def test_a_day_or_more_gives_a_rate_per_hour_of_the_day() -> None:
    calls = [Invocation(5 * HOUR + i, 1) for i in range(360)]  # 360 in the 6th hour
    usage = measure(calls, 0, 2 * 24 * HOUR)  # two days: that hour is seen twice
    assert usage.hourly_rps[5] == pytest.approx(360 / (2 * 3600))
    assert sum(usage.hourly_rps) == pytest.approx(360 / (2 * 3600))


def test_instance_hours_run_from_launched_to_terminated_within_the_window() -> None:
    def event(ts: int, kind: str, instance: str) -> tuple[int, dict[str, object]]:
        return ts, {"message": kind, "metadata": {"event": kind, "instanceId": instance,
                                                   "instanceTypes": ["m6g.large"]}}  # fmt: skip

    events = [
        event(0, "Launched", "i-1"),  # before the window: counted from its start
        event(2 * HOUR, "Terminated", "i-1"),
        event(HOUR, "Launched", "i-2"),  # still running: counted to the end
        event(HOUR, "Launching", "i-3"),  # never launched: not billed
        event(5 * HOUR, "Launched", "i-4"),  # after the window
    ]
    assert instance_hours(events, HOUR, 3 * HOUR) == {"m6g.large": pytest.approx(1 + 2)}
    assert instance_hours([(0, {"message": "x"})], 0, HOUR) == {}


def test_the_chart_is_an_svg_with_both_lines() -> None:
    text = svg([(0.0, 0.0, 190.0), (10.0, 145.0, 195.0), (20.0, 290.0, 200.0)], 13.8, "a & b")
    assert text.startswith("<svg") and text.count("<polyline") == 2
    assert "a &amp; b" in text and "break-even: 13.8 req/s" in text
    with pytest.raises(ValueError):
        svg([], None, "empty")

"""Invocation counters, the duration histogram, the history ring and sparklines."""

from __future__ import annotations

from corral.telemetry.metrics import InvocationMetrics, MetricHistory, sparkline


def test_invocations_errors_and_durations_add_up_per_version() -> None:
    metrics = InvocationMetrics()
    for duration in (0.0005, 0.02, 0.02, 3.0):
        metrics.record("f", "1", duration, error=duration > 1)
    metrics.record("f", "2", 0.1, error=False)
    one = metrics.snapshot()[("f", "1")]
    assert (one.invocations, one.errors) == (4, 1)
    assert abs(one.duration_sum_s - 3.0405) < 1e-9
    cumulative = dict(one.cumulative_buckets())
    assert cumulative["0.001"] == 1
    assert cumulative["0.025"] == 3
    assert cumulative["2.5"] == 3 and cumulative["5.0"] == 4
    assert cumulative["+Inf"] == 4
    metrics.forget("f")
    assert metrics.snapshot() == {}


def test_history_keeps_the_window_and_selects_by_labels() -> None:
    history = MetricHistory(seconds=3)
    a = ("rate", (("function", "a"), ("version", "1")))
    b = ("rate", (("function", "b"), ("version", "1")))
    for t in range(5):
        history.add(float(t), {a: float(t), b: 1.0})
    chosen = history.select({"function": "a"}, since_s=0)
    assert list(chosen) == [a]
    assert [p.value for p in chosen[a]] == [2.0, 3.0, 4.0]  # the last three seconds
    assert [p.value for p in history.select({"function": "a"}, since_s=4)[a]] == [4.0]
    history.add(10.0, {b: 2.0})  # a was not fed for the whole window: it goes
    assert list(history.select({}, since_s=0)) == [b]


def test_sparklines_scale_to_their_own_range() -> None:
    assert sparkline([]) == ""
    assert sparkline([0, 0]) == "▁▁"
    assert sparkline([5, 5]) == "▄▄"
    assert sparkline([0, 1, 2, 3, 4, 5, 6, 7]) == "▁▂▃▄▅▆▇█"
    assert len(sparkline(range(100), width=10)) == 10

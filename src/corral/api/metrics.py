"""Metrics of a running Corral: ``GET /metrics`` (Prometheus) and the per-second history.

Counters come from ``telemetry.metrics.InvocationMetrics`` (invocations, errors,
durations) and the registry's throttle counts; gauges are read when asked from the
environments and instances (CPU and memory from cgroups, or psutil in the ``process``
sandbox). Names and labels follow the issue's list, AWS's metrics in Corral's words
(``LMI_FACTS.md`` §4.1).

``MetricsSampler`` adds one point a second to ``MetricHistory``: the gauges, and the
counters as per-second rates, which ``GET /corral/v1/metrics`` and ``corral metrics`` show.
"""

from __future__ import annotations

import asyncio
import logging
import math
import statistics
import time
from collections import defaultdict
from collections.abc import Iterator

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from corral.agent.handle import EnvironmentHandle
from corral.api.services import Services
from corral.backends.base import InstanceInfo
from corral.core import errors, models
from corral.telemetry.metrics import SeriesKey

__all__ = ["CorralCollector", "MetricsSampler", "counters", "gauges"]

_log = logging.getLogger("corral.metrics")
THROTTLE_CAUSES = tuple(cause.value for cause in errors.ThrottleCause)
_ENDED = (models.EnvironmentState.STOPPED, models.EnvironmentState.FAILED)


def _key(name: str, **labels: str) -> SeriesKey:
    return name, tuple(sorted(labels.items()))


def gauges(svc: Services) -> dict[SeriesKey, float]:
    """Every gauge now: per version, per environment kind, per provider and instance type."""
    out: dict[SeriesKey, float] = {}
    by_version: defaultdict[tuple[str, str, str], list[EnvironmentHandle]] = defaultdict(list)
    for env in svc.registry.all():
        if env.state not in _ENDED:
            provider = env.config.capacity_provider or ""
            by_version[(env.ref.function, env.ref.version, provider)].append(env)
    concurrent: defaultdict[tuple[str, str], float] = defaultdict(float)
    for (function, version, provider), envs in by_version.items():
        labels = {"function": function, "version": version, "capacity_provider": provider}
        out[_key("corral_execution_environments", **labels)] = len(envs)
        out[_key("corral_execution_environment_concurrency", **labels)] = max(
            e.outstanding for e in envs
        )
        out[_key("corral_execution_environment_concurrency_limit", **labels)] = max(
            e.concurrency for e in envs
        )
        out[_key("corral_execution_environment_cpu_utilization", **labels)] = statistics.fmean(
            e.cpu_utilization for e in envs
        )
        out[_key("corral_execution_environment_memory_utilization", **labels)] = statistics.fmean(
            e.memory_utilization for e in envs
        )
        concurrent[(function, version)] += sum(e.outstanding for e in envs)
    for (function, version), value in concurrent.items():
        out[_key("corral_concurrent_executions", function=function, version=version)] = value
    _provider_gauges(svc, out)
    for (function, version), stats in svc.metrics.snapshot().items():
        if stats.queued:  # only functions that wait for slots (corral:queue-timeout-ms)
            labels = {"function": function, "version": version}
            out[_key("corral_queued_invocations", **labels)] = stats.queued_now
    out[_key("corral_async_events_queued")] = svc.async_invoker.pending
    out[_key("corral_async_events_failed")] = svc.async_invoker.failed_count
    out[_key("corral_async_event_oldest_age_seconds")] = svc.async_invoker.oldest_age_s()
    return out


def _provider_gauges(svc: Services, out: dict[SeriesKey, float]) -> None:
    mib = 1024 * 1024
    counts: defaultdict[tuple[str, str, str], int] = defaultdict(int)
    running: defaultdict[tuple[str, str], list[InstanceInfo]] = defaultdict(list)
    for info in svc.backend.instances():
        counts[(info.capacity_provider, info.instance_type.name, info.state.value)] += 1
        if info.state is models.InstanceState.RUNNING:
            running[(info.capacity_provider, info.instance_type.name)].append(info)
    for (provider, kind, state), count in counts.items():
        labels = {"capacity_provider": provider, "instance_type": kind, "state": state}
        out[_key("corral_instances", **labels)] = count
    for (provider, kind), infos in running.items():
        labels = {"capacity_provider": provider, "instance_type": kind}
        vcpus = sum(i.vcpus for i in infos)
        allocated = sum(i.vcpus_allocated for i in infos)
        memory = sum(i.memory_mib for i in infos)
        memory_allocated = sum(i.memory_allocated_mib for i in infos)
        out[_key("corral_capacity_provider_cpu_utilization", **labels)] = statistics.fmean(
            i.cpu_utilization for i in infos
        )
        out[_key("corral_capacity_provider_memory_utilization", **labels)] = statistics.fmean(
            i.memory_utilization for i in infos
        )
        out[_key("corral_capacity_provider_vcpu_allocated", **labels)] = allocated
        out[_key("corral_capacity_provider_vcpu_available", **labels)] = vcpus - allocated
        out[_key("corral_capacity_provider_memory_allocated_bytes", **labels)] = (
            memory_allocated * mib
        )
        out[_key("corral_capacity_provider_memory_available_bytes", **labels)] = (
            memory - memory_allocated
        ) * mib


def counters(svc: Services) -> dict[SeriesKey, float]:
    """Invocations, errors, throttles (by cause) and duration sums, since the start."""
    out: dict[SeriesKey, float] = {}
    versions: set[tuple[str, str]] = set()
    for (function, version), stats in svc.metrics.snapshot().items():
        versions.add((function, version))
        labels = {"function": function, "version": version}
        out[_key("corral_invocations_total", **labels)] = stats.invocations
        out[_key("corral_errors_total", **labels)] = stats.errors
        out[_key("corral_duration_seconds_sum", **labels)] = stats.duration_sum_s
        if stats.queued:
            out[_key("corral_queued_total", **labels)] = stats.queued
            out[_key("corral_queue_wait_seconds_total", **labels)] = stats.queue_wait_sum_s
    throttles = dict(svc.registry.throttles)
    versions |= {(ref.function, ref.version) for ref, _ in throttles}
    for function, version in versions:
        ref = models.VersionRef(function, version)
        for cause in THROTTLE_CAUSES:
            out[_key("corral_throttles_total", function=function, version=version, cause=cause)] = (
                throttles.get((ref, cause), 0)
            )
    for (what, function, reason), count in svc.async_invoker.stats.items():
        labels = {"function": function, **({"reason": reason} if reason else {})}
        out[_key(f"corral_async_events_{what}_total", **labels)] = count
    for function, total_s in svc.async_invoker.age_sum_s.items():
        out[_key("corral_async_event_age_seconds_total", function=function)] = total_s
    return out


def _labelled(
    family: GaugeMetricFamily | CounterMetricFamily, series: dict[SeriesKey, float], name: str
) -> None:
    for (metric, labels), value in series.items():
        if metric == name:
            family.add_metric([v for _, v in labels], value)


_GAUGES = {
    "corral_concurrent_executions": ("Invocations running now.", ("function", "version")),
    "corral_execution_environments": (
        "Live execution environments.",
        ("capacity_provider", "function", "version"),
    ),
    "corral_execution_environment_concurrency": (
        "Most invocations one environment of the version holds now.",
        ("capacity_provider", "function", "version"),
    ),
    "corral_execution_environment_concurrency_limit": (
        "Invocations one environment may hold (PerExecutionEnvironmentMaxConcurrency).",
        ("capacity_provider", "function", "version"),
    ),
    "corral_execution_environment_cpu_utilization": (
        "CPU use of the version's environments, share of their vCPUs (mean).",
        ("capacity_provider", "function", "version"),
    ),
    "corral_execution_environment_memory_utilization": (
        "Memory use of the version's environments, share of MemorySize (mean).",
        ("capacity_provider", "function", "version"),
    ),
    "corral_capacity_provider_cpu_utilization": (
        "CPU use of running instances (mean share).",
        ("capacity_provider", "instance_type"),
    ),
    "corral_capacity_provider_memory_utilization": (
        "Memory use of running instances (mean share).",
        ("capacity_provider", "instance_type"),
    ),
    "corral_capacity_provider_vcpu_available": (
        "vCPUs of running instances not given to environments.",
        ("capacity_provider", "instance_type"),
    ),
    "corral_capacity_provider_vcpu_allocated": (
        "vCPUs of running instances given to environments.",
        ("capacity_provider", "instance_type"),
    ),
    "corral_capacity_provider_memory_available_bytes": (
        "Memory of running instances not given to environments.",
        ("capacity_provider", "instance_type"),
    ),
    "corral_capacity_provider_memory_allocated_bytes": (
        "Memory of running instances given to environments.",
        ("capacity_provider", "instance_type"),
    ),
    "corral_instances": (
        "Instances by state.",
        ("capacity_provider", "instance_type", "state"),
    ),
    "corral_queued_invocations": (
        "Invocations waiting for a slot now (corral:queue-timeout-ms).",
        ("function", "version"),
    ),
    "corral_async_events_queued": (
        "Asynchronous invocations waiting in the queue (due, or waiting for a retry).",
        (),
    ),
    "corral_async_events_failed": (
        "Async events and destination records given up and kept (`corral events failed`).",
        (),
    ),
    "corral_async_event_oldest_age_seconds": (
        "Age of the oldest event in the queue (0 when it is empty).",
        (),
    ),
}
_COUNTERS = {
    "corral_invocations": (
        "Invocations that ran (throttled ones excluded).",
        ("function", "version"),
    ),
    "corral_errors": ("Invocations that ended in a function error.", ("function", "version")),
    "corral_throttles": (
        "Invocations refused with 429, by cause.",
        ("cause", "function", "version"),
    ),
    "corral_queued": (
        "Invocations that found every slot busy and waited for one (corral:queue-timeout-ms).",
        ("function", "version"),
    ),
    "corral_queue_wait_seconds": (
        "Seconds invocations waited for a slot, all together (divide by corral_queued_total).",
        ("function", "version"),
    ),
    "corral_async_events_received": (
        "Asynchronous invocations queued (answered 202).",
        ("function",),
    ),
    "corral_async_events_delivered": (
        "Asynchronous invocations that ran without a function error.",
        ("function",),
    ),
    "corral_async_events_retried": (
        "Attempts of asynchronous invocations put back for a retry, by why.",
        ("function", "reason"),
    ),
    "corral_async_events_dropped": (
        "Asynchronous invocations given up (RetriesExhausted, EventAgeExceeded, FunctionGone, "
        "DestinationUnreachable), whether their record went to an OnFailure destination or "
        "was kept as failed.",
        ("function", "reason"),
    ),
    "corral_async_events_attempted": (
        "Attempts to run asynchronous invocations (throttled ones included).",
        ("function",),
    ),
    "corral_async_event_age_seconds": (
        "Seconds from queueing to each attempt, summed (AWS's AsyncEventAge; divide by "
        "corral_async_events_attempted_total).",
        ("function",),
    ),
    "corral_async_events_sent_to_destination": (
        "Invocation records queued for a destination function, by condition.",
        ("function", "reason"),
    ),
}


class CorralCollector(Collector):
    """What ``GET /metrics`` exposes, built at each scrape."""

    def __init__(self, svc: Services) -> None:
        self._svc = svc

    def collect(self) -> Iterator[Metric]:
        now = gauges(self._svc)
        for name, (doc, labels) in _GAUGES.items():
            gauge = GaugeMetricFamily(name, doc, labels=list(labels))
            _labelled(gauge, now, name)
            yield gauge
        totals = counters(self._svc)
        for name, (doc, labels) in _COUNTERS.items():
            counter = CounterMetricFamily(name, doc, labels=list(labels))
            _labelled(counter, totals, name + "_total")
            yield counter
        histogram = HistogramMetricFamily(
            "corral_duration_seconds",
            "How long invocations ran in the runtime.",
            labels=["function", "version"],
        )
        for (function, version), stats in self._svc.metrics.snapshot().items():
            histogram.add_metric(
                [function, version], stats.cumulative_buckets(), stats.duration_sum_s
            )
        yield histogram


# History series derived from counters: per-second rates.
_RATES = {
    "corral_invocations_total": "invocations_per_second",
    "corral_errors_total": "errors_per_second",
    "corral_throttles_total": "throttles_per_second",
    "corral_queued_total": "queued_per_second",
    "corral_async_events_received_total": "async_received_per_second",
    "corral_async_events_delivered_total": "async_delivered_per_second",
    "corral_async_events_retried_total": "async_retried_per_second",
    "corral_async_events_dropped_total": "async_dropped_per_second",
    "corral_async_events_attempted_total": "async_attempted_per_second",
}
_LIVE_RATES = ("invocations_per_second", "errors_per_second", "throttles_per_second")
# Rates are summed over these labels (a throttle's cause, an async event's reason).
_SUMMED_LABELS = ("cause", "reason")


class MetricsSampler:
    """Feeds ``svc.history`` once a second."""

    def __init__(self, svc: Services) -> None:
        self._svc = svc
        self._previous: dict[SeriesKey, float] = {}

    def sample(self, now_s: float) -> None:
        values = dict(gauges(self._svc))
        current = counters(self._svc)
        for name, labels in list(values):
            if name == "corral_concurrent_executions":  # a live version: its rates start at 0
                for rate in _RATES.values():
                    if rate in _LIVE_RATES:  # not the queue (only where waiting is on)
                        values[(rate, labels)] = 0.0
        durations: dict[tuple[tuple[str, str], ...], float] = {}
        ages: dict[tuple[tuple[str, str], ...], float] = {}
        for key, value in current.items():
            name, labels = key
            before = self._previous.get(key, 0.0)
            delta = max(0.0, value - before)
            if name in _RATES:
                rate_labels = tuple(p for p in labels if p[0] not in _SUMMED_LABELS)
                rate_key = (_RATES[name], rate_labels)
                values[rate_key] = values.get(rate_key, 0.0) + delta
            elif name == "corral_duration_seconds_sum":
                durations[labels] = delta
            elif name == "corral_async_event_age_seconds_total":
                ages[labels] = delta
        for labels, total in durations.items():
            count = values.get(("invocations_per_second", labels), 0.0)
            if count:
                values[("duration_mean_seconds", labels)] = total / count
        for labels, total in ages.items():
            count = values.get(("async_attempted_per_second", labels), 0.0)
            if count:
                values[("async_event_age_mean_seconds", labels)] = total / count
        self._previous = current
        self._svc.history.add(now_s, values)

    async def run_forever(self) -> None:
        said_s = -math.inf
        while True:
            try:
                self.sample(time.time())
            except Exception:
                # Metrics must not stop the server, nor fail silently: once a minute.
                if time.monotonic() - said_s > 60.0:
                    said_s = time.monotonic()
                    _log.warning("sampling metrics failed; the history has a gap", exc_info=True)
            await asyncio.sleep(1.0)

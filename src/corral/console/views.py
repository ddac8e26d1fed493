"""What the console's pages show, read from the running services: plain data for templates
and for the live updates (Server-Sent Events) alike.

The counts are the API's own: totals are the counters ``GET /metrics`` exposes
(``api.metrics.counters``), per-second points the history ``GET /corral/v1/metrics`` serves,
the fleet ``GET /corral/v1/state`` (``observed_state``). Nothing is counted twice or apart.
"""

from __future__ import annotations

import fnmatch
import json
import math
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from corral.agent.handle import EnvironmentHandle
from corral.api.metrics import counters
from corral.api.routes.corral import observed_state
from corral.api.services import Services
from corral.auth.policy import ApiKey, Role
from corral.core import errors, models
from corral.telemetry.journal import JournalEntry
from corral.telemetry.logdb import StoredEvent
from corral.telemetry.metrics import Point

__all__ = [
    "MONITOR_SERIES",
    "Viewer",
    "durations",
    "function_live",
    "function_names",
    "function_page",
    "function_of_group",
    "function_rows",
    "log_group",
    "monitor_history",
    "overview",
    "overview_live",
    "provider_history",
    "provider_live",
    "rates_now",
    "request_story",
    "totals",
]

# The function Monitor's charts: series of the metric history, summed over versions, except
# utilisations (averaged over the versions that have environments).
MONITOR_SERIES = (
    "invocations_per_second",
    "errors_per_second",
    "throttles_per_second",
    "duration_mean_seconds",
    "corral_concurrent_executions",
    "corral_execution_environments",
    "corral_execution_environment_cpu_utilization",
    "corral_execution_environment_memory_utilization",
)
_AVERAGED = frozenset(
    {
        "duration_mean_seconds",
        "corral_execution_environment_cpu_utilization",
        "corral_execution_environment_memory_utilization",
    }
)


@dataclass(frozen=True)
class Viewer:
    """Who looks: an admin key, an invoke key (its functions only, read-only), or anyone
    when the server runs without authentication."""

    key: ApiKey | None
    csrf: str = ""

    @property
    def admin(self) -> bool:
        return self.key is None or self.key.role is Role.ADMIN

    @property
    def name(self) -> str:
        if self.key is None:
            return "no authentication"
        return f"{self.key.name or self.key.access_key_id} ({self.key.role.value})"

    def can_see(self, function: str) -> bool:
        if self.admin:
            return True
        assert self.key is not None
        return any(fnmatch.fnmatchcase(function, p) for p in self.key.function_patterns)


def totals(svc: Services, functions: set[str] | None = None) -> dict[str, float]:
    """Invocations, errors and throttles since the server started (what ``/metrics`` says),
    of every function or of ``functions``."""
    out = {"invocations": 0.0, "errors": 0.0, "throttles": 0.0}
    names = {
        "corral_invocations_total": "invocations",
        "corral_errors_total": "errors",
        "corral_throttles_total": "throttles",
    }
    for (name, labels), value in counters(svc).items():
        what = names.get(name)
        if what is None:
            continue
        function = dict(labels).get("function", "")
        if functions is None or function in functions:
            out[what] += value
    return out


def _functions(svc: Services, viewer: Viewer) -> list[models.FunctionVersion]:
    return [
        v
        for v in svc.catalog.all_versions()
        if v.version == models.LATEST and viewer.can_see(v.function_name)
    ]


def function_names(svc: Services, viewer: Viewer) -> list[str]:
    """The functions ``viewer`` may see, by name."""
    return sorted(v.function_name for v in _functions(svc, viewer))


def function_rows(svc: Services, viewer: Viewer) -> list[dict[str, Any]]:
    """The functions list: one row per function ``viewer`` may see."""
    latest = _functions(svc, viewer)
    names = {v.function_name for v in latest}
    versions: defaultdict[str, int] = defaultdict(int)
    for v in svc.catalog.all_versions():
        if v.function_name in names and models.is_published(v.version):
            versions[v.function_name] += 1
    return [
        {
            "name": v.function_name,
            "runtime": v.spec.runtime,
            "kind": "Managed Instances" if v.spec.managed is not None else "classic",
            "provider": v.spec.managed.capacity_provider_name if v.spec.managed else "",
            "memory": v.spec.memory_size_mb,
            "versions": versions[v.function_name],
            "state": v.state.value,
        }
        for v in sorted(latest, key=lambda v: v.function_name)
    ]


def overview_live(
    svc: Services, viewer: Viewer, state: dict[str, Any] | None = None
) -> dict[str, Any]:
    """What the overview updates each second: counts, rates now, and (admins) providers."""
    names = None if viewer.admin else set(function_names(svc, viewer))
    providers = []
    if viewer.admin:
        current: dict[str, Any] = state if state is not None else observed_state(svc)
        providers = [_provider_summary(p) for p in current["capacityProviders"]]
    return {
        "totals": totals(svc, names),
        "now": rates_now(svc, names),
        "providers": providers,
    }


def overview(svc: Services, viewer: Viewer) -> dict[str, Any]:
    """The overview page: the fleet, the functions, the counts, the warnings."""
    state = observed_state(svc)
    warnings = list(state["warnings"])  # type: ignore[call-overload]
    if not svc.sandbox.isolated:
        warnings.insert(
            0,
            f"Nothing is isolated: the '{svc.sandbox.name}' sandbox runs functions as "
            "processes of this host (corral serve --sandbox container isolates them).",
        )
    asleep = [
        arn
        for arn in state["scaledToZero"]  # type: ignore[attr-defined]
        if viewer.can_see(arn.split(":function:")[1].rsplit(":", 1)[0])
    ]
    return {
        **overview_live(svc, viewer, state),
        "functions": function_rows(svc, viewer),
        "warnings": warnings if viewer.admin else [],
        "asleep": asleep,
    }


_RATES = {
    "invocations_per_second": "invocations",
    "errors_per_second": "errors",
    "throttles_per_second": "throttles",
}


def rates_now(svc: Services, functions: set[str] | None = None) -> dict[str, float]:
    """Invocations, errors and throttles per second in the last sampled second."""
    out = dict.fromkeys(_RATES.values(), 0.0)
    latest = svc.history.latest({})
    newest = max((p.timestamp_s for p in latest.values()), default=0.0)
    for (series, labels), point in latest.items():
        what = _RATES.get(series)
        if what is None or newest - point.timestamp_s > 0.5:
            continue
        if functions is None or dict(labels).get("function") in functions:
            out[what] += point.value
    return out


PROVIDER_SERIES = (
    "instances_running",
    "corral_capacity_provider_vcpu_allocated",
    "corral_capacity_provider_vcpu_available",
    "corral_capacity_provider_cpu_utilization",
    "corral_capacity_provider_memory_utilization",
)


def provider_history(svc: Services, name: str, minutes: float = 15) -> dict[str, Any]:
    """A capacity provider's charts (uPlot's shape): running instances, vCPU allocated and
    free, CPU and memory use of its running instances."""
    selected = []
    for (series, labels), points in svc.history.select(
        {"capacity_provider": name}, time.time() - minutes * 60
    ).items():
        if series == "corral_instances":
            if dict(labels).get("state") != models.InstanceState.RUNNING.value:
                continue
            series = "instances_running"
        selected.append((series, points))
    return _chart_columns(selected, PROVIDER_SERIES, lambda series: series.endswith("utilization"))


def _chart_columns(
    selected: Iterable[tuple[str, list[Point]]],
    wanted: tuple[str, ...],
    averaged: Callable[[str], bool],
) -> dict[str, Any]:
    """Series as uPlot takes them: a column of whole-second timestamps, then one column per
    wanted series (the points of its label sets summed, or ``averaged``; None: no point)."""
    by_time: dict[str, dict[int, list[float]]] = {s: defaultdict(list) for s in wanted}
    for series, points in selected:
        if series in by_time:
            for point in points:
                by_time[series][round(point.timestamp_s)].append(point.value)
    stamps = sorted({t for values in by_time.values() for t in values})
    columns: dict[str, list[float | None]] = {}
    for series, values in by_time.items():
        combine = _mean if averaged(series) else sum
        columns[series] = [combine(values[t]) if t in values else None for t in stamps]
    return {"t": stamps, **columns}


def _provider_summary(provider: dict[str, Any]) -> dict[str, Any]:
    instances = [i for i in provider["instances"] if i["state"] != "Terminated"]
    return {
        "name": provider["name"],
        "state": provider["state"],
        "instances": len(instances),
        "environments": sum(len(i["environments"]) for i in instances),
        "vcpus": f"{provider['vCpuInUse']}/{provider['maxVCpuCount']}",
        "idle": provider.get("idleTimeoutS"),
    }


def function_page(svc: Services, name: str) -> dict[str, Any] | None:
    """A function's configuration, versions, aliases and scaling (None: no such function)."""
    latest = svc.catalog.version(name, models.LATEST)
    if latest is None:
        return None
    versions = [
        v
        for v in svc.catalog.all_versions()
        if v.function_name == name and models.is_published(v.version)
    ]
    scaling = {v.version: svc.catalog.scaling(name, v.version) for v in versions if v.spec.managed}
    return {
        "name": name,
        "arn": svc.partition.function_arn(name),
        "latest": latest,
        "versions": sorted(versions, key=lambda v: int(v.version)),
        "aliases": svc.catalog.aliases(name),
        "scaling": scaling,
        "environments": _environments_of(svc, name),
        "totals": totals(svc, {name}),
    }


def _environments_of(svc: Services, name: str) -> list[dict[str, Any]]:
    return [
        {
            "id": e.id,
            "version": e.ref.version,
            "state": e.state.value,
            "busy": e.outstanding,
            "limit": e.concurrency,
            "cpu": e.cpu_utilization,
            "memory": e.memory_utilization,
            "instance": e.config.instance_id,
        }
        for e in svc.registry.all()
        if e.ref.function == name
    ]


def monitor_history(svc: Services, name: str, minutes: int = 15) -> dict[str, Any]:
    """The Monitor tab's charts: one column of timestamps, one per series (uPlot's shape)."""
    selected = svc.history.select({"function": name}, time.time() - minutes * 60)
    return _chart_columns(
        ((series, points) for (series, _labels), points in selected.items()),
        MONITOR_SERIES,
        lambda series: series in _AVERAGED,
    )


def function_live(svc: Services, name: str) -> dict[str, Any]:
    """One second of a function: its Monitor's new points, totals and environments."""
    latest: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for (series, _labels), last in svc.history.latest({"function": name}).items():
        if series in MONITOR_SERIES:
            latest[series].append((last.timestamp_s, last.value))
    stamp = max((t for values in latest.values() for t, _ in values), default=time.time())
    point: dict[str, float | None] = {}
    for series in MONITOR_SERIES:
        # Only the versions sampled this second (a version gone keeps an old last point).
        values = [v for t, v in latest.get(series, []) if abs(t - stamp) < 0.5]
        point[series] = (_mean if series in _AVERAGED else sum)(values) if values else None
    return {
        "t": round(stamp),
        "point": point,
        "totals": totals(svc, {name}),
        "environments": _environments_of(svc, name),
    }


def provider_live(svc: Services, name: str) -> dict[str, Any] | None:
    """A capacity provider's live map: its instances and their environments."""
    for provider in observed_state(svc)["capacityProviders"]:  # type: ignore[attr-defined]
        if provider["name"] == name:
            return dict(provider)
    return None


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def log_group(svc: Services, name: str) -> str:
    """A function's log group (a deleted function's default one: its logs stay)."""
    latest = svc.catalog.version(name, models.LATEST)
    logging = latest.spec.logging if latest is not None else models.LoggingConfig()
    return logging.group_for(name)


def function_of_group(group: str) -> str:
    """The function a log group belongs to, by its last part (``/aws/lambda/NAME``)."""
    return group.rsplit("/", 1)[-1]


def request_story(
    events: list[StoredEvent],
    entry: JournalEntry | None,
    environment_of: Callable[[str], EnvironmentHandle | None],
) -> dict[str, Any]:
    """One request from the journal (while it holds it) and its log records: who served it
    (function, version, environment, instance), its timeline and how it ended. Pure:
    ``environment_of`` finds a live environment by id."""
    report: dict[str, Any] = {}
    started_ms = ended_ms = None
    for event in events:
        message = event.message
        if message.startswith("START RequestId:") or '"platform.start"' in message:
            started_ms = event.timestamp_ms
        elif message.startswith("REPORT RequestId:"):
            ended_ms, report = event.timestamp_ms, _text_report(message)
        elif '"platform.report"' in message:
            ended_ms, report = event.timestamp_ms, _json_report(message)
    stream = events[0].log_stream if events else ""
    version, _, environment_id = stream.rpartition("/")[2].partition("]")
    version = version.lstrip("[")
    function = function_of_group(events[0].log_group) if events else ""
    outcome = report.get("status", "unknown")
    if report.get("error_type"):
        outcome = f"error: {report['error_type']}"
    instance_id = ""
    timeline: list[tuple[str, float, float | None]] = []
    if entry is not None:
        function, version = entry.function, entry.version
        environment_id = entry.environment_id or environment_id
        instance_id = entry.instance_id
        outcome = entry.outcome
        timeline.append(("received", entry.received_s * 1000, None))
        if entry.dispatched_s is not None:
            waited = "waited for a slot" if not entry.init_duration_ms else "waited (cold start)"
            timeline.append((waited, entry.received_s * 1000, entry.waited_s * 1000))
            timeline.append(("dispatched to a worker", entry.dispatched_s * 1000, None))
    init = report.get("init_duration_ms", entry.init_duration_ms if entry is not None else None)
    if init is not None and entry is None and started_ms is not None:
        timeline.append(("init (cold start)", started_ms - init, init))
    if init is not None and entry is not None:
        timeline.append(("of which init", entry.received_s * 1000, init))
    if started_ms is not None and entry is None:
        timeline.append(("dispatched to a worker", started_ms, None))
    duration = report.get("duration_ms", entry.duration_ms if entry is not None else None)
    if duration is not None:
        at = entry.dispatched_s * 1000 if entry and entry.dispatched_s else started_ms
        timeline.append(("handler", at or 0, duration))
    if entry is not None and entry.answered_s is not None:
        timeline.append(
            (
                outcome if outcome.startswith("throttled") else "answered",
                entry.answered_s * 1000,
                None,
            )
        )
    elif ended_ms is not None:
        timeline.append(("answered", ended_ms, None))
    environment = environment_of(environment_id) if environment_id else None
    if environment is not None and not instance_id:
        instance_id = environment.config.instance_id
    return {
        "function": function,
        "version": version,
        "environment_id": environment_id,
        "environment_state": environment.state.value if environment is not None else "ended",
        "instance_id": instance_id,
        "log_stream": stream,
        "outcome": outcome,
        "report": report,
        "timeline": sorted(timeline, key=lambda step: step[1]),
        "events": events,
    }


def _text_report(line: str) -> dict[str, Any]:
    fields = dict(part.split(": ", 1) for part in line.split("\t") if ": " in part)
    out: dict[str, Any] = {"status": "success"}
    if "Duration" in fields:
        out["duration_ms"] = float(fields["Duration"].split()[0])
    if "Init Duration" in fields:
        out["init_duration_ms"] = float(fields["Init Duration"].split()[0])
    if "Max Memory Used" in fields:
        out["max_memory_mb"] = int(fields["Max Memory Used"].split()[0])
    return out


def _json_report(message: str) -> dict[str, Any]:
    try:
        record = json.loads(message)["record"]
    except (ValueError, KeyError, TypeError):
        return {}
    metrics = record.get("metrics", {})
    out: dict[str, Any] = {"status": record.get("status", "unknown")}
    if "durationMs" in metrics:
        out["duration_ms"] = float(metrics["durationMs"])
    if "initDurationMs" in metrics:
        out["init_duration_ms"] = float(metrics["initDurationMs"])
    if "maxMemoryUsedMB" in metrics:
        out["max_memory_mb"] = int(metrics["maxMemoryUsedMB"])
    if record.get("errorType"):
        out["error_type"] = record["errorType"]
    return out


async def durations(svc: Services, name: str, minutes: int = 15) -> dict[str, float | None]:
    """Duration of the function's invocations over the last ``minutes``, from their report
    records: count, average, p50, p99 and max (milliseconds; None without invocations)."""
    now_ms = int(time.time() * 1000)
    try:
        records = await svc.logs.reports(log_group(svc, name), now_ms - minutes * 60_000, now_ms)
    except errors.CorralError:
        records = []  # no log store
    values: list[float] = []
    for _, message in records:
        report = _text_report(message) if message.startswith("REPORT") else _json_report(message)
        if "duration_ms" in report:
            values.append(report["duration_ms"])
    values.sort()
    if not values:
        return {"count": 0, "avg": None, "p50": None, "p99": None, "max": None}
    return {
        "count": len(values),
        "avg": sum(values) / len(values),
        "p50": _rank(values, 0.50),
        "p99": _rank(values, 0.99),
        "max": values[-1],
    }


def _rank(ordered: list[float], share: float) -> float:
    """The nearest-rank percentile of sorted values."""
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]

"""The cost question over HTTP, for the CLI and the web console.

* ``GET /corral/v1/cost/estimate?rps=...&durationMs=...``: the calculator (the same
  parameters as ``corral cost estimate``, camel-cased; ``hourlyRps`` is 24 comma-separated
  rates instead of ``rps``), with the chart's data;
* ``GET /corral/v1/cost/report?function=NAME&since=24h``: the load the function really
  served (its report records and its provider's instance-hours) priced three ways.
"""

from __future__ import annotations

import asyncio
import json
import math
import time

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from corral.api.http import handler, json_response
from corral.api.routes.common import services
from corral.api.routes.logs import parse_time_ms
from corral.core import errors, models
from corral.core.arns import parse_function_name
from corral.cost import catalog
from corral.cost.calculator import Profile, chart_rates, curve, estimate, summary
from corral.cost.report import compare
from corral.cost.usage import Usage, instance_hours, invocation_of, measure

__all__ = ["ROUTES"]


def _number(request: Request, name: str, default: float | None = None) -> float:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        if default is None:
            raise errors.InvalidRequest(f"{name} is required")
        return default
    try:
        value = float(raw)
    except ValueError:
        raise errors.InvalidRequest(f"{name} must be a number, not {raw[:40]!r}") from None
    if not math.isfinite(value):
        raise errors.InvalidRequest(f"{name} must be a finite number")
    return value


@handler
async def cost_estimate(request: Request) -> Response:
    params = request.query_params
    if params.get("hourlyRps"):
        try:
            hourly = tuple(float(v) for v in params["hourlyRps"].split(","))
        except ValueError:
            raise errors.InvalidRequest("hourlyRps must be 24 comma-separated numbers") from None
    else:
        hourly = (_number(request, "rps"),) * 24
    concurrency = params.get("perExecutionEnvironmentMaxConcurrency")
    profile = Profile(
        hourly_rps=hourly,
        duration_ms=_number(request, "durationMs", 100.0),
        cpu_ms=_number(request, "cpuMs", 0.0),
        memory_mb=int(_number(request, "memoryMb", 2048)),
        architecture=params.get("architecture", "x86_64"),
        per_ee_concurrency=int(_number(request, "perExecutionEnvironmentMaxConcurrency"))
        if concurrency
        else None,
        memory_gib_per_vcpu=_number(request, "memoryGiBPerVCpu", 2.0),
        instance_type=params.get("instanceType") or None,
        ec2_discount=_number(request, "discount", 0.0),
        lambda_savings_plan=_number(request, "savingsPlan", 0.0),
        free_tier=params.get("freeTier", "false").lower() == "true",
        idle_timeout_s=_number(request, "idleTimeoutS") if params.get("idleTimeoutS") else None,
    )
    # About a second of arithmetic (the break-even search prices every type at every
    # step): off the event loop, which serves invocations meanwhile.
    return json_response(200, await asyncio.to_thread(_estimate, profile))


def _estimate(profile: Profile) -> dict[str, object]:
    types = catalog.load().types
    result = estimate(profile, types)
    return summary(result, curve(profile, types, chart_rates(result)))


@handler
async def cost_report(request: Request) -> Response:
    svc = services(request)
    params = request.query_params
    if not params.get("function"):
        raise errors.InvalidRequest("Name a function: ?function=NAME")
    name, _ = parse_function_name(params["function"], svc.partition, allow_qualifier=False)
    latest = svc.catalog.version(name, models.LATEST)
    if latest is None:
        raise errors.NotFound(f"Function not found: {svc.partition.function_arn(name)}")
    now = time.time()
    since_ms = parse_time_ms(params.get("since") or "24h", now, "since")
    function = svc.catalog.function(name)
    if function is not None:  # a month "at this pace" counts from when it existed
        since_ms = max(since_ms, int(function.created_s * 1000))
    until_ms = int(now * 1000)
    if since_ms >= until_ms:
        raise errors.InvalidRequest("since must be in the past")
    records = await svc.logs.reports(latest.spec.logging.group_for(name), since_ms, until_ms)
    spec = latest.spec
    system_log: list[tuple[int, str]] = []
    provider_name = None
    slots: int | None = None
    ratio = 2.0
    if spec.managed is not None:
        provider_name = spec.managed.capacity_provider_name
        provider = svc.catalog.provider(provider_name)
        slots = spec.managed.concurrency(spec.memory_size_mb, spec.runtime)
        ratio = spec.managed.memory_gib_per_vcpu
        if provider is not None:
            system_log = await svc.logs.messages(provider.system_log_group)
    # A day of a busy function is a lot of records: parsed off the event loop.
    usage = await asyncio.to_thread(_usage, records, system_log, since_ms, until_ms)
    profile = Profile(
        hourly_rps=usage.hourly_rps,
        duration_ms=max(usage.mean_duration_ms, 0.001),
        memory_mb=spec.memory_size_mb,
        architecture=spec.architectures[0] if spec.architectures else "x86_64",
        per_ee_concurrency=slots,
        memory_gib_per_vcpu=ratio,
        runtime=spec.runtime,
    )
    result = await asyncio.to_thread(compare, usage, profile, catalog.load().types)
    result["function"] = name
    result["capacityProvider"] = provider_name
    return json_response(200, result)


def _usage(
    records: list[tuple[int, str]],
    system_log: list[tuple[int, str]],
    since_ms: int,
    until_ms: int,
) -> Usage:
    invocations = [i for i in (invocation_of(ts, m) for ts, m in records) if i is not None]
    events = []
    for ts, message in system_log:
        try:
            events.append((ts, json.loads(message)))
        except ValueError:
            continue
    return measure(invocations, since_ms, until_ms, instance_hours(events, since_ms, until_ms))


ROUTES = [
    Route("/corral/v1/cost/estimate", cost_estimate, methods=["GET"]),
    Route("/corral/v1/cost/report", cost_report, methods=["GET"]),
]

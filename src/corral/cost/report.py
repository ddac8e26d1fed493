"""The cost question for the load a function really served: pure, no I/O.

Given its measured usage (``cost.usage``) over a window and its settings, what the window
cost (and would cost per month at that pace) on classic Lambda, on its capacity provider as
it ran (the instance-hours it really used), and on a right-sized provider (the calculator's
fleet for the measured hourly profile). A request is a request on both: $0.20 per million.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from corral.core import models
from corral.cost.calculator import (
    HOURS_PER_MONTH,
    Prices,
    Profile,
    classic_cost,
    classic_price,
    managed_cost,
)
from corral.cost.usage import Usage

__all__ = ["compare"]


def compare(
    usage: Usage,
    profile: Profile,
    types: Sequence[models.InstanceType],
    prices: Prices | None = None,
) -> dict[str, object]:
    """Costs of the window and per month at its pace. ``profile`` carries the function's
    settings (memory, architecture, slots, ratio); its rates and duration are replaced by
    the measured ones."""
    prices = prices or Prices()
    hours = max(usage.hours, 1e-9)
    month = HOURS_PER_MONTH / hours
    measured = replace(
        profile,
        hourly_rps=usage.hourly_rps,
        duration_ms=max(usage.mean_duration_ms, 0.001),
        cpu_ms=0.0,
        instance_type=None,
    )
    gb_seconds = usage.total_duration_ms / 1000 * profile.memory_mb / 1024
    classic = classic_price(usage.invocations, gb_seconds, measured, prices)
    request_usd = classic.request_usd
    classic_usd = classic.request_usd + classic.duration_usd  # the window's, not a month
    by_name = {t.name: t for t in types}
    on_demand = sum(
        hours_used * (by_name[kind].price_per_hour if kind in by_name else 0.0)
        for kind, hours_used in usage.instance_hours.items()
    )
    configured_usd = on_demand * (1 + prices.management_fee) + request_usd
    right = managed_cost(measured, types, prices)
    right_window = right.monthly_usd * hours / HOURS_PER_MONTH
    # The calculator's classic month for the same hourly profile, as a cross-check.
    classic_month = classic_cost(measured, prices).monthly_usd
    return {
        "window": {
            "sinceMs": usage.since_ms,
            "untilMs": usage.until_ms,
            "hours": round(hours, 6),
        },
        "measured": {
            "invocations": usage.invocations,
            "meanDurationMs": round(usage.mean_duration_ms, 3),
            "peakConcurrency": usage.peak_concurrency,
            "meanRps": round(usage.invocations / (hours * 3600), 4),
            "hourlyRps": [round(r, 4) for r in usage.hourly_rps],
            "instanceHours": {k: round(v, 4) for k, v in usage.instance_hours.items()},
            "gbSeconds": round(gb_seconds, 3),
        },
        "classic": {
            "windowUsd": round(classic_usd, 4),
            "monthlyUsd": round(classic_usd * month, 2),
            "monthlyUsdFromProfile": round(classic_month, 2),
        },
        "managedInstances": {
            "asConfigured": {
                "windowUsd": round(configured_usd, 4),
                "monthlyUsd": round(configured_usd * month, 2),
                "instanceHours": round(sum(usage.instance_hours.values()), 4),
            },
            "rightSized": {
                "windowUsd": round(right_window, 4),
                "monthlyUsd": round(right.monthly_usd, 2),
                "instanceType": right.instance_type,
                "instances": right.peak_instances,
                "environments": right.peak_environments,
            },
        },
    }

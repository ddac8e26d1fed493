"""``corral metrics FUNCTION``: the last minutes of a function's metrics, with sparklines.

One row per series (per version and capacity provider): the latest value, the minimum,
the maximum and a sparkline of the window. ``--capacity-provider NAME`` shows a provider's
instances instead; ``--json`` prints the series as ``GET /corral/v1/metrics`` answers them.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from corral.cli.common import endpoint, explain, fail, request, subject
from corral.telemetry.metrics import sparkline

__all__ = ["metrics"]

_out = Console()
# The series worth a row, in this order, with how to show their values.
_ROWS = (
    ("invocations_per_second", "invocations/s", "{:.1f}"),
    ("errors_per_second", "errors/s", "{:.1f}"),
    ("throttles_per_second", "throttles/s", "{:.1f}"),
    ("queued_per_second", "queued/s", "{:.1f}"),
    ("corral_queued_invocations", "waiting for a slot", "{:.0f}"),
    ("duration_mean_seconds", "duration (mean)", "{:.3f} s"),
    ("async_received_per_second", "async events/s", "{:.1f}"),
    ("async_delivered_per_second", "async delivered/s", "{:.1f}"),
    ("async_retried_per_second", "async retries/s", "{:.1f}"),
    ("async_dropped_per_second", "async given up/s", "{:.1f}"),
    ("async_event_age_mean_seconds", "async event age (mean)", "{:.1f} s"),
    ("corral_concurrent_executions", "concurrent executions", "{:.0f}"),
    ("corral_execution_environments", "environments", "{:.0f}"),
    ("corral_execution_environment_concurrency", "env concurrency (max)", "{:.0f}"),
    ("corral_execution_environment_cpu_utilization", "env CPU", "{:.0%}"),
    ("corral_execution_environment_memory_utilization", "env memory", "{:.0%}"),
    ("corral_capacity_provider_cpu_utilization", "instance CPU", "{:.0%}"),
    ("corral_capacity_provider_memory_utilization", "instance memory", "{:.0%}"),
    ("corral_capacity_provider_vcpu_allocated", "vCPU allocated", "{:.0f}"),
    ("corral_capacity_provider_vcpu_available", "vCPU available", "{:.0f}"),
    ("corral_instances", "instances", "{:.0f}"),
)


def _scope(labels: dict[str, str]) -> str:
    parts = [
        f"v{labels['version']}" if "version" in labels else "",
        labels.get("capacity_provider", ""),
        labels.get("instance_type", ""),
        labels.get("state", ""),
    ]
    return " ".join(p for p in parts if p) or "-"


def render(series: list[dict[str, Any]], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("metric", "scope", "now", "min", "max", "last minutes"):
        table.add_column(column, justify="right" if column in ("now", "min", "max") else "left")
    by_name: dict[str, list[dict[str, Any]]] = {}
    for one in series:
        by_name.setdefault(one["name"], []).append(one)
    for name, label, style in _ROWS:
        for one in by_name.get(name, []):
            values = [v for _, v in one["points"]]
            if not values:
                continue
            table.add_row(
                label,
                _scope(one["labels"]),
                style.format(values[-1]),
                style.format(min(values)),
                style.format(max(values)),
                sparkline(values, width=60),
            )
    return table


def metrics(
    function_name: Annotated[
        str | None, typer.Argument(help="Function name or ARN (or use --capacity-provider).")
    ] = None,
    qualifier: Annotated[str | None, typer.Option(help="Only this version or alias.")] = None,
    capacity_provider: Annotated[
        str | None, typer.Option("--capacity-provider", help="A capacity provider instead.")
    ] = None,
    minutes: Annotated[int, typer.Option(help="How far back (1-60).", min=1, max=60)] = 15,
    as_json: Annotated[bool, typer.Option("--json", help="The series as JSON.")] = False,
    endpoint_url: Annotated[
        str | None, typer.Option(help="Corral's URL [CORRAL_ENDPOINT_URL].")
    ] = None,
) -> None:
    """Show the recent metrics of a function (one point a second, the last hour kept)."""
    params = {"minutes": str(minutes), **subject(function_name, qualifier, capacity_provider)}
    response = request("GET", f"{endpoint(endpoint_url)}/corral/v1/metrics", params=params)
    if response.status_code != 200:
        raise fail(explain(response))
    series: list[dict[str, Any]] = response.json()["series"]
    if as_json:
        print(json.dumps({"series": series}))
        return
    title = function_name or f"capacity provider {capacity_provider}"
    if not series:
        _out.print(f"{title}: no data in the last {minutes} minutes")
        return
    _out.print(render(series, f"{title}, last {minutes} min"))

"""``corral cost estimate|report|types``: classic Lambda against Managed Instances.

``estimate`` and ``types`` need no server: the calculator and the price catalogue ship with
Corral. ``report`` asks the server what a function really served.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from corral.cli.common import endpoint, explain, fail, request
from corral.core import errors
from corral.cost import catalog
from corral.cost.calculator import (
    Estimate,
    Profile,
    chart_rates,
    curve,
    estimate,
    managed_memory_mb,
    summary,
)
from corral.cost.chart import svg

__all__ = ["app"]

app = typer.Typer(help="What a function costs on classic Lambda and on Managed Instances.")
_out = Console()


def _daily_shape(path: Path) -> tuple[float, ...]:
    """24 hourly rates from a file: a JSON list, or one number per line."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise fail(f"cannot read {path}: {exc.strerror}") from exc
    try:
        values = json.loads(text) if text.lstrip().startswith("[") else text.split()
        rates = tuple(float(v) for v in values)
    except (ValueError, TypeError) as exc:
        raise fail(
            f"{path}: a daily shape is 24 request rates, as a JSON list or one per line"
        ) from exc
    if len(rates) != 24:
        raise fail(f"{path}: a daily shape has 24 hourly rates, not {len(rates)}")
    return rates


@app.command("estimate")
def estimate_command(
    rps: Annotated[
        float | None, typer.Option(help="Requests per second, constant all day.")
    ] = None,
    daily_shape: Annotated[
        Path | None,
        typer.Option(help="24 hourly request rates (JSON list or one per line), instead of --rps."),
    ] = None,
    duration_ms: Annotated[float, typer.Option(help="Duration of one invocation.")] = 100.0,
    cpu_ms: Annotated[
        float, typer.Option(help="CPU time of one invocation (0: I/O-bound, slots decide).")
    ] = 0.0,
    memory_mb: Annotated[int, typer.Option(help="Function memory.")] = 2048,
    arch: Annotated[str, typer.Option(help="x86_64 or arm64.")] = "x86_64",
    per_ee_concurrency: Annotated[
        int | None,
        typer.Option(help="PerExecutionEnvironmentMaxConcurrency (default: 16 per vCPU)."),
    ] = None,
    memory_per_vcpu: Annotated[
        float, typer.Option(help="MemoryGiBPerVCpu of the environments: 2, 4 or 8.")
    ] = 2.0,
    instance_type: Annotated[
        str, typer.Option(help="An instance type, or auto (the cheapest for this profile).")
    ] = "auto",
    discount: Annotated[
        float, typer.Option(help="EC2 discount (Savings Plan, RI) on the instances, 0-1.")
    ] = 0.0,
    savings_plan: Annotated[
        float, typer.Option(help="Compute Savings Plan on classic duration, 0-0.17.")
    ] = 0.0,
    free_tier: Annotated[
        bool, typer.Option("--free-tier", help="Subtract classic Lambda's monthly free tier.")
    ] = False,
    idle_timeout_s: Annotated[
        float | None,
        typer.Option(
            help="Corral's scale to zero (corral:idle-timeout-s, 60-86400): no instance "
            "after this long without a request."
        ),
    ] = None,
    plot: Annotated[
        Path | None, typer.Option(help="Write both costs against the rate to this SVG file.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Monthly cost of a traffic profile on both, with their parts and the break-even rate."""
    if (rps is None) == (daily_shape is None):
        raise fail("give --rps or --daily-shape (one of the two)")
    hourly = _daily_shape(daily_shape) if daily_shape is not None else (rps or 0.0,) * 24
    profile = Profile(
        hourly_rps=hourly,
        duration_ms=duration_ms,
        cpu_ms=cpu_ms,
        memory_mb=memory_mb,
        architecture=arch,
        per_ee_concurrency=per_ee_concurrency,
        memory_gib_per_vcpu=memory_per_vcpu,
        instance_type=None if instance_type == "auto" else instance_type,
        ec2_discount=discount,
        lambda_savings_plan=savings_plan,
        free_tier=free_tier,
        idle_timeout_s=idle_timeout_s,
    )
    types = catalog.load().types
    try:
        result = estimate(profile, types)
        points = curve(profile, types, chart_rates(result))
    except errors.CorralError as exc:
        raise fail(exc.message) from exc
    if plot is not None:
        title = f"{memory_mb} MB, {duration_ms:g} ms, {arch}, on {result.managed.instance_type}"
        try:
            plot.write_text(svg(points, result.break_even_rps, title))
        except OSError as exc:
            raise fail(f"cannot write {plot}: {exc.strerror}") from exc
    if as_json:
        print(json.dumps(summary(result, points)))
        return
    _print(result)
    if plot is not None:
        _out.print(f"chart: {plot}")


def _print(result: Estimate) -> None:
    classic, managed, profile = result.classic, result.managed, result.profile
    table = Table("per month (730 h)", "classic Lambda", "Managed Instances", title=(
        f"{profile.mean_rps:,.4g} req/s on average, {profile.duration_ms:g} ms, "
        f"{profile.memory_mb} MB, {profile.architecture}"
    ))  # fmt: skip
    table.add_row("requests", f"${classic.request_usd:,.2f}", f"${managed.request_usd:,.2f}")
    table.add_row(
        "duration (GB-s)",
        f"${classic.duration_usd:,.2f} ({classic.gb_seconds:,.0f} GB-s)",
        "-",
    )
    table.add_row(
        "instances",
        "-",
        f"${managed.compute_usd:,.2f} ({managed.instance_hours:,.0f} h of "
        f"{managed.instance_type} at ${managed.hourly_price_usd}/h)",
    )
    table.add_row("management fee (15%)", "-", f"${managed.management_fee_usd:,.2f}")
    table.add_row(
        "[bold]total[/]",
        f"[bold]${classic.monthly_usd:,.2f}[/]",
        f"[bold]${managed.monthly_usd:,.2f}[/]",
    )
    _out.print(table)
    memory = managed_memory_mb(profile)
    _out.print(
        f"Managed Instances: up to {managed.peak_instances} x {managed.instance_type} "
        f"({managed.peak_environments} environments of {managed.environment_vcpus} vCPU, "
        f"{memory} MB and {managed.slots_per_environment} slot(s), "
        f"{managed.environments_per_instance} per instance, at most half the slots busy; "
        + (
            "never fewer than 3 instances)."
            if profile.idle_timeout_s is None
            else f"none after {profile.idle_timeout_s:g} s without a request: about "
            f"{managed.cold_starts:,.0f} cold starts a month)."
        )
    )
    if memory != profile.memory_mb:
        _out.print(
            f"(Managed Instances functions have at least {memory} MB: the environments are "
            f"priced at {memory} MB, classic Lambda at {profile.memory_mb} MB.)"
        )
    cheaper = (
        "classic Lambda" if classic.monthly_usd < managed.monthly_usd else ("Managed Instances")
    )
    if result.break_even_rps is None:
        _out.print(f"{cheaper} is cheaper here; no break-even below 1,000,000 req/s.")
    else:
        _out.print(
            f"{cheaper} is cheaper here. Break-even: {result.break_even_rps:,.3g} req/s on "
            "average (same daily shape): below it classic Lambda costs less, above it "
            "Managed Instances."
        )


@app.command("types")
def types_command(
    arch: Annotated[str | None, typer.Option(help="x86_64 or arm64.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The instance types and on-demand prices the calculator and the fleet use."""
    loaded = catalog.load()
    kinds = [t for t in loaded.types if arch is None or t.architecture == arch]
    if as_json:
        print(json.dumps([
            {"name": t.name, "architecture": t.architecture, "vcpus": t.vcpus,
             "memoryMiB": t.memory_mib, "gpus": t.gpus, "pricePerHourUsd": t.price_per_hour}
            for t in kinds
        ]))  # fmt: skip
        return
    table = Table(
        "type", "arch", "vCPU", "GiB", "GPUs", "$/hour",
        title=f"{loaded.region} on-demand, {loaded.source} ({loaded.retrieved})",
    )  # fmt: skip
    for t in sorted(kinds, key=lambda k: (k.price_per_hour, k.name)):
        table.add_row(
            t.name, t.architecture, str(t.vcpus), f"{t.memory_mib / 1024:g}",
            str(t.gpus or ""), f"{t.price_per_hour:.4f}",
        )  # fmt: skip
    _out.print(table)


@app.command("report")
def report_command(
    function_name: Annotated[str, typer.Argument(help="Function name or ARN.")],
    since: Annotated[
        str, typer.Option(help="How far back: a duration (30m, 24h, 7d) or epoch ms.")
    ] = "24h",
    endpoint_url: Annotated[
        str | None, typer.Option(help="Corral's URL [CORRAL_ENDPOINT_URL].")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """What the load a function really served cost, three ways: classic Lambda, its
    capacity provider as it ran, and a right-sized provider."""
    response = request(
        "GET",
        f"{endpoint(endpoint_url)}/corral/v1/cost/report",
        params={"function": function_name, "since": since},
    )
    if response.status_code != 200:
        raise fail(explain(response))
    data = response.json()
    if as_json:
        print(json.dumps(data))
        return
    measured, window = data["measured"], data["window"]
    managed = data["managedInstances"]
    span = window["hours"]
    last = f"{span * 60:.0f} min" if span < 1 else f"{span:.3g} h"
    _out.print(
        f"{data['function']} over the last {last} (since it was created, if later): "
        f"{measured['invocations']:,} invocations, {measured['meanDurationMs']:.4g} ms on "
        f"average, peak concurrency {measured['peakConcurrency']}, "
        f"{measured['meanRps']:.4g} req/s on average"
    )
    table = Table("", "this window", "per month at this pace")
    table.add_row(
        "classic Lambda", f"${data['classic']['windowUsd']:,.4f}",
        f"${data['classic']['monthlyUsd']:,.2f}",
    )  # fmt: skip
    if data["capacityProvider"] is not None:
        configured = managed["asConfigured"]
        hours = ", ".join(f"{h:.3g} h of {k}" for k, h in measured["instanceHours"].items())
        table.add_row(
            f"Managed Instances, {data['capacityProvider']} as it ran ({hours or 'no instances'})",
            f"${configured['windowUsd']:,.4f}", f"${configured['monthlyUsd']:,.2f}",
        )  # fmt: skip
    right = managed["rightSized"]
    table.add_row(
        f"Managed Instances, right-sized ({right['instances']} x {right['instanceType']})",
        f"${right['windowUsd']:,.4f}", f"${right['monthlyUsd']:,.2f}",
    )  # fmt: skip
    _out.print(table)

"""Client commands: ``corral invoke`` and ``corral status``.

Like the AWS CLI they take ``--endpoint-url`` (default: ``CORRAL_ENDPOINT_URL``, else
``http://127.0.0.1:9000``). ``--json`` prints what scripts read.
"""

from __future__ import annotations

import base64
import json
import sys
import time
import urllib.parse
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from corral.cli.common import endpoint, err, error_message, explain, fail, request

__all__ = ["invoke", "status"]

_out = Console()


def _payload(value: str) -> bytes:
    if not value.startswith("@"):
        return value.encode()
    try:
        return Path(value[1:]).read_bytes()
    except OSError as exc:
        raise fail(f"cannot read the payload file {value[1:]}: {exc.strerror}") from exc


def invoke(
    function_name: Annotated[str, typer.Argument(help="Function name or ARN.")],
    payload: Annotated[
        str, typer.Option("--payload", "-p", help="JSON event, or @file to read it from.")
    ] = "{}",
    qualifier: Annotated[
        str | None, typer.Option(help="Version, alias or $LATEST.PUBLISHED.")
    ] = None,
    invocation_type: Annotated[
        str, typer.Option(help="RequestResponse, Event or DryRun.")
    ] = "RequestResponse",
    log_type: Annotated[str, typer.Option(help="Tail prints the invocation's log.")] = "None",
    endpoint_url: Annotated[
        str | None, typer.Option(help="Corral's URL [CORRAL_ENDPOINT_URL].")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Invoke a function and print its result."""
    body = _payload(payload)
    quoted = urllib.parse.quote(function_name, safe="")
    url = f"{endpoint(endpoint_url)}/2015-03-31/functions/{quoted}/invocations"
    params = {"Qualifier": qualifier} if qualifier else None
    headers = {"X-Amz-Invocation-Type": invocation_type, "X-Amz-Log-Type": log_type}
    response = request("POST", url, content=body, params=params, headers=headers)
    if response.status_code >= 400:
        error = response.headers.get("x-amzn-errortype", "Error")
        message = error_message(response)
        if as_json:
            print(
                json.dumps({"StatusCode": response.status_code, "Error": error, "Message": message})
            )
        raise fail(explain(response))
    logs = response.headers.get("x-amz-log-result")
    result = {
        "StatusCode": response.status_code,
        "ExecutedVersion": response.headers.get("x-amz-executed-version"),
        "FunctionError": response.headers.get("x-amz-function-error"),
        "Payload": response.text,
        "LogResult": base64.b64decode(logs).decode("utf-8", "replace") if logs else None,
    }
    if as_json:
        print(json.dumps(result))
    else:
        if result["LogResult"]:
            err.print(result["LogResult"], markup=False, highlight=False)
        if result["FunctionError"]:
            err.print(f"[red]function error ({result['FunctionError']})[/]")
        sys.stdout.write(response.text + ("\n" if response.text else ""))
    if result["FunctionError"]:
        raise typer.Exit(1)


def status(
    endpoint_url: Annotated[
        str | None, typer.Option(help="Corral's URL [CORRAL_ENDPOINT_URL].")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the state as JSON.")] = False,
    watch: Annotated[bool, typer.Option("--watch", "-w", help="Refresh every second.")] = False,
) -> None:
    """Show capacity providers, instances and execution environments."""
    url = f"{endpoint(endpoint_url)}/corral/v1/state"

    def fetch() -> dict[str, Any]:
        response = request("GET", url)
        if response.status_code != 200:
            raise fail(explain(response))
        data: dict[str, Any] = response.json()
        return data

    if as_json:
        print(json.dumps(fetch(), indent=2))
        return
    if not watch:
        _out.print(render_state(fetch()))
        return
    with Live(render_state(fetch()), console=_out, refresh_per_second=2) as live:
        try:
            while True:
                time.sleep(1.0)
                live.update(render_state(fetch()))
        except KeyboardInterrupt:
            return


def _pct(value: float) -> str:
    return f"{100 * value:.0f}%"


def render_state(state: dict[str, Any]) -> Group:
    """The state as rich tables: one per capacity provider, the on-demand pool, the host."""
    parts: list[Any] = []
    host = state["host"]
    note = (
        "[bold yellow]overcommitted[/]: instances have more vCPUs or memory than this host"
        if host["overcommitted"]
        else "fits"
    )
    backend = state.get("backend") or {"name": "local"}
    if backend["name"] == "ray":
        parts.append(
            f"instances: Ray cluster at {backend['address']}: {backend['nodes']} corral "
            f"node(s), {backend['nodesInUse']} in use, {backend['nodesUnusable']} unusable"
        )
        parts.append(f"host: {host['vCpu']} vCPU, {host['memoryMiB']} MiB (API, classic functions)")
    else:
        parts.append(
            f"host: {host['vCpu']} vCPU, {host['memoryMiB']} MiB; instances: "
            f"{host['instanceVCpu']} vCPU, {host['instanceMemoryMiB']} MiB ({note})"
        )
    info = state.get("sandboxInfo") or {"sandbox": state.get("sandbox", "?")}
    parts.append(
        f"sandbox: {info.get('sandbox')}"
        + (f" ({info['isolation']}; network: {info['network']})" if "isolation" in info else "")
    )
    for warning in state.get("warnings", []):
        parts.append(f"[bold yellow]warning:[/] {warning}")
    for provider in state["capacityProviders"]:
        idle = provider.get("idleTimeoutS")
        table = Table(
            title=f"{provider['name']} ({provider['state']}, {provider['scalingMode']}, "
            f"{provider['vCpuInUse']}/{provider['maxVCpuCount']} vCPU"
            + (f", scales to zero after {idle} s idle" if idle else "")
            + ")",
            title_justify="left",
        )
        for column in (
            "instance",
            "type",
            "state",
            "vCPU",
            "MiB",
            "CPU",
            "environment",
            "function",
            "busy",
            "env CPU",
            "env mem",
        ):
            table.add_column(column)
        for instance in provider["instances"]:
            node = instance.get("node") or ""
            head = [
                instance["id"]
                + (f"\nnode {node[:12]} {instance.get('address', '')}" if node else ""),
                instance["instanceType"],
                instance["state"],
                f"{instance['vCpuAllocated']}/{instance['vCpu']}",
                f"{instance['memoryAllocatedMiB']}/{instance['memoryMiB']}",
                _pct(instance["cpuUtilization"]),
            ]
            envs = instance["environments"] or [None]
            for index, env in enumerate(envs):
                cells = head if index == 0 else [""] * len(head)
                if env is None:
                    table.add_row(*cells, "-", "", "", "", "")
                    continue
                pool = env.get("workerPool", "awslambdaric")
                table.add_row(
                    *cells,
                    f"{env['id'][:12]} {env['state']}"
                    + (f"\n{env['endReason']}" if env.get("endReason") else "")
                    + ("" if pool == "awslambdaric" else f"\nworkers: {pool}"),
                    env["functionArn"].split(":function:")[1],
                    f"{env['concurrency']}/{env['concurrencyLimit']}",
                    _pct(env["cpuUtilization"]),
                    _pct(env["memoryUtilization"]),
                )
        parts.append(table)
    if state["onDemand"]:
        table = Table(title="on-demand (classic functions)", title_justify="left")
        for column in ("environment", "function", "state", "busy", "CPU", "memory"):
            table.add_column(column)
        for env in state["onDemand"]:
            table.add_row(
                env["id"][:12],
                env["functionArn"].split(":function:")[1],
                env["state"],
                f"{env['concurrency']}/{env['concurrencyLimit']}",
                _pct(env["cpuUtilization"]),
                _pct(env["memoryUtilization"]),
            )
        parts.append(table)
    if state.get("throttles"):
        table = Table(title="throttles since start", title_justify="left")
        for column in ("function", "cause", "count"):
            table.add_column(column)
        for row in state["throttles"]:
            table.add_row(
                row["functionArn"].split(":function:")[1], row["cause"], str(row["count"])
            )
        parts.append(table)
    if state.get("functionUrls"):
        table = Table(title="function URLs", title_justify="left")
        for column in ("function", "URL", "auth", "mode"):
            table.add_column(column)
        for url in state["functionUrls"]:
            table.add_row(
                url["functionArn"].split(":function:")[1],
                url["url"],
                "[bold yellow]NONE: public, anyone who can reach Corral may call it[/]"
                if url["public"]
                else "AWS_IAM (SigV4, keys that may invoke it)",
                url["invokeMode"],
            )
        parts.append(table)
    if state.get("asyncFailed"):
        parts.append(f"async events given up: {state['asyncFailed']} (see `corral events failed`)")
    asleep = [arn.split(":function:")[1] for arn in state.get("scaledToZero", [])]
    if asleep:
        parts.append(
            "scaled to zero (the next invocation starts an environment): " + ", ".join(asleep)
        )
    parts.append(f"async events queued: {state.get('asyncQueue', 0)}")
    return Group(*parts)

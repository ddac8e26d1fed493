"""``corral events failed|redrive|purge``: asynchronous events and destination records that
were given up (AWS drops them; Corral keeps them until you redrive or purge them).

``failed`` lists them (``--json`` for scripts: the entries with their payloads);
``redrive ID... | --all`` queues them again as new events (retries and age start over, the
request id stays); ``purge ID... | --all`` forgets them.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from corral.cli.common import endpoint, explain, fail, request

__all__ = ["app"]

app = typer.Typer(help="Async events and destination records that were given up.")
_out = Console()

EndpointOption = Annotated[str | None, typer.Option(help="Corral's URL [CORRAL_ENDPOINT_URL].")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
IdsArgument = Annotated[list[str] | None, typer.Argument(help="Event ids (see `failed`).")]
AllOption = Annotated[bool, typer.Option("--all", help="Every failed entry.")]


@app.command("failed")
def failed(
    limit: Annotated[int, typer.Option(min=1, max=10000, help="At most this many.")] = 100,
    endpoint_url: EndpointOption = None,
    as_json: JsonOption = False,
) -> None:
    """List what was given up, newest first: why, after how many attempts."""
    response = request("GET", f"{endpoint(endpoint_url)}/corral/v1/events?Limit={limit}")
    if response.status_code != 200:
        raise fail(explain(response))
    data: dict[str, Any] = response.json()
    if as_json:
        print(json.dumps(data))
        return
    entries: list[dict[str, Any]] = data["Failed"]
    table = Table("Id", "Kind", "Function", "Reason", "Attempts", "Failed at", "Detail")
    for entry in entries:
        qualifier = f":{entry['Qualifier']}" if entry["Qualifier"] else ""
        when = dt.datetime.fromtimestamp(entry["Failed"], dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
        table.add_row(
            entry["Id"],
            "record" if entry["Kind"] == "destination" else "event",
            entry["FunctionName"] + qualifier,
            entry["Reason"],
            str(entry["Attempts"]),
            when,
            entry["Detail"],
        )
    _out.print(table)
    shown = f"{len(entries)} of {data['FailedCount']}" if entries else "none"
    _out.print(
        f"failed: {shown}; queued: {data['Queued']}. "
        "Queue them again with `corral events redrive ID...` (or --all)."
    )


def _post(
    method: str, path: str, ids: list[str] | None, every: bool, endpoint_url: str | None
) -> dict[str, Any]:
    if bool(ids) == every:
        raise fail("Name event ids, or give --all (not both).")
    body: dict[str, Any] = {"All": True} if every else {"Ids": ids}
    response = request(
        method,
        f"{endpoint(endpoint_url)}{path}",
        content=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
    )
    if response.status_code != 200:
        raise fail(explain(response))
    result: dict[str, Any] = response.json()
    return result


@app.command("redrive")
def redrive(
    ids: IdsArgument = None, every: AllOption = False, endpoint_url: EndpointOption = None
) -> None:
    """Queue failed entries again, as new events (they keep their request ids)."""
    got = _post("POST", "/corral/v1/events/failed/redrive", ids, every, endpoint_url)
    _out.print(f"queued again: {got['Redriven']}")


@app.command("purge")
def purge(
    ids: IdsArgument = None, every: AllOption = False, endpoint_url: EndpointOption = None
) -> None:
    """Forget failed entries."""
    got = _post("DELETE", "/corral/v1/events/failed", ids, every, endpoint_url)
    _out.print(f"purged: {got['Purged']}")

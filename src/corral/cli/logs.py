"""``corral logs FUNCTION``: what a function (or a capacity provider) logged.

One line per record: time, the environment's stream (shortened to its version and the start
of the environment id), the last 8 characters of the request id, the message.
``--request-id`` keeps one request, ``--since``/``--until`` a window (``10m``, ``2h``, or
epoch milliseconds), ``--follow`` keeps printing new records until Ctrl+C, ``--json`` prints
one JSON object per line for scripts.
"""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from corral.cli.common import endpoint, explain, fail, request, subject

__all__ = ["logs"]

_out = Console(highlight=False, soft_wrap=True)
_PAGE = 1000
_FOLLOW_INTERVAL_S = 1.0


def _short_stream(stream: str) -> str:
    """``2026/11/28/[1]0d31792e...`` -> ``[1]0d31792e``."""
    tail = stream.rsplit("/", 1)[-1]
    if "]" in tail:
        version, _, ident = tail.partition("]")
        return f"{version}]{ident[:8]}"
    return tail


def _print(event: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(event), flush=True)
        return
    stamp = time.strftime("%H:%M:%S", time.localtime(event["timestamp"] / 1000))
    millis = event["timestamp"] % 1000
    # The end of the id: request ids start with the time (UUID v7), so their starts repeat.
    request_id = event["requestId"][-8:] if event["requestId"] else "-"
    _out.print(
        f"[dim]{stamp}.{millis:03d}[/] [cyan]{_short_stream(event['logStreamName'])}[/] "
        f"[magenta]{request_id:<8}[/] {escape(event['message'].rstrip())}"
    )


def logs(
    function_name: Annotated[
        str | None, typer.Argument(help="Function name or ARN (or use --capacity-provider).")
    ] = None,
    qualifier: Annotated[
        str | None, typer.Option(help="Only this version (or the version of this alias).")
    ] = None,
    request_id: Annotated[
        str | None, typer.Option("--request-id", help="Only the lines of this request.")
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="From this long ago (30s, 10m, 2h, 1d) or epoch ms.")
    ] = None,
    until: Annotated[str | None, typer.Option(help="Up to then (same forms as --since).")] = None,
    capacity_provider: Annotated[
        str | None,
        typer.Option("--capacity-provider", help="A capacity provider's system log instead."),
    ] = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new records (Ctrl+C stops).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    endpoint_url: Annotated[
        str | None, typer.Option(help="Corral's URL [CORRAL_ENDPOINT_URL].")
    ] = None,
) -> None:
    """Print the logs of a function (every line knows its request), oldest first."""
    params = {"limit": str(_PAGE), **subject(function_name, qualifier, capacity_provider)}
    for key, value in (
        ("requestId", request_id),
        ("since", since),
        ("until", until),
    ):
        if value:
            params[key] = value
    url = f"{endpoint(endpoint_url)}/corral/v1/logs"
    token = "0"
    try:
        while True:
            response = request("GET", url, params={**params, "nextToken": token})
            if response.status_code != 200:
                raise fail(explain(response))
            page = response.json()
            for event in page["events"]:
                _print(event, as_json)
            token = page["nextToken"]
            if len(page["events"]) == _PAGE:
                continue  # more right away
            if not follow:
                return
            time.sleep(_FOLLOW_INTERVAL_S)
    except KeyboardInterrupt:
        return

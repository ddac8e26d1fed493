"""``corral keys create|list|delete``: the API keys of a running Corral (admin key needed).

``create`` prints the secret once; Corral cannot show it again. ``--json`` prints
``{"AccessKeyId": ..., "SecretAccessKey": ...}`` (and the key's role and patterns) for
scripts.
"""

from __future__ import annotations

import datetime as dt
import json
import urllib.parse
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from corral.cli.common import endpoint, explain, fail, request

__all__ = ["app"]

app = typer.Typer(help="Manage the API keys of a running Corral (needs an admin key).")
_out = Console()

EndpointOption = Annotated[str | None, typer.Option(help="Corral's URL [CORRAL_ENDPOINT_URL].")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


@app.command("create")
def create(
    role: Annotated[
        str, typer.Option(help="admin (everything) or invoke (Invoke on matching functions).")
    ] = "invoke",
    function_pattern: Annotated[
        list[str] | None,
        typer.Option(
            "--function-pattern",
            help="Functions an invoke key may invoke, shell-style ('orders-*'); repeatable.",
        ),
    ] = None,
    name: Annotated[str | None, typer.Option(help="A name to recognise the key by.")] = None,
    endpoint_url: EndpointOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create a key and print its secret (shown this once)."""
    body: dict[str, Any] = {"Role": role, "FunctionPatterns": function_pattern or []}
    if name is not None:
        body["Name"] = name
    response = request(
        "POST",
        f"{endpoint(endpoint_url)}/corral/v1/keys",
        content=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
    )
    if response.status_code != 201:
        raise fail(explain(response))
    key = response.json()
    if as_json:
        print(json.dumps(key))
        return
    _out.print(_table([key], secret=True))
    _out.print(
        "The secret is shown this once. To use the key:\n"
        f"  export AWS_ACCESS_KEY_ID={key['AccessKeyId']}\n"
        f"  export AWS_SECRET_ACCESS_KEY={key['SecretAccessKey']}"
    )


@app.command("list")
def list_keys(endpoint_url: EndpointOption = None, as_json: JsonOption = False) -> None:
    """List the keys (never their secrets)."""
    response = request("GET", f"{endpoint(endpoint_url)}/corral/v1/keys")
    if response.status_code != 200:
        raise fail(explain(response))
    keys: list[dict[str, Any]] = response.json()["Keys"]
    if as_json:
        print(json.dumps(keys))
        return
    _out.print(_table(keys, secret=False))


@app.command("delete")
def delete(
    access_key_id: Annotated[str, typer.Argument(help="The key's AccessKeyId.")],
    endpoint_url: EndpointOption = None,
) -> None:
    """Delete a key: its signatures are refused from now on."""
    quoted = urllib.parse.quote(access_key_id, safe="")
    response = request("DELETE", f"{endpoint(endpoint_url)}/corral/v1/keys/{quoted}")
    if response.status_code != 204:
        raise fail(explain(response))
    _out.print(f"deleted {access_key_id}")


def _table(keys: list[dict[str, Any]], secret: bool) -> Table:
    table = Table("AccessKeyId", "Name", "Role", "Functions", "Created")
    if secret:
        table.add_column("SecretAccessKey")
    for key in keys:
        created = dt.datetime.fromtimestamp(key["CreatedAt"], dt.UTC).strftime("%Y-%m-%d %H:%M")
        row = [
            key["AccessKeyId"],
            key["Name"],
            key["Role"],
            ", ".join(key["FunctionPatterns"]) or "(all)",
            created,
        ]
        if secret:
            row.append(key["SecretAccessKey"])
        table.add_row(*row)
    return table

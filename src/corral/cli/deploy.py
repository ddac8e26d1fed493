"""``corral deploy TEMPLATE``: a SAM or CloudFormation template onto a running Corral, and
``corral stacks list|show|delete``.

A deploy shows its plan (create, update, delete per resource, and what Corral skips),
applies it with progress, records the stack on the server and prints the template's
outputs (``--json`` for scripts). A second deploy of the same template changes nothing and
says so. ``--watch`` then redeploys whenever the functions' code changes (Python code is
compiled first: a syntax error is shown and the old code keeps serving).
"""

from __future__ import annotations

import json
import signal
import urllib.parse
from pathlib import Path
from typing import Annotated, Any

import boto3
import typer
from botocore.config import Config
from rich.console import Console
from rich.table import Table

from corral.cli.common import credentials, endpoint, explain, fail, request
from corral.core import errors
from corral.core.settings import Settings
from corral.deploy.apply import HANDLERS, Target
from corral.deploy.plan import Action, Step
from corral.deploy.stack import Deployment, apply, prepare, recorded_of

__all__ = ["deploy", "stacks_app"]

_out = Console()
stacks_app = typer.Typer(help="Stacks made by `corral deploy`.")

EndpointOption = Annotated[str | None, typer.Option(help="Corral's URL [CORRAL_ENDPOINT_URL].")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
_STYLE = {
    Action.CREATE: "green",
    Action.UPDATE: "yellow",
    Action.DELETE: "red",
    Action.KEEP: "dim",
}


def _stack_path(url: str, name: str) -> str:
    return f"{url}/corral/v1/stacks/{urllib.parse.quote(name, safe='')}"


def _record(url: str, name: str) -> dict[str, Any] | None:
    response = request("GET", _stack_path(url, name))
    if response.status_code == 404:
        return None
    if response.status_code != 200:
        raise fail(explain(response))
    found: dict[str, Any] = response.json()
    return found


def _save(url: str, record: dict[str, Any]) -> None:
    response = request(
        "PUT",
        _stack_path(url, record["Name"]),
        content=json.dumps(record).encode(),
        headers={"content-type": "application/json"},
    )
    if response.status_code != 200:
        raise fail(f"the stack was deployed but its record was not kept: {explain(response)}")


def _target(url: str, stack: str, as_json: bool) -> Target:
    """The Lambda client (signed with the key client commands use) and the account."""
    state = request("GET", f"{url}/corral/v1/state")
    if state.status_code != 200:
        raise fail(explain(state))
    found = credentials(url)
    if found is None:
        raise fail(
            f"no key to sign with for {url}: run where the server keeps its data, or set "
            "AWS_PROFILE / AWS_ACCESS_KEY_ID (an admin key)"
        )
    frozen = found.credentials.get_frozen_credentials()
    region = state.json().get("region") or Settings.from_env().region
    # A session of its own: the process's default one may have read other settings.
    lam = boto3.session.Session().client(
        "lambda",
        endpoint_url=url,
        region_name=region,
        aws_access_key_id=frozen.access_key,
        aws_secret_access_key=frozen.secret_key,
        config=Config(retries={"total_max_attempts": 3}, read_timeout=300),
    )

    def say(message: str) -> None:
        if not as_json:
            _out.print(f"  {message}", highlight=False)

    return Target(lam, stack, region, state.json().get("accountId", ""), {}, say)


def _plan_table(deployment: Deployment) -> Table:
    table = Table(title=f"plan for stack {deployment.stack}", title_justify="left")
    for column in ("action", "resource", "type", "note"):
        table.add_column(column)
    for step in deployment.plan.steps:
        style = _STYLE[step.action]
        table.add_row(f"[{style}]{step.action.value}[/]", step.logical_id, step.type, step.why)
    for logical, kind in deployment.plan.skipped:
        table.add_row("[magenta]skipped[/]", logical, kind, "Corral does not deploy this type")
    return table


def _outputs(record: dict[str, Any]) -> None:
    if not record["Outputs"]:
        return
    table = Table(title="outputs", title_justify="left")
    for column in ("name", "value", "description"):
        table.add_column(column)
    for name, output in record["Outputs"].items():
        table.add_row(name, str(output["Value"]), output.get("Description", ""))
    _out.print(table)


def _overrides(values: list[str] | None) -> dict[str, str]:
    found: dict[str, str] = {}
    for item in values or []:
        for pair in item.split():
            name, sep, value = pair.partition("=")
            if not sep or not name:
                raise fail(f"--parameter-overrides takes NAME=VALUE, not {pair!r}")
            found[name.removeprefix("ParameterKey=")] = value
    return found


def _run(
    path: Path, stack: str, overrides: dict[str, str], url: str, as_json: bool
) -> tuple[dict[str, Any], list[Path]]:
    """One deploy: prepare, show the plan, apply, record. Returns the record and the local
    code it deployed."""
    target = _target(url, stack, as_json)
    record = _record(url, stack)
    try:
        deployment = prepare(
            path,
            stack,
            overrides,
            region=target.region,
            account=target.account,
            record=record,
            target=target,
        )
    except errors.CorralError as exc:
        raise fail(f"{exc.message} (nothing was changed)") from None
    code = sorted({source.path for source in deployment.sources.values()})
    if not as_json:
        _out.print(_plan_table(deployment))
    if not deployment.plan.changes and record is not None:
        if not as_json:
            _out.print(f"No changes: stack {stack} is up to date.")
            _outputs(record)
        return record, code

    def on_step(step: Step, doing: str) -> None:
        if not as_json:
            _out.print(f"[bold]{doing}[/] {step.logical_id} ({step.type})", highlight=False)

    with _out.status("deploying...", spinner="dots") if not as_json else _Quiet():
        new = apply(deployment, target, on_step)
    _save(url, new)
    if new["Reason"]:
        raise fail(
            f"the deploy failed: {new['Reason']}. What this deploy created was removed; stack "
            f"{stack} is {new['Status']} and a fixed template deploys over it."
        )
    if not as_json:
        _out.print(f"[green]stack {stack}: {new['Status']}[/]")
        _outputs(new)
    return new, code


class _Quiet:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def deploy(
    template: Annotated[Path, typer.Argument(help="A SAM or CloudFormation template.")],
    stack_name: Annotated[
        str | None, typer.Option(help="The stack (default: the template's directory name).")
    ] = None,
    parameter_overrides: Annotated[
        list[str] | None,
        typer.Option(help="NAME=VALUE (repeatable, or several in one quoted string)."),
    ] = None,
    watch: Annotated[
        bool, typer.Option("--watch", help="Redeploy when the functions' code changes.")
    ] = False,
    endpoint_url: EndpointOption = None,
    as_json: JsonOption = False,
) -> None:
    """Deploy a SAM or CloudFormation template: functions, capacity providers, versions,
    aliases, URLs and event invoke configs."""
    url = endpoint(endpoint_url)
    path = template.resolve()
    stack = stack_name or _default_name(path)
    overrides = _overrides(parameter_overrides)
    record, code = _run(path, stack, overrides, url, as_json)
    if as_json:
        print(json.dumps(record))
    if watch:
        _watch(path, stack, overrides, url, code)


def _default_name(path: Path) -> str:
    name = "".join(c if c.isalnum() else "-" for c in path.parent.name).strip("-")
    return (name if name[:1].isalpha() else f"stack-{name}")[:128] or "stack"


def _watch(path: Path, stack: str, overrides: dict[str, str], url: str, code: list[Path]) -> None:
    """Redeploy on every change of the template or its functions' local code, until Ctrl+C.
    Python code that does not compile is not deployed (the old code keeps serving)."""
    import watchfiles

    watched = [path, *code]

    def relevant(_: watchfiles.Change, name: str) -> bool:
        changed = Path(name)
        return any(changed == w or w in changed.parents for w in watched)

    # Ctrl+C or SIGTERM ends the watch, even where SIGINT came ignored (a background job).
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, _interrupt)
    _out.print(f"watching {', '.join(str(w) for w in watched)} (Ctrl+C to stop)")
    try:
        for changes in watchfiles.watch(path.parent, watch_filter=relevant, debounce=100, step=50):
            changed = sorted({Path(p) for _, p in changes})
            broken = [e for e in (_compile_error(f) for f in _python_files(code)) if e]
            if broken:
                for error in broken:
                    _out.print(f"[red]not deployed:[/] {error}")
                _out.print("the old code keeps serving; fix the file to deploy it")
                continue
            _out.print(f"changed: {', '.join(p.name for p in changed)}")
            try:
                _, code = _run(path, stack, overrides, url, False)
                watched = [path, *code]
            except typer.Exit:
                _out.print("the old code keeps serving; fix the template or code to deploy it")
    except KeyboardInterrupt:
        pass


def _interrupt(number: int, frame: object) -> None:
    raise KeyboardInterrupt


def _python_files(code: list[Path]) -> list[Path]:
    files: list[Path] = []
    for root in code:
        files.extend([root] if root.is_file() else sorted(root.rglob("*.py")))
    return [f for f in files if f.suffix == ".py"]


def _compile_error(path: Path) -> str | None:
    """A Python file's syntax error (what the function would fail its init with)."""
    if path.suffix != ".py" or not path.is_file():
        return None
    try:
        compile(path.read_bytes(), str(path), "exec")
    except SyntaxError as exc:
        return f"{path}:{exc.lineno}: {exc.msg}"
    except ValueError as exc:  # NUL bytes
        return f"{path}: {exc}"
    return None


@stacks_app.command("list")
def list_stacks(endpoint_url: EndpointOption = None, as_json: JsonOption = False) -> None:
    """The stacks, with their status and resources."""
    response = request("GET", f"{endpoint(endpoint_url)}/corral/v1/stacks")
    if response.status_code != 200:
        raise fail(explain(response))
    found: list[dict[str, Any]] = response.json()["Stacks"]
    if as_json:
        print(json.dumps(found))
        return
    table = Table("stack", "status", "resources", "skipped", "template")
    for stack in found:
        table.add_row(
            stack["Name"],
            stack["Status"],
            str(len(stack["Resources"])),
            str(len(stack.get("Skipped", []))),
            stack.get("Template", ""),
        )
    _out.print(table)


@stacks_app.command("show")
def show_stack(
    name: Annotated[str, typer.Argument(help="The stack.")],
    endpoint_url: EndpointOption = None,
    as_json: JsonOption = False,
) -> None:
    """A stack's resources (logical id, type, what it became) and outputs."""
    record = _record(endpoint(endpoint_url), name)
    if record is None:
        raise fail(f"no stack {name} (see `corral stacks list`)")
    if as_json:
        print(json.dumps(record))
        return
    table = Table(
        "resource",
        "type",
        "physical id",
        title=f"stack {name}: {record['Status']}",
        title_justify="left",
    )
    for resource in record["Resources"]:
        table.add_row(resource["LogicalId"], resource["Type"], resource["PhysicalId"])
    _out.print(table)
    if record.get("Reason"):
        _out.print(f"[red]last deploy:[/] {record['Reason']}")
    _outputs(record)


@stacks_app.command("delete")
def delete_stack(
    name: Annotated[str, typer.Argument(help="The stack.")],
    endpoint_url: EndpointOption = None,
) -> None:
    """Delete a stack's resources (dependents first), then its record."""
    url = endpoint(endpoint_url)
    record = _record(url, name)
    if record is None:
        raise fail(f"no stack {name} (see `corral stacks list`)")
    target = _target(url, name, False)
    for resource in reversed(list(recorded_of(record).values())):
        _out.print(f"[bold]deleting[/] {resource.logical_id} ({resource.type})", highlight=False)
        HANDLERS[resource.type].delete(target, resource)
    response = request("DELETE", _stack_path(url, name))
    if response.status_code != 204:
        raise fail(explain(response))
    _out.print(f"stack {name} deleted")

"""``corral runtimes list|install``: the runtimes functions can use (Python and Node.js)."""

from __future__ import annotations

import subprocess
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from corral.core.settings import Settings
from corral.sandbox.install import RuntimeUnavailable, prepare_runtime
from corral.sandbox.interpreters import (
    AWSLAMBDARIC_VERSION,
    NODE_RUNTIMES,
    SUPPORTED_RUNTIMES,
    RuntimeRegistry,
    find_host_interpreters,
)
from corral.sandbox.nodejs import NODE_VERSIONS, client_version, missing_build_tools

__all__ = ["app"]

app = typer.Typer(
    help="Manage the runtimes: a virtualenv with awslambdaric per Python runtime, Node.js "
    "with aws-lambda-ric per Node.js runtime."
)
_out = Console()


def _client_version(runtime: str) -> str:
    return client_version(runtime) if runtime in NODE_RUNTIMES else AWSLAMBDARIC_VERSION


@app.command("list")
def list_runtimes() -> None:
    """Show installed runtimes and what the others would be installed from."""
    settings = Settings.from_env()
    installed = RuntimeRegistry(settings.runtimes_dir).available()
    hosts = find_host_interpreters(settings.python_path)
    tools = missing_build_tools()
    table = Table(title=f"Runtimes in {settings.runtimes_dir}")
    table.add_column("runtime")
    table.add_column("status")
    table.add_column("version")
    table.add_column("runtime client")
    for runtime in SUPPORTED_RUNTIMES:
        ready = installed.get(runtime)
        client = "aws-lambda-ric" if runtime in NODE_RUNTIMES else "awslambdaric"
        if ready is not None:
            table.add_row(
                runtime,
                "[green]installed[/]",
                ready.python_version,
                f"{client} {ready.client_version}",
            )
        elif runtime in NODE_RUNTIMES and not tools:
            table.add_row(runtime, "installable", f"Node.js {NODE_VERSIONS[runtime]} from npm", "")
        elif runtime in NODE_RUNTIMES:
            table.add_row(runtime, f"[dim]needs: apt install {' '.join(tools)}[/]", "", "")
        elif runtime in hosts:
            table.add_row(runtime, "installable", str(hosts[runtime]), "")
        else:
            table.add_row(runtime, "[dim]no interpreter on this host[/]", "", "")
    _out.print(table)


@app.command("install")
def install(
    runtime: Annotated[
        list[str] | None,
        typer.Option("--runtime", help="Only these (e.g. python3.12, nodejs22.x)."),
    ] = None,
    force: Annotated[bool, typer.Option(help="Reinstall runtimes that are ready.")] = False,
) -> None:
    """Prepare every runtime this host can run (or only those named with --runtime)."""
    settings = Settings.from_env()
    installed = RuntimeRegistry(settings.runtimes_dir).available()
    hosts = find_host_interpreters(settings.python_path)
    tools = missing_build_tools()
    unknown = [name for name in runtime or () if name not in SUPPORTED_RUNTIMES]
    if unknown:
        _out.print(
            f"[red]Unknown runtime {', '.join(unknown)}.[/] Corral runs: "
            f"{', '.join(SUPPORTED_RUNTIMES)}."
        )
        raise typer.Exit(2)
    wanted = runtime or [*hosts, *(NODE_RUNTIMES if not tools else ())]
    if not runtime and tools:
        _out.print(
            f"[yellow]Node.js runtimes skipped: they need {', '.join(tools)} "
            f"(apt install {' '.join(tools)}).[/]"
        )
    if not wanted:
        _out.print(
            "[red]No python3.11+ interpreter found.[/] Install one (e.g. apt install python3)."
        )
        raise typer.Exit(1)
    failed = False
    for name in wanted:
        ready = installed.get(name)
        if ready is not None and ready.client_version == _client_version(name) and not force:
            language = "Node.js" if ready.is_node else "Python"
            _out.print(f"{name}: ready ({language} {ready.python_version})")
            continue
        try:
            prepare_runtime(settings.runtimes_dir, name, settings.python_path, say=_out.print)
        except RuntimeUnavailable as exc:
            _out.print(f"[yellow]{name}: {exc}; skipped[/]")
            failed = True
        except subprocess.CalledProcessError as exc:
            _out.print(f"[red]{name}: installation failed ({exc})[/]")
            _out.print(str(exc.stderr or "")[-2000:], markup=False)
            failed = True
    if failed:
        raise typer.Exit(1)

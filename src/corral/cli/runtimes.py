"""``corral runtimes list|install``: the Python runtimes functions can use."""

from __future__ import annotations

import subprocess
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from corral.core.settings import Settings
from corral.sandbox.interpreters import (
    AWSLAMBDARIC_VERSION,
    SUPPORTED_RUNTIMES,
    RuntimeRegistry,
    find_host_interpreters,
    install_runtime,
)

__all__ = ["app"]

app = typer.Typer(help="Manage the Python runtimes (one virtualenv with awslambdaric each).")
_out = Console()


@app.command("list")
def list_runtimes() -> None:
    """Show installed runtimes and the host interpreters that could back the others."""
    settings = Settings.from_env()
    installed = RuntimeRegistry(settings.runtimes_dir).available()
    hosts = find_host_interpreters(settings.python_path)
    table = Table(title=f"Runtimes in {settings.runtimes_dir}")
    table.add_column("runtime")
    table.add_column("status")
    table.add_column("python")
    for runtime in SUPPORTED_RUNTIMES:
        if runtime in installed:
            table.add_row(runtime, "[green]installed[/]", installed[runtime].python_version)
        elif runtime in hosts:
            table.add_row(runtime, "installable", str(hosts[runtime]))
        else:
            table.add_row(runtime, "[dim]no interpreter on this host[/]", "")
    _out.print(table)


@app.command("install")
def install(
    runtime: Annotated[
        list[str] | None, typer.Option("--runtime", help="Only these (e.g. python3.12).")
    ] = None,
    force: Annotated[bool, typer.Option(help="Reinstall runtimes that are ready.")] = False,
) -> None:
    """Create a virtualenv with awslambdaric for every runtime this host can run."""
    settings = Settings.from_env()
    installed = RuntimeRegistry(settings.runtimes_dir).available()
    hosts = find_host_interpreters(settings.python_path)
    wanted = runtime or list(hosts)
    if not wanted:
        _out.print(
            "[red]No python3.11+ interpreter found.[/] Install one (e.g. apt install python3)."
        )
        raise typer.Exit(1)
    failed = False
    for name in wanted:
        ready = installed.get(name)
        if ready is not None and ready.client_version == AWSLAMBDARIC_VERSION and not force:
            _out.print(f"{name}: ready (Python {ready.python_version})")
            continue
        if name not in hosts:
            _out.print(f"[yellow]{name}: no host interpreter found; skipped[/]")
            failed = True
            continue
        try:
            install_runtime(settings.runtimes_dir, name, hosts[name], say=_out.print)
        except subprocess.CalledProcessError as exc:
            _out.print(f"[red]{name}: installation failed ({exc})[/]")
            _out.print(str(exc.stderr or "")[-2000:], markup=False)
            failed = True
    if failed:
        raise typer.Exit(1)

"""``corral serve``: run the Lambda API and every execution environment until Ctrl+C.

Ctrl+C stops accepting connections, waits for in-flight invocations (at most
``--drain-timeout`` seconds), drains and stops every execution environment, and exits; a
second Ctrl+C exits at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
import uvicorn
import uvloop
from rich.console import Console
from rich.panel import Panel

from corral.api.app import create_app
from corral.api.protocol import LambdaHttpProtocol
from corral.api.services import Services
from corral.console.app import Console as WebConsole
from corral.core import errors
from corral.core.settings import Settings, is_loopback

__all__ = ["serve"]

_console = Console(stderr=True)


def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on [CORRAL_HOST].")] = None,
    port: Annotated[
        int | None, typer.Option(help="Port; 0 picks a free one [CORRAL_PORT, default 9000].")
    ] = None,
    auth: Annotated[
        str | None,
        typer.Option(
            help="sigv4: every call signed by a Corral key (default); none: no keys, loopback "
            "addresses only [CORRAL_AUTH]."
        ),
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="Where state is kept [CORRAL_DATA_DIR, default .corral].")
    ] = None,
    backend: Annotated[
        str | None,
        typer.Option(
            help="Where instances come from: local (slices of this host, the default) or "
            "ray (the nodes of a Ray cluster with the resource 'corral') [CORRAL_BACKEND]."
        ),
    ] = None,
    ray_address: Annotated[
        str | None,
        typer.Option(help="The Ray cluster's head, HOST:PORT [CORRAL_RAY_ADDRESS]."),
    ] = None,
    runtimes_dir: Annotated[
        Path | None, typer.Option(help="Installed Python runtimes [CORRAL_RUNTIMES_DIR].")
    ] = None,
    drain_timeout: Annotated[
        float | None, typer.Option(help="Seconds in-flight invocations get at shutdown.")
    ] = None,
    classic_idle_timeout: Annotated[
        float | None, typer.Option(help="Seconds before an idle classic environment stops.")
    ] = None,
    scale_interval: Annotated[
        float | None, typer.Option(help="Seconds between scaling ticks [CORRAL_SCALE_INTERVAL_S].")
    ] = None,
    scale_in_cooldown: Annotated[
        float | None,
        typer.Option(help="Seconds between scale-in steps [CORRAL_SCALE_IN_COOLDOWN_S]."),
    ] = None,
    instance_launch_delay: Annotated[
        float | None,
        typer.Option(help="Seconds an instance stays Pending [CORRAL_INSTANCE_LAUNCH_DELAY_S]."),
    ] = None,
    log_level: Annotated[
        str | None, typer.Option(help="Server log level: debug, info, warning, error.")
    ] = None,
) -> None:
    """Serve the Lambda API (boto3 / AWS CLI: --endpoint-url http://HOST:PORT)."""
    try:
        settings = Settings.from_env().with_overrides(
            host=host,
            port=port,
            auth=auth,
            data_dir=data_dir,
            backend=backend,
            ray_address=ray_address,
            runtimes_dir=runtimes_dir,
            drain_timeout_s=drain_timeout,
            classic_idle_timeout_s=classic_idle_timeout,
            scale_interval_s=scale_interval,
            scale_in_cooldown_s=scale_in_cooldown,
            instance_launch_delay_s=instance_launch_delay,
            log_level=log_level,
        )
    except errors.CorralError as exc:
        _console.print(f"[red]error:[/] {exc.message}")
        raise typer.Exit(2) from exc
    if settings.auth not in ("sigv4", "none"):
        _console.print(f"[red]error:[/] --auth {settings.auth!r}: use sigv4 (default) or none.")
        raise typer.Exit(2)
    if settings.auth == "none" and not is_loopback(settings.host):
        _console.print(
            f"[red]error:[/] refusing to listen on {settings.host} with --auth none: anyone "
            "who can reach that address could deploy and run code. Keep authentication on "
            "(the default, --auth sigv4), or listen on 127.0.0.1."
        )
        raise typer.Exit(2)
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # uvloop: the invoke path crosses the event loop three times per request.
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    sys.exit(asyncio.run(_serve(settings)))


async def _serve(settings: Settings) -> int:
    try:
        sock = socket.create_server((settings.host, settings.port))
    except OSError as exc:
        _console.print(
            f"[red]error:[/] cannot listen on {settings.host}:{settings.port}: "
            f"{os.strerror(exc.errno).lower() if exc.errno else exc}. "
            "Is another Corral (or another program) using that port? Pick another one with "
            "--port, or --port 0 for any free port."
        )
        return 3
    try:
        app = create_app(settings, ui=WebConsole)
    except errors.CorralError as exc:
        sock.close()
        _console.print(f"[red]error:[/] {exc.message}")
        return 2
    try:
        # Before serving: a backend that cannot start (a Ray cluster that does not answer)
        # is one clear line, not a traceback from inside the web server.
        await app.services.start()
    except errors.CorralError as exc:
        sock.close()
        _console.print(f"[red]error:[/] {exc.message}")
        await app.services.stop()
        return 2
    available = app.services.runtimes.available()
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop="none",
        http=LambdaHttpProtocol,
        lifespan="on",
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=int(settings.drain_timeout_s) or 1,
        server_header=False,
        proxy_headers=False,
    )
    # Known before the first request: function URLs are built from it.
    app.services.endpoint = f"http://{settings.host}:{sock.getsockname()[1]}"
    server = _Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]), name="uvicorn")
    while not server.started and not task.done():
        await asyncio.sleep(0.02)
    if task.done():
        _console.print("[red]error:[/] Corral could not start; the log above says why.")
        return 1
    port = sock.getsockname()[1]
    endpoint = f"http://{settings.host}:{port}"
    _announce(settings, endpoint, sorted(available), app.services)
    await task
    # Client commands look for a running server here: this one is gone.
    with contextlib.suppress(OSError):
        (settings.data_dir / "server.json").unlink()
    return 0


class _Server(uvicorn.Server):
    """uvicorn's server with Corral's signal handling.

    The first SIGINT/SIGTERM starts the graceful shutdown (stop accepting, let in-flight
    invocations finish, drain environments); a second one forces the exit. Unlike uvicorn's
    default, the signal is not re-raised afterwards, so a clean shutdown exits 0.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.handle_exit, sig, None)
        try:
            yield
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)


def _instances_line(backend: dict[str, object]) -> list[str]:
    if backend["name"] != "ray":
        return []
    return [
        f"instances: nodes of the Ray cluster at {backend['address']} "
        f"({backend['nodes']} with the resource 'corral' now)"
    ]


def _announce(settings: Settings, endpoint: str, runtimes: list[str], svc: Services) -> None:
    info = {"endpoint": endpoint, "pid": os.getpid()}
    (settings.data_dir / "server.json").write_text(json.dumps(info))
    sandbox = svc.sandbox.describe()
    lines = [
        f"[bold]Corral[/] is serving the Lambda API on [cyan]{endpoint}[/]",
        f"data: {settings.data_dir.resolve()}",
        "runtimes: "
        + (", ".join(runtimes) or "[red]none installed[/] (run `corral runtimes install`)"),
        f"sandbox: {sandbox['sandbox']} ({sandbox['isolation']}; network: {sandbox['network']})",
        *_instances_line(svc.backend.describe()),
        f"try: aws lambda list-functions --endpoint-url {endpoint}",
    ]
    exports: list[str] = []
    if settings.auth == "sigv4":
        credentials = settings.credentials_path.resolve()
        lines.insert(-1, f"auth: SigV4; the admin key is in {credentials} (profile corral)")
        exports = [
            f"export AWS_SHARED_CREDENTIALS_FILE={credentials}",
            "export AWS_PROFILE=corral",
            f"export AWS_DEFAULT_REGION={settings.region}",
        ]
    else:
        lines.insert(-1, "auth: [bold yellow]none[/] (--auth none: any local process may call)")
    _console.print(Panel("\n".join(lines), expand=False))
    if exports:
        _console.print("For boto3 and the AWS CLI:", highlight=False)
        for line in exports:  # unwrapped, to copy and paste
            _console.print(f"  {line}", soft_wrap=True, highlight=False)
    if settings.auth == "sigv4" and not is_loopback(settings.host):
        _console.print(
            "[bold yellow]note:[/] plain HTTP: signatures keep secrets off the wire, but "
            "payloads and answers travel in clear text; put a TLS proxy in front for other "
            "networks (docs/threat-model.md)."
        )
    for warning in svc.sandbox_warnings:
        _console.print(f"[bold yellow]warning:[/] {warning}")
    print(f"Corral is serving on {endpoint}", flush=True)

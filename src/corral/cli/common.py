"""What every client command shares: the endpoint, HTTP calls, and error output."""

from __future__ import annotations

from typing import Any

import httpx
import typer
from rich.console import Console

from corral.core.settings import Settings

__all__ = ["endpoint", "err", "error_message", "fail", "request", "subject"]

err = Console(stderr=True)


def endpoint(given: str | None) -> str:
    return (given or Settings.from_env().endpoint_url).rstrip("/")


def subject(
    function_name: str | None, qualifier: str | None, capacity_provider: str | None
) -> dict[str, str]:
    """The query parameters naming what a telemetry command reads: a function (and maybe
    a qualifier) or a capacity provider, exactly one of the two.

    Raises:
        typer.Exit: both or neither (after saying so).
    """
    if (function_name is None) == (capacity_provider is None):
        raise fail("name a function, or a capacity provider with --capacity-provider")
    if capacity_provider is not None:
        return {"capacityProvider": capacity_provider}
    assert function_name is not None
    return {"function": function_name, **({"qualifier": qualifier} if qualifier else {})}


def fail(message: str) -> typer.Exit:
    err.print(f"[red]error:[/] {message}")
    return typer.Exit(1)


def request(method: str, url: str, **kwargs: Any) -> httpx.Response:
    try:
        return httpx.request(method, url, timeout=960.0, **kwargs)
    except httpx.ConnectError as exc:
        target = httpx.URL(url)
        raise fail(
            f"cannot reach Corral at {target.scheme}://{target.netloc.decode()}: {exc}. Is "
            "`corral serve` running? Pass --endpoint-url or set CORRAL_ENDPOINT_URL."
        ) from exc


def error_message(response: httpx.Response) -> str:
    """The message of a Lambda error answer, or a short note if it is not one."""
    try:
        data = response.json() if response.content else {}
    except ValueError:
        data = None
    if not isinstance(data, dict):
        return (
            f"HTTP {response.status_code} from something that is not Corral: "
            f"{response.text[:200]!r}"
        )
    return str(data.get("message") or data.get("Message") or response.text)

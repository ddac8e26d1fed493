"""What every client command shares: the endpoint, the key, HTTP calls, and error output.

Which server and which key, in this order:

* the endpoint: ``--endpoint-url``, else ``CORRAL_ENDPOINT_URL``, else the server that keeps
  its data in ``CORRAL_DATA_DIR`` (``.corral`` by default) if it is running (it records its
  address in ``<data-dir>/server.json``), else ``http://127.0.0.1:9000``;
* the key: an explicit choice of the AWS SDKs (``AWS_PROFILE``, ``AWS_ACCESS_KEY_ID``) first;
  else the admin key in ``<data-dir>/credentials`` when ``server.json`` says it belongs to
  the server being called (never another server's: a key sent to the wrong server is
  refused, and says nothing useful); else the SDKs' default chain. A refusal says which key
  was used and where it came from.
"""

from __future__ import annotations

import json
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import botocore.auth
import botocore.awsrequest
import botocore.credentials
import botocore.session
import httpx
import psutil
import typer
from rich.console import Console

from corral.core.settings import Settings, is_loopback

__all__ = [
    "Key",
    "LocalServer",
    "credentials",
    "endpoint",
    "err",
    "error_message",
    "explain",
    "fail",
    "local_server",
    "reachable",
    "request",
    "same_server",
    "subject",
]

err = Console(stderr=True)


_DEFAULT_ENDPOINT = "http://127.0.0.1:9000"


@dataclass(frozen=True)
class LocalServer:
    """What ``corral serve`` recorded in its data directory (``server.json``)."""

    endpoint: str
    pid: int
    credentials_path: Path

    @property
    def running(self) -> bool:
        return psutil.pid_exists(self.pid)


def local_server(settings: Settings) -> LocalServer | None:
    """The server that keeps its data in ``settings.data_dir``, as it recorded itself."""
    try:
        data = json.loads((settings.data_dir / "server.json").read_text())
        return LocalServer(str(data["endpoint"]), int(data["pid"]), settings.credentials_path)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def endpoint(given: str | None) -> str:
    """The server a client command calls (see the module docstring)."""
    if given:
        return given.rstrip("/")
    settings = Settings.from_env()
    if settings.endpoint_url:
        return settings.endpoint_url.rstrip("/")
    local = local_server(settings)
    if local is not None and local.running:
        return reachable(local.endpoint)
    return _DEFAULT_ENDPOINT


def reachable(url: str) -> str:
    """``url`` with a wildcard listening address (``0.0.0.0``) replaced by loopback."""
    parts = urllib.parse.urlsplit(url)
    if parts.hostname in ("0.0.0.0", "::"):
        return f"{parts.scheme}://127.0.0.1:{parts.port}"
    return url.rstrip("/")


def same_server(a: str, b: str) -> bool:
    """Whether two endpoints reach the same local server: the same port and scheme, and the
    same host, loopback names counting as one (a wildcard listener answers on any)."""
    first, second = urllib.parse.urlsplit(a), urllib.parse.urlsplit(b)
    if (first.scheme, first.port) != (second.scheme, second.port):
        return False
    hosts = {first.hostname or "", second.hostname or ""}
    return len(hosts) == 1 or all(is_loopback(h) for h in hosts) or bool(hosts & {"0.0.0.0", "::"})


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


@dataclass(frozen=True)
class Key:
    """The key a request is signed with, and where it was found (said on a refusal)."""

    credentials: botocore.credentials.Credentials
    source: str


def credentials(target: str) -> Key | None:
    """The key client commands sign requests to ``target`` with (the module docstring)."""
    settings = Settings.from_env()
    session = botocore.session.Session()
    sdk = _sdk_key(session)
    profile = session.get_config_variable("profile")
    if sdk is not None and (profile is not None or sdk.method == "env"):
        shown = f"profile {profile}" if profile is not None else "AWS_ACCESS_KEY_ID"
        return Key(sdk, f"the AWS SDK settings ({shown})")
    local = local_server(settings)
    if local is not None and same_server(local.endpoint, target):
        key = _profile_key(local.credentials_path)
        if key is not None:
            return Key(key, f"{local.credentials_path}, the key of the server at {local.endpoint}")
    if sdk is not None:
        return Key(sdk, f"the AWS SDK settings ({sdk.method})")
    return None


def _profile_key(path: Path) -> botocore.credentials.Credentials | None:
    session = botocore.session.Session()
    session.set_config_variable("credentials_file", str(path))
    session.set_config_variable("profile", "corral")
    return _sdk_key(session)


# Sources of the SDKs' chain that ask the network (an EC2 or container metadata service):
# never for a local Corral.
_NETWORK_SOURCES = ("container-role", "iam-role")


def _sdk_key(session: botocore.session.Session) -> botocore.credentials.Credentials | None:
    """What the AWS SDKs' credential chain finds, without its network sources."""
    try:
        resolver = session.get_component("credential_provider")
        for name in _NETWORK_SOURCES:
            resolver.remove(name)
        found: botocore.credentials.Credentials | None = resolver.load_credentials()
    except Exception:  # a broken profile: as if none, the server will say what is missing
        found = None
    return found


def request(
    method: str,
    url: str,
    *,
    content: bytes = b"",
    params: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """Send a request to Corral, signed (SigV4) with ``credentials()`` if there are any."""
    full = str(httpx.URL(url, params=params)) if params else url
    sent = dict(headers or {})
    found = credentials(url)
    if found is not None:
        aws = botocore.awsrequest.AWSRequest(method=method, url=full, data=content, headers=sent)
        botocore.auth.SigV4Auth(found.credentials, "lambda", Settings.from_env().region).add_auth(
            aws
        )
        sent = dict(aws.headers.items())
    try:
        response = httpx.request(method, full, content=content, headers=sent, timeout=960.0)
        response.extensions["corral_key_source"] = None if found is None else found.source
        return response
    except httpx.ConnectError as exc:
        target = httpx.URL(url)
        raise fail(
            f"cannot reach Corral at {target.scheme}://{target.netloc.decode()}: {exc}. Is "
            "`corral serve` running? Pass --endpoint-url or set CORRAL_ENDPOINT_URL."
        ) from exc


def explain(response: httpx.Response) -> str:
    """``Error: message`` of a Lambda error answer, with what to do about refusals."""
    error = response.headers.get("x-amzn-errortype", f"HTTP {response.status_code}")
    hint = _HINTS.get(error, "")
    source = response.extensions.get("corral_key_source")
    if source and error in ("UnrecognizedClientException", "InvalidSignatureException"):
        hint += f"; signed with the key from {source}"
    return f"{error}: {error_message(response)}{hint}"


_HINTS = {
    "MissingAuthenticationTokenException": (
        " (no key for this server: run this where `corral serve` keeps its data "
        "(CORRAL_DATA_DIR), or set AWS_SHARED_CREDENTIALS_FILE=<data-dir>/credentials "
        "AWS_PROFILE=corral; a data directory's key is used only for the server it belongs to)"
    ),
    "UnrecognizedClientException": (
        " (the key is not one of this Corral's: `corral keys list` on the server shows them)"
    ),
    "InvalidSignatureException": " (check the secret, and that this machine's clock is right)",
    "AccessDeniedException": " (this needs an admin key)",
}


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

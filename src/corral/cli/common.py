"""What every client command shares: the endpoint, HTTP calls, and error output."""

from __future__ import annotations

import botocore.auth
import botocore.awsrequest
import botocore.credentials
import botocore.session
import httpx
import typer
from rich.console import Console

from corral.core.settings import Settings

__all__ = [
    "credentials",
    "endpoint",
    "err",
    "error_message",
    "explain",
    "fail",
    "request",
    "subject",
]

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


def credentials() -> botocore.credentials.Credentials | None:
    """The key client commands sign with: the admin key the local server wrote
    (``<data-dir>/credentials``, profile ``corral``), else whatever the AWS SDKs would use
    (``AWS_ACCESS_KEY_ID``..., ``AWS_PROFILE``...), else none."""
    settings = Settings.from_env()
    session = botocore.session.Session()
    if settings.credentials_path.is_file():
        session.set_config_variable("credentials_file", str(settings.credentials_path))
        session.set_config_variable("profile", "corral")
    try:
        found: botocore.credentials.Credentials | None = session.get_credentials()
    except Exception:  # a broken profile: sign nothing, the server will say what is missing
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
    found = credentials()
    if found is not None:
        aws = botocore.awsrequest.AWSRequest(method=method, url=full, data=content, headers=sent)
        botocore.auth.SigV4Auth(found, "lambda", Settings.from_env().region).add_auth(aws)
        sent = dict(aws.headers.items())
    try:
        return httpx.request(method, full, content=content, headers=sent, timeout=960.0)
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
    return f"{error}: {error_message(response)}{hint}"


_HINTS = {
    "MissingAuthenticationTokenException": (
        " (no key found: run this where `corral serve` keeps its data (CORRAL_DATA_DIR), "
        "or set AWS_SHARED_CREDENTIALS_FILE=<data-dir>/credentials AWS_PROFILE=corral)"
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

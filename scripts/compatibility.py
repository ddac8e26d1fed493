"""Print docs/compatibility.md: which operations of botocore's Lambda model Corral serves.

The operations come from botocore's Lambda service model, Corral's side from the ``ROUTES`` of
its route modules (read without starting a server) plus the Invoke endpoint, which is served
in front of the Starlette router. An operation is supported when a route has its HTTP method
and its path, where every placeholder (``{FunctionName}``, ``{Resource+}``, ``{alias}``)
stands for one path segment and the query part of botocore's ``requestUri`` is ignored.

Regenerate the page with::

    .venv/bin/python scripts/compatibility.py > docs/compatibility.md

Warnings (a Corral route that matches no operation, a note that no longer fits) go to stderr.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import botocore
import botocore.session
from botocore.model import ServiceModel
from starlette.routing import BaseRoute, Route

from corral.api import routes as routes_package
from corral.api.invoke import is_invoke
from corral.api.streaming import is_streaming_invoke

SERVICE = "lambda"
REGENERATE = ".venv/bin/python scripts/compatibility.py > docs/compatibility.md"

# Route modules as ``corral.api.app`` mounts them, by the name shown in the report.
ROUTE_MODULES: dict[str, Sequence[BaseRoute]] = routes_package.MODULES

# Invoke bypasses the Starlette router (``corral.api.invoke``); ``is_invoke`` confirms the path.
INVOKE_PATH = "/2015-03-31/functions/{FunctionName}/invocations"
STREAMING_PATH = "/2021-11-15/functions/{FunctionName}/response-streaming-invocations"

# Notes for operations Corral serves; shown only while the operation is served.
SERVED_NOTES: dict[str, str] = {
    "Invoke": (
        "RequestResponse, Event (durable queue, retried twice), DryRun; LogType=Tail; ClientContext"
    ),
    "InvokeWithResponseStream": (
        "chunks as the function writes them (Node.js streamifyResponse); errors mid-stream in "
        "InvokeComplete; buffered functions as one chunk; LogType=Tail; DryRun"
    ),
    "CreateFunction": (
        "ZipFile only; python3.11+ and nodejs22.x/nodejs24.x runtimes installed on the host; "
        "Layers, EFS, images and SnapStart refused"
    ),
    "UpdateFunctionCode": "ZipFile only",
    "GetFunction": "Code.Location is a download URL on the Corral server",
    "DeleteFunction": "with Qualifier, deletes one published version",
    "PublishVersion": "numbered versions and PublishTo=LATEST_PUBLISHED",
    "CreateAlias": "RoutingConfig with at most one additional version",
    "UpdateAlias": "RoutingConfig with at most one additional version",
    "CreateCapacityProvider": (
        "the local host is each provider's instance; VpcConfig is recorded, not applied"
    ),
    "GetCapacityProvider": "the local host is each provider's instance",
    "UpdateCapacityProvider": "the local host is each provider's instance",
    "DeleteCapacityProvider": "the local host is each provider's instance",
    "ListCapacityProviders": "the local host is each provider's instance",
    "PutFunctionScalingConfig": (
        "Managed Instances versions: Min/MaxExecutionEnvironments drive the scaler"
    ),
    "GetFunctionScalingConfig": "Managed Instances versions",
    "PutFunctionConcurrency": "reserved concurrency, enforced for classic functions",
    "GetFunctionConcurrency": "reserved concurrency, enforced for classic functions",
    "DeleteFunctionConcurrency": "reserved concurrency, enforced for classic functions",
    "GetAccountSettings": "limits from the server's settings",
    "TagResource": "functions and capacity providers",
    "UntagResource": "functions and capacity providers",
    "ListTags": "functions and capacity providers",
}

# Notes for operations Corral does not serve; shown only while the operation is missing.
MISSING_NOTES: dict[str, str] = {
    "InvokeAsync": "not applicable: deprecated; use Invoke with InvocationType=Event",
}

# Notes for groups of missing operations, by a part of the operation name; first match wins.
MISSING_GROUPS: tuple[tuple[str, str], ...] = (
    ("Layer", "not yet: layers"),
    ("EventSourceMapping", "not yet: no pollers for SQS, Kinesis, DynamoDB Streams, Kafka or MQ"),
    ("FunctionUrl", "not yet: function URLs"),
    ("CodeSigning", "not applicable: Corral does not verify code signatures (AWS Signer)"),
    ("DurableExecution", "not yet: durable functions"),
    ("Permission", "not applicable: Corral has no IAM and does not authorize callers"),
    ("Policy", "not applicable: Corral has no IAM and does not authorize callers"),
    (
        "ProvisionedConcurrency",
        "not yet (Managed Instances keep warm environments via PutFunctionScalingConfig)",
    ),
    (
        "EventInvokeConfig",
        "not yet: async retries follow the server's settings; no destinations",
    ),
    (
        "RecursionConfig",
        "not applicable: recursive-loop detection watches AWS triggers (SQS, SNS, S3)",
    ),
    (
        "RuntimeManagementConfig",
        "not applicable: runtimes are host interpreters (`corral runtimes install`)",
    ),
)
DEFAULT_MISSING_NOTE = "not yet"

_PLACEHOLDER = re.compile(r"\{[^{}/]+\}")
_SAMPLE_SEGMENT = "my-function"


@dataclass(frozen=True)
class ServedRoute:
    """One method on one path that Corral answers, and the module that defines it."""

    module: str
    method: str
    path: str


@dataclass(frozen=True)
class Operation:
    """One operation of botocore's model and what Corral makes of it."""

    name: str
    method: str
    request_uri: str
    supported: bool
    note: str


def route_key(method: str, path: str) -> tuple[str, str]:
    """Method and path with the query dropped and every placeholder made the same."""
    return method.upper(), _PLACEHOLDER.sub("{}", path.split("?", 1)[0])


def served_routes() -> list[ServedRoute]:
    """Every (method, path) of Corral's route modules, plus the Invoke endpoint."""
    routes: list[ServedRoute] = []
    for module, module_routes in ROUTE_MODULES.items():
        for route in module_routes:
            if not isinstance(route, Route):
                continue
            # Starlette adds HEAD to every GET route; Lambda has no HEAD operation.
            methods = sorted(m for m in route.methods or () if m != "HEAD")
            routes.extend(ServedRoute(module, method, route.path) for method in methods)
    for module, path, serves in (
        ("invoke", INVOKE_PATH, is_invoke),
        ("streaming", STREAMING_PATH, is_streaming_invoke),
    ):
        sample = _PLACEHOLDER.sub(_SAMPLE_SEGMENT, path)
        if not serves({"type": "http", "method": "POST", "path": sample}):
            raise SystemExit(f"corral.api.{module} no longer serves POST {path}")
        routes.append(ServedRoute(module, "POST", path))
    return routes


def note_for(name: str, supported: bool) -> str:
    """The note shown for an operation, chosen by whether Corral serves it."""
    if supported:
        return SERVED_NOTES.get(name, "")
    if name in MISSING_NOTES:
        return MISSING_NOTES[name]
    for part, note in MISSING_GROUPS:
        if part in name:
            return note
    return DEFAULT_MISSING_NOTE


def operations(model: ServiceModel, routes: Iterable[ServedRoute]) -> list[Operation]:
    """Every operation of the model, sorted by name, with its support and note."""
    served = {route_key(r.method, r.path) for r in routes}
    result: list[Operation] = []
    for name in sorted(model.operation_names):
        http = model.operation_model(name).http
        method, uri = str(http["method"]), str(http["requestUri"])
        supported = route_key(method, uri) in served
        result.append(Operation(name, method, uri, supported, note_for(name, supported)))
    return result


# Corral's own endpoints (state, logs, metrics, keys, health, code downloads).
_OWN_PATHS = ("/corral/", "/metrics", "/health")


def unmatched_routes(
    routes: Iterable[ServedRoute], ops: Sequence[Operation]
) -> list[tuple[ServedRoute, str]]:
    """Corral routes that match no operation, each with the likely reason."""
    by_key = {route_key(op.method, op.request_uri): op.name for op in ops}
    result: list[tuple[ServedRoute, str]] = []
    for route in routes:
        method, path = route_key(route.method, route.path)
        if (method, path) in by_key:
            continue
        if path.endswith("/") and (method, path.rstrip("/")) in by_key:
            reason = f"trailing-slash form of {by_key[(method, path.rstrip('/'))]}"
        elif route.path.startswith(_OWN_PATHS):
            reason = "Corral's own endpoint, not part of the Lambda API"
        else:
            reason = "matches no botocore operation: check the path for a typo"
        result.append((route, reason))
    return result


def paginated_operations(session: botocore.session.Session, names: Iterable[str]) -> list[str]:
    """The operations botocore has a paginator for, sorted."""
    model = session.get_paginator_model(SERVICE)
    result: list[str] = []
    for name in sorted(names):
        try:
            model.get_paginator(name)
        except ValueError:
            continue
        result.append(name)
    return result


def note_warnings(known: set[str], supported: set[str]) -> list[str]:
    """Notes that no longer fit: unknown operations, or served/missing the other way round."""
    warnings = [
        f"a note names {name}, which botocore does not know"
        for name in sorted(SERVED_NOTES.keys() | MISSING_NOTES.keys())
        if name not in known
    ]
    warnings += [
        f"SERVED_NOTES has {name}, which Corral does not serve"
        for name in sorted(SERVED_NOTES)
        if name in known and name not in supported
    ]
    warnings += [
        f"MISSING_NOTES has {name}, which Corral serves"
        for name in sorted(MISSING_NOTES)
        if name in supported
    ]
    return warnings


def unlisted_route_modules() -> list[str]:
    """Modules of ``corral.api.routes`` that define ``ROUTES`` but are not in ROUTE_MODULES."""
    unlisted: list[str] = []
    for info in pkgutil.iter_modules(routes_package.__path__):
        module = importlib.import_module(f"{routes_package.__name__}.{info.name}")
        if hasattr(module, "ROUTES") and info.name not in ROUTE_MODULES:
            unlisted.append(info.name)
    return sorted(unlisted)


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def render(session: botocore.session.Session) -> tuple[str, list[str]]:
    """The markdown page and the warnings found while making it."""
    model = session.get_service_model(SERVICE)
    routes = served_routes()
    ops = operations(model, routes)
    supported = {op.name for op in ops if op.supported}
    waiters = session.get_waiter_model(SERVICE)
    paginators = paginated_operations(session, model.operation_names)
    strays = unmatched_routes(routes, ops)

    warnings = [f"{r.method} {r.path} ({r.module}): {why}" for r, why in strays if "typo" in why]
    warnings += note_warnings(set(model.operation_names), supported)
    warnings += [
        f"corral.api.routes.{name} has ROUTES that this script does not read"
        for name in unlisted_route_modules()
    ]

    lines = [
        "# Lambda API compatibility",
        "",
        f"This page is generated by `scripts/compatibility.py` from botocore {botocore.__version__}"
        f" (Lambda API {model.api_version}); do not edit it by hand. Regenerate it with"
        f" `{REGENERATE}`. An operation is supported when one of Corral's routes has its HTTP"
        " method and path (each placeholder stands for one path segment; the query part of"
        " botocore's requestUri is ignored)."
        f" Corral serves **{len(supported)} of {len(ops)}** operations.",
        "",
        "| Operation | HTTP | Supported | Notes |",
        "| --- | --- | --- | --- |",
    ]
    lines += [
        f"| {op.name} | `{op.method} {op.request_uri}` | {_yes(op.supported)} | {op.note} |"
        for op in ops
    ]
    lines += [
        "",
        "## Waiters and paginators",
        "",
        "| Waiter | Operation | Supported |",
        "| --- | --- | --- |",
    ]
    for name in sorted(waiters.waiter_names):
        operation = waiters.get_waiter(name).operation
        lines.append(f"| {name} | {operation} | {_yes(operation in supported)} |")
    lines += ["", "| Paginator | Supported |", "| --- | --- |"]
    lines += [f"| {name} | {_yes(name in supported)} |" for name in paginators]
    if strays:
        lines += [
            "",
            "## Corral routes outside the Lambda model",
            "",
            "| Route | Why |",
            "| --- | --- |",
        ]
        lines += [f"| `{r.method} {r.path}` | {why} |" for r, why in strays]
    return "\n".join(lines) + "\n", warnings


def main() -> None:
    page, warnings = render(botocore.session.get_session())
    for warning in warnings:
        print(f"compatibility.py: warning: {warning}", file=sys.stderr)
    sys.stdout.write(page)


if __name__ == "__main__":
    main()

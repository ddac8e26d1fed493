"""``GET /corral/v1/logs``: stored log records, as ``corral logs`` reads them.

Query parameters (one of the first three names the log group):

* ``function`` (name or ARN; its LoggingConfig.LogGroup or ``/aws/lambda/<name>``; a
  deleted function's logs stay readable), with ``qualifier`` (version or alias) to keep
  one version's streams;
* ``capacityProvider``: the provider's system log (instance lifecycle events);
* ``logGroup``: any group by name;
* ``requestId``, ``logStream``: exact matches;
* ``since``, ``until``: epoch milliseconds, or a duration back from now (``30s``, ``10m``,
  ``2h``, ``1d``);
* ``nextToken`` (from the previous page: records after it), ``limit`` (1-10000, default 1000).

Answers ``{"logGroupName", "events": [...], "nextToken"}``, oldest first; following a log
means asking again with the ``nextToken`` given.
"""

from __future__ import annotations

import re
import time

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from corral.api.http import handler, json_response
from corral.api.routes.common import services, version_or_404
from corral.core import errors, models
from corral.core.arns import parse_function_name
from corral.telemetry.logdb import LogQuery

__all__ = ["ROUTES", "parse_time_ms"]

_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_MAX_LIMIT = 10_000


def parse_time_ms(text: str, now_s: float, name: str) -> int:
    """Epoch milliseconds, or a duration back from ``now_s`` (``10m``).

    Raises:
        errors.InvalidRequest: neither.
    """
    if text.isdigit():
        return int(text)
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise errors.InvalidRequest(
            f"{name}={text!r} is neither epoch milliseconds nor a duration such as 30s, "
            "10m, 2h or 1d"
        )
    return int((now_s - float(match.group(1)) * _UNIT_S[match.group(2)]) * 1000)


def _int(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise errors.InvalidRequest(f"{name} must be a whole number from {low} to {high}")
    return int(raw)


@handler
async def log_events(request: Request) -> Response:
    svc = services(request)
    params = request.query_params
    version: str | None = None
    if params.get("function"):
        name, from_arn = parse_function_name(
            params["function"], svc.partition, allow_qualifier=True
        )
        qualifier = params.get("qualifier") or from_arn
        latest = svc.catalog.version(name, models.LATEST)
        if latest is None:
            group = models.LoggingConfig().group_for(name)  # deleted: its logs stay
            version = qualifier
        else:
            group = latest.spec.logging.group_for(name)
            if qualifier:
                version = version_or_404(svc, name, qualifier).version
    elif params.get("capacityProvider"):
        provider = svc.catalog.provider(params["capacityProvider"])
        if provider is None:
            raise errors.NotFound(f"Capacity provider not found: {params['capacityProvider']}")
        group = provider.system_log_group
    elif params.get("logGroup"):
        group = params["logGroup"]
    else:
        raise errors.InvalidRequest("Name a function, a capacityProvider or a logGroup")
    now = time.time()
    query = LogQuery(
        log_group=group,
        version=version,
        stream=params.get("logStream") or None,
        request_id=params.get("requestId") or None,
        since_ms=parse_time_ms(params["since"], now, "since") if params.get("since") else None,
        until_ms=parse_time_ms(params["until"], now, "until") if params.get("until") else None,
        after_id=_int(request, "nextToken", 0, 0, 2**62),
        limit=_int(request, "limit", 1000, 1, _MAX_LIMIT),
    )
    found = await svc.logs.query(query)
    events = [
        {
            "id": event.id,
            "timestamp": event.timestamp_ms,
            "logStreamName": event.log_stream,
            "requestId": event.request_id,
            "message": event.message,
        }
        for event in found
    ]
    next_token = str(found[-1].id) if found else str(query.after_id)
    return json_response(200, {"logGroupName": group, "events": events, "nextToken": next_token})


ROUTES = [Route("/corral/v1/logs", log_events, methods=["GET"])]

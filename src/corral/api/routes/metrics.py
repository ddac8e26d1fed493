"""``GET /metrics`` (Prometheus text format) and ``GET /corral/v1/metrics`` (recent history).

``/corral/v1/metrics?function=NAME[&qualifier=VERSION][&minutes=N]`` (or
``capacityProvider=NAME``) answers the series of the last N minutes (default 15, at most
60), one point a second: ``{"series": [{"name", "labels", "points": [[t, v], ...]}]}``.
Counters appear as per-second rates (``invocations_per_second``, ``errors_per_second``,
``throttles_per_second``) and ``duration_mean_seconds``; gauges under their Prometheus names.
"""

from __future__ import annotations

import time

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from corral.api.http import handler, json_response
from corral.api.routes.common import services, version_or_404
from corral.core import errors
from corral.core.arns import parse_function_name

__all__ = ["ROUTES"]


@handler
async def prometheus(request: Request) -> Response:
    if services(request).settings.metrics == "off":
        return Response("# metrics are off (CORRAL_METRICS=off)\n", media_type="text/plain")
    body = generate_latest(request.app.state.prometheus)
    return Response(body, headers={"Content-Type": CONTENT_TYPE_LATEST})


@handler
async def history(request: Request) -> Response:
    svc = services(request)
    params = request.query_params
    labels: dict[str, str] = {}
    if params.get("function"):
        name, from_arn = parse_function_name(
            params["function"], svc.partition, allow_qualifier=True
        )
        labels["function"] = name
        qualifier = params.get("qualifier") or from_arn
        if qualifier:
            labels["version"] = version_or_404(svc, name, qualifier).version
    elif params.get("capacityProvider"):
        if svc.catalog.provider(params["capacityProvider"]) is None:
            raise errors.NotFound(f"Capacity provider not found: {params['capacityProvider']}")
        labels["capacity_provider"] = params["capacityProvider"]
    else:
        raise errors.InvalidRequest("Name a function or a capacityProvider")
    raw = params.get("minutes", "15")
    if not raw.isdigit() or not 1 <= int(raw) <= 60:
        raise errors.InvalidRequest("minutes must be a whole number from 1 to 60")
    since = time.time() - int(raw) * 60
    series = [
        {
            "name": name,
            "labels": dict(pairs),
            "points": [[round(p.timestamp_s, 3), p.value] for p in points],
        }
        for (name, pairs), points in sorted(svc.history.select(labels, since).items())
    ]
    return json_response(200, {"series": series})


ROUTES = [
    Route("/metrics", prometheus, methods=["GET"]),
    Route("/corral/v1/metrics", history, methods=["GET"]),
]

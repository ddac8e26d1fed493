"""Corral's asynchronous-event store: ``/corral/v1/events`` (queued count and what was given
up), ``/corral/v1/events/failed/redrive`` and ``DELETE /corral/v1/events/failed``.

What an async invocation or a destination record could not achieve (retries exhausted, too
old, function gone, a destination function that does not exist, with no OnFailure
destination to take its record) is kept here instead of being dropped as AWS drops it; a
user can read it, queue it again (``redrive``) or forget it. Admin keys only, like every
``/corral/v1`` path.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from corral.api.body import Body
from corral.api.http import handler, json_response, query, read_json
from corral.api.routes.common import services
from corral.core import errors
from corral.store.events import FailedEvent

__all__ = ["ROUTES"]


def _shape(failed: FailedEvent) -> dict[str, object]:
    data: dict[str, object] = {
        "Id": failed.id,
        "Kind": failed.kind,
        "FunctionName": failed.function_name,
        "Qualifier": failed.qualifier,
        "Reason": failed.reason,
        "Detail": failed.detail,
        "Attempts": failed.attempts,
        "Created": failed.created_s,
        "Failed": failed.failed_s,
        # Invoke takes JSON payloads only, and records are JSON: always text.
        "Payload": failed.payload.decode("utf-8", "replace"),
    }
    return data


@handler
async def list_events(request: Request) -> Response:
    svc = services(request)
    raw = query(request, "Limit") or "1000"
    if not raw.isdigit() or not 1 <= int(raw) <= 10000:
        raise errors.Validation(
            errors.constraint_message(
                raw[:64], "limit", "Member must have value between 1 and 10000"
            )
        )
    failed = await svc.async_invoker.failed(int(raw))
    return json_response(
        200,
        {
            "Queued": svc.async_invoker.pending,
            "FailedCount": svc.async_invoker.failed_count,
            "Failed": [_shape(f) for f in failed],
        },
    )


def _chosen(body: Body) -> list[str] | None:
    """``Ids`` named, or None for ``All``; one of the two is required."""
    ids = body.string_list("Ids", max_items=10000)
    every = body.boolean("All")
    if (ids is None) == (not every):
        raise errors.InvalidRequest("Give either Ids (a list of event ids) or All: true.")
    return ids


@handler
async def redrive(request: Request) -> Response:
    svc = services(request)
    ids = _chosen(await read_json(request, "RedriveFailedEvents"))
    if ids is None:
        ids = [f.id for f in await svc.async_invoker.failed(None)]
    queued = await svc.async_invoker.redrive(ids)
    return json_response(200, {"Redriven": queued})


@handler
async def purge(request: Request) -> Response:
    svc = services(request)
    ids = _chosen(await read_json(request, "PurgeFailedEvents"))
    return json_response(200, {"Purged": await svc.async_invoker.purge(ids)})


ROUTES = [
    Route("/corral/v1/events", list_events, methods=["GET"]),
    Route("/corral/v1/events/failed/redrive", redrive, methods=["POST"]),
    Route("/corral/v1/events/failed", purge, methods=["DELETE"]),
]

"""Stacks of ``corral deploy``: ``/corral/v1/stacks`` (list) and ``/corral/v1/stacks/{name}``
(get, put, delete the record). The deploy tool computes and applies plans through the Lambda
API; the server only keeps each stack's record, so every client sees the same stacks.
Admin keys only, like every ``/corral/v1`` path.
"""

from __future__ import annotations

import json
import re

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from corral.api.http import handler, json_response, read_body
from corral.api.routes.common import now_s, services
from corral.core import errors

__all__ = ["ROUTES"]

_NAME = re.compile(r"[a-zA-Z][-a-zA-Z0-9]{0,127}")


def _name(request: Request) -> str:
    name: str = request.path_params["name"]
    if not _NAME.fullmatch(name):
        raise errors.Validation(
            errors.constraint_message(
                name[:128],
                "stackName",
                f"Member must satisfy regular expression pattern: {_NAME.pattern}",
            )
        )
    return name


@handler
async def list_stacks(request: Request) -> Response:
    return json_response(200, {"Stacks": services(request).stacks.list()})


@handler
async def get_stack(request: Request) -> Response:
    record = services(request).stacks.get(_name(request))
    if record is None:
        raise errors.NotFound(f"Stack {request.path_params['name']} does not exist")
    return json_response(200, record)


@handler
async def put_stack(request: Request) -> Response:
    name = _name(request)
    try:
        record = json.loads(await read_body(request, "PutStack"))
    except ValueError as exc:
        raise errors.InvalidContent(f"a stack record is JSON: {exc}") from None
    if not isinstance(record, dict) or record.get("Name") != name:
        raise errors.InvalidRequest(f"a stack record is an object whose Name is {name}")
    services(request).stacks.put(name, record, now_s())
    return json_response(200, record)


@handler
async def delete_stack(request: Request) -> Response:
    name = _name(request)
    if not services(request).stacks.delete(name):
        raise errors.NotFound(f"Stack {name} does not exist")
    return json_response(204, None)


ROUTES = [
    Route("/corral/v1/stacks", list_stacks, methods=["GET"]),
    Route("/corral/v1/stacks/{name}", get_stack, methods=["GET"]),
    Route("/corral/v1/stacks/{name}", put_stack, methods=["PUT"]),
    Route("/corral/v1/stacks/{name}", delete_stack, methods=["DELETE"]),
]

"""Corral's API keys: ``/corral/v1/keys`` (list, create) and ``/corral/v1/keys/{id}``
(delete). Admin keys only, like every ``/corral/v1`` path (``api.gate``).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from corral.api.http import handler, json_response, read_json
from corral.api.routes.common import now_s, services
from corral.api.services import Services
from corral.auth.keyring import write_credentials
from corral.auth.policy import Role

__all__ = ["ROUTES"]


@handler
async def list_keys(request: Request) -> Response:
    keys = services(request).keys.list()
    return json_response(200, {"Keys": [k.public() for k in keys]})


@handler
async def create_key(request: Request) -> Response:
    body = await read_json(request, "CreateKey")
    svc = services(request)
    role = Role(body.string("Role", required=True, enum=tuple(r.value for r in Role)) or "")
    patterns = body.string_list("FunctionPatterns", max_items=100) or []
    name = body.string("Name", max_len=64) or _free_name(svc, role)
    key = svc.keys.create(role, patterns, name, now_s())
    return json_response(201, {**key.public(), "SecretAccessKey": key.secret})


def _free_name(svc: Services, role: Role) -> str:
    taken = {k.name for k in svc.keys.list()}
    return next(
        f"{role.value}-{n}" for n in range(1, len(taken) + 2) if f"{role.value}-{n}" not in taken
    )


@handler
async def delete_key(request: Request) -> Response:
    svc = services(request)
    svc.keys.delete(request.path_params["key_id"])
    # If it was the admin key local tools use, they get the oldest admin key left.
    write_credentials(svc.settings.credentials_path, svc.keys.admin(now_s()))
    return json_response(204, None)


ROUTES = [
    Route("/corral/v1/keys", list_keys, methods=["GET"]),
    Route("/corral/v1/keys", create_key, methods=["POST"]),
    Route("/corral/v1/keys/{key_id}", delete_key, methods=["DELETE"]),
]

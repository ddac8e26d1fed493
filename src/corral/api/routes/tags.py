"""TagResource, UntagResource, ListTags: functions and capacity providers."""

from __future__ import annotations

import dataclasses
import re

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from corral.api.http import handler, json_response, query_all, read_json
from corral.api.routes.common import new_revision, services
from corral.api.services import Services
from corral.core import errors, extras, models

__all__ = ["ROUTES"]

_RESOURCE = re.compile(
    r"arn:(aws[a-zA-Z-]*):lambda:(?P<region>[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d):(?P<account>\d{12}):"
    r"(?:function:(?P<function>[a-zA-Z0-9_-]+)(?::(?P<qualifier>\$LATEST|[a-zA-Z0-9_-]+))?"
    r"|capacity-provider:(?P<provider>[a-zA-Z0-9_-]{1,64}))"
)
_MAX_TAGS = 50


def _resource(svc: Services, raw: str) -> str:
    """The unqualified ARN of an existing taggable resource.

    Raises:
        errors.Validation, errors.InvalidRequest, errors.NotFound.
    """
    match = _RESOURCE.fullmatch(raw)
    if match is None:
        raise errors.Validation(
            errors.constraint_message(
                raw[:256],
                "resource",
                "Member must satisfy regular expression pattern: arn:(aws[a-zA-Z-]*):lambda:"
                r"(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:\d{12}:(function:"
                r"[a-zA-Z0-9-_]+(:(\$LATEST|[a-zA-Z0-9-_]+))?|capacity-provider:[a-zA-Z0-9-_]+)",
            )
        )
    if match.group("qualifier"):
        raise errors.InvalidRequest(
            "Tags on function aliases and versions are not supported. Please specify a "
            "function ARN."
        )
    wrong_place = (
        match.group("account") != svc.partition.account_id
        or match.group("region") != svc.partition.region
    )
    function = match.group("function")
    if function is not None:
        if wrong_place or svc.catalog.function(function) is None:
            raise errors.NotFound(f"Function not found: {raw}")
        return svc.partition.function_arn(function)
    provider = match.group("provider")
    if wrong_place or svc.catalog.provider(provider) is None:
        raise errors.NotFound(f"Capacity provider not found: {raw}")
    return svc.partition.capacity_provider_arn(provider)


@handler
async def tag_resource(request: Request) -> Response:
    svc = services(request)
    arn = _resource(svc, request.path_params["resource"])
    body = await read_json(request, "TagResource")
    tags = body.string_map("Tags")
    if not tags:
        raise errors.InvalidRequest("An error occurred and the request cannot be processed.")
    for key, value in tags.items():
        if not 1 <= len(key) <= 128 or len(value) > 256 or key.lower().startswith("aws:"):
            raise errors.InvalidRequest(f"Tag key or value is not valid: {key[:128]}")
    merged = {**svc.catalog.tags.get(arn), **tags}
    if len(merged) > _MAX_TAGS:
        raise errors.InvalidRequest("Number of tags exceeds resource tag limit.")
    if ":function:" in arn:
        extras.check_function_tags(merged)
    else:
        extras.check_provider_tags(tags)
    svc.catalog.tags.put(arn, merged)
    _touch(svc, arn)
    return json_response(204, None)


@handler
async def untag_resource(request: Request) -> Response:
    svc = services(request)
    arn = _resource(svc, request.path_params["resource"])
    keys = query_all(request, "tagKeys")
    if not keys:
        raise errors.Validation(
            errors.constraint_message(None, "tagKeys", "Member must not be null")
        )
    remaining = {k: v for k, v in svc.catalog.tags.get(arn).items() if k not in keys}
    svc.catalog.tags.put(arn, remaining)
    _touch(svc, arn)
    return json_response(204, None)


def _touch(svc: Services, arn: str) -> None:
    """Tagging a function gives its ``$LATEST`` a new revision id (recorded:
    TestLambdaTags::test_tag_lifecycle)."""
    match = _RESOURCE.fullmatch(arn)
    function = match.group("function") if match is not None else None
    latest = None if function is None else svc.catalog.version(function, models.LATEST)
    if latest is not None:
        svc.catalog.put_version(dataclasses.replace(latest, revision_id=new_revision()))


@handler
async def list_tags(request: Request) -> Response:
    svc = services(request)
    arn = _resource(svc, request.path_params["resource"])
    return json_response(200, {"Tags": svc.catalog.tags.get(arn)})


_T = "/2017-03-31/tags/{resource}"
ROUTES = [
    Route(_T, tag_resource, methods=["POST"]),
    Route(_T, untag_resource, methods=["DELETE"]),
    Route(_T, list_tags, methods=["GET"]),
]

"""CreateAlias, GetAlias, UpdateAlias, DeleteAlias, ListAliases."""

from __future__ import annotations

import dataclasses
import math

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from corral.api import shapes
from corral.api.body import Body
from corral.api.http import handler, json_response, query, read_json
from corral.api.routes.common import (
    check_revision,
    function_and_qualifier,
    latest_or_404,
    new_revision,
    paginate,
    services,
)
from corral.api.services import Services
from corral.core import errors, models

__all__ = ["ROUTES"]

_ALIAS_PATTERN = r"(?!^[0-9]+$)([a-zA-Z0-9-_]+)"
_VERSION_PATTERN = r"(\$LATEST(\.PUBLISHED)?|[0-9]+)"


def _alias_name(request: Request) -> str:
    name: str = request.path_params["alias"]
    Body({"Name": name}).string("Name", min_len=1, max_len=128, pattern=_ALIAS_PATTERN)
    return name


def _check_version(svc: Services, function: str, version: str) -> None:
    if svc.catalog.version(function, version) is None:
        raise errors.NotFound(
            f"Function not found: {svc.partition.function_arn(function, version)}"
        )


def _routing(svc: Services, function: str, primary: str, body: Body) -> dict[str, float]:
    routing = body.obj("RoutingConfig")
    if routing is None:
        return {}
    weights_raw = routing.raw("AdditionalVersionWeights") or {}
    if not isinstance(weights_raw, dict):
        raise routing.fail("AdditionalVersionWeights", weights_raw, "Member must be a map")
    weights: dict[str, float] = {}
    for version, weight in weights_raw.items():
        ok = isinstance(weight, int | float) and not isinstance(weight, bool)
        if not ok or not 0.0 <= float(weight) <= 1.0 or math.isnan(float(weight)):
            raise errors.Validation(
                errors.constraint_message(
                    "{" + f"{version}={weight}" + "}",
                    "routingConfig.additionalVersionWeights",
                    "Map value must satisfy constraint: [Member must have value less than or "
                    "equal to 1.0, Member must have value greater than or equal to 0.0, Member "
                    "must not be null]",
                )
            )
        weights[str(version)] = float(weight)
    _check_weights(svc, function, primary, weights)
    return weights


def _check_weights(svc: Services, function: str, primary: str, weights: dict[str, float]) -> None:
    """The routing rules, also for weights kept when only the primary version changes."""
    if len(weights) > 1:
        raise errors.InvalidRequest(
            "Number of items in AdditionalVersionWeights cannot be greater than 1"
        )
    for version in weights:
        if version == primary:
            raise errors.InvalidRequest(
                f"Invalid function version {version}. Function version {version} is already "
                "included in routing configuration."
            )
        if primary == models.LATEST or version == models.LATEST:
            raise errors.InvalidRequest(
                "$LATEST is not supported for an alias pointing to more than 1 version"
            )
        _check_version(svc, function, version)


@handler
async def create_alias(request: Request) -> Response:
    svc = services(request)
    function, _ = function_and_qualifier(request, allow_qualifier=False)
    body = await read_json(request, "CreateAlias")
    name = body.string("Name", required=True, min_len=1, max_len=128, pattern=_ALIAS_PATTERN)
    version = body.string("FunctionVersion", required=True, max_len=1024, pattern=_VERSION_PATTERN)
    description = body.string("Description", max_len=256) or ""
    assert name is not None and version is not None
    latest_or_404(svc, function)
    if svc.catalog.alias(function, name) is not None:
        raise errors.Conflict(f"Alias already exists: {svc.partition.function_arn(function, name)}")
    _check_version(svc, function, version)
    alias = models.Alias(
        function_name=function,
        name=name,
        function_version=version,
        description=description,
        routing_weights=_routing(svc, function, version, body),
        revision_id=new_revision(),
    )
    svc.catalog.put_alias(alias)
    return json_response(201, shapes.alias(svc.partition, alias))


@handler
async def get_alias(request: Request) -> Response:
    svc = services(request)
    function, _ = function_and_qualifier(request, allow_qualifier=False)
    name = _alias_name(request)
    latest_or_404(svc, function)
    alias = svc.catalog.alias(function, name)
    if alias is None:
        raise errors.NotFound(
            f"Cannot find alias arn: {svc.partition.function_arn(function, name)}"
        )
    return json_response(200, shapes.alias(svc.partition, alias))


def _description(body: Body, current: str) -> str:
    given = body.string("Description", max_len=256)
    return current if given is None else given


@handler
async def update_alias(request: Request) -> Response:
    svc = services(request)
    function, _ = function_and_qualifier(request, allow_qualifier=False)
    name = _alias_name(request)
    body = await read_json(request, "UpdateAlias")
    latest_or_404(svc, function)
    alias = svc.catalog.alias(function, name)
    if alias is None:
        raise errors.NotFound(f"Alias not found: {svc.partition.function_arn(function, name)}")
    check_revision(body.string("RevisionId"), alias.revision_id)
    version = body.string("FunctionVersion", max_len=1024, pattern=_VERSION_PATTERN)
    if version is not None:
        _check_version(svc, function, version)
    primary = version or alias.function_version
    if body.has("RoutingConfig"):
        weights = _routing(svc, function, primary, body)
    else:
        weights = dict(alias.routing_weights)
        _check_weights(svc, function, primary, weights)
    updated = dataclasses.replace(
        alias,
        function_version=primary,
        description=_description(body, alias.description),
        routing_weights=weights,
        revision_id=new_revision(),
    )
    svc.catalog.put_alias(updated)
    return json_response(200, shapes.alias(svc.partition, updated))


@handler
async def delete_alias(request: Request) -> Response:
    svc = services(request)
    function, _ = function_and_qualifier(request, allow_qualifier=False)
    name = _alias_name(request)
    latest_or_404(svc, function)
    if svc.catalog.alias(function, name) is not None:
        svc.catalog.delete_alias(function, name)
    return json_response(204, None)


@handler
async def list_aliases(request: Request) -> Response:
    svc = services(request)
    function, _ = function_and_qualifier(request, allow_qualifier=False)
    latest_or_404(svc, function)
    version = query(request, "FunctionVersion")
    aliases = [
        a for a in svc.catalog.aliases(function) if version is None or a.function_version == version
    ]
    page, marker = paginate(aliases, request, lambda a: a.name)
    data: dict[str, object] = {"Aliases": [shapes.alias(svc.partition, a) for a in page]}
    if marker:
        data["NextMarker"] = marker
    return json_response(200, data)


_AL = "/2015-03-31/functions/{function_name}/aliases"
ROUTES = [
    Route(_AL, create_alias, methods=["POST"]),
    Route(_AL, list_aliases, methods=["GET"]),
    Route(_AL + "/{alias}", get_alias, methods=["GET"]),
    Route(_AL + "/{alias}", update_alias, methods=["PUT"]),
    Route(_AL + "/{alias}", delete_alias, methods=["DELETE"]),
]

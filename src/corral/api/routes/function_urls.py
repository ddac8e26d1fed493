"""Create/Get/Update/Delete/ListFunctionUrlConfigs: a function's URLs (one for ``$LATEST``,
one per alias), with AWS's shapes, validation and errors.

The URL itself is served by ``api.function_url``; its address is a path under Corral's
(``http://HOST:PORT/lambda-url/<url-id>/``), see ``Services.function_url``.
"""

from __future__ import annotations

import re
import secrets
import string
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from corral.api.body import Body
from corral.api.http import handler, json_response, query, read_json
from corral.api.routes.common import now_s, paginate
from corral.api.routes.common import services as services_of
from corral.api.services import Services
from corral.core import errors, models
from corral.core.arns import parse_function_name
from corral.store.catalog import URL

__all__ = ["ROUTES"]

_QUALIFIER_PATTERN = r"((?!^\d+$)^[0-9a-zA-Z-_]+$)"
AUTH_TYPES = ("NONE", "AWS_IAM")
INVOKE_MODES = ("BUFFERED", "RESPONSE_STREAM")
_URL_ID_CHARS = string.ascii_lowercase + string.digits


_MISSING_FUNCTION = "Function does not exist"  # what Create, Update and List say
_MISSING = "The resource you requested does not exist."  # what Get and Delete say


def _target(request: Request, missing: str = _MISSING) -> tuple[Services, str, str]:
    """The function and qualifier (``$LATEST`` or an existing alias) a call names."""
    svc = services_of(request)
    name, qualifier = parse_function_name(
        request.path_params["function_name"], svc.partition, qualifier=query(request, "Qualifier")
    )
    if qualifier is not None and not re.fullmatch(_QUALIFIER_PATTERN, qualifier):
        raise errors.Validation(
            errors.constraint_message(
                qualifier[:128],
                "qualifier",
                f"Member must satisfy regular expression pattern: {_QUALIFIER_PATTERN}",
            )
        )
    if svc.catalog.version(name, models.LATEST) is None or (
        qualifier is not None and svc.catalog.alias(name, qualifier) is None
    ):
        raise errors.NotFound(missing)
    return svc, name, qualifier or models.LATEST


def _arn(svc: Services, config: models.FunctionUrlConfig) -> str:
    qualifier = None if config.qualifier == models.LATEST else config.qualifier
    return svc.partition.function_arn(config.function_name, qualifier)


def _existing(svc: Services, name: str, qualifier: str) -> models.FunctionUrlConfig:
    config = svc.catalog.url_config(name, qualifier)
    if config is None:
        raise errors.NotFound(_MISSING)
    return config


def _cors(body: Body) -> dict[str, Any] | None:
    """The ``Cors`` structure, checked against botocore's model; None when absent."""
    cors = body.obj("Cors")
    if cors is None:
        return None
    found: dict[str, Any] = {}
    credentials = cors.boolean("AllowCredentials")
    if credentials is not None:
        found["AllowCredentials"] = credentials
    for key, items, length in (
        ("AllowHeaders", 100, 1024),
        ("AllowMethods", 6, 6),
        ("AllowOrigins", 100, 253),
        ("ExposeHeaders", 100, 1024),
    ):
        values = cors.string_list(key, max_items=items)
        if values is None:
            continue
        for value in values:
            if len(value) > length or (key == "AllowOrigins" and not value):
                raise cors.fail(
                    key,
                    "[" + ", ".join(values) + "]",
                    f"Member must satisfy constraint: [Member must have length less than or "
                    f"equal to {length}, Member must have length greater than or equal to "
                    f"{1 if key == 'AllowOrigins' else 0}]",
                )
        found[key] = values
    max_age = cors.integer("MaxAge", low=0, high=86400)
    if max_age is not None:
        found["MaxAge"] = max_age
    return found


def _time(epoch_s: float) -> str:
    """AWS's format for URL times: microseconds and ``Z``."""
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _shape(
    svc: Services, config: models.FunctionUrlConfig, *, modified: bool, mode: bool = True
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "FunctionUrl": svc.function_url(config.url_id),
        "FunctionArn": _arn(svc, config),
        "AuthType": config.auth_type,
        "CreationTime": _time(config.created_s),
    }
    if mode:
        data["InvokeMode"] = config.invoke_mode
    if config.cors is not None:
        data["Cors"] = dict(config.cors)
    if modified:
        data["LastModifiedTime"] = _time(config.modified_s)
    return data


@handler
async def create_url(request: Request) -> Response:
    svc, name, qualifier = _target(request, _MISSING_FUNCTION)
    body = await read_json(request, "CreateFunctionUrlConfig")
    auth_type = body.string("AuthType", required=True, enum=AUTH_TYPES)
    invoke_mode = body.string("InvokeMode", enum=INVOKE_MODES) or "BUFFERED"
    cors = _cors(body)
    arn = svc.partition.function_arn(name, None if qualifier == models.LATEST else qualifier)
    if svc.catalog.url_config(name, qualifier) is not None:
        raise errors.Conflict(
            f"Failed to create function url config for [functionArn = {arn}]. Error message:  "
            "FunctionUrlConfig exists for this Lambda function"
        )
    now = now_s()
    url_id = "".join(secrets.choice(_URL_ID_CHARS) for _ in range(32))
    config = models.FunctionUrlConfig(
        function_name=name,
        qualifier=qualifier,
        url_id=url_id,
        auth_type=auth_type or "NONE",
        invoke_mode=invoke_mode,
        created_s=now,
        modified_s=now,
        cors=cors,
        invoke_mode_given=body.has("InvokeMode"),
    )
    svc.catalog.put_url_config(config)
    return json_response(201, _shape(svc, config, modified=False, mode=config.invoke_mode_given))


@handler
async def update_url(request: Request) -> Response:
    svc, name, qualifier = _target(request, _MISSING_FUNCTION)
    body = await read_json(request, "UpdateFunctionUrlConfig")
    auth_type = body.string("AuthType", enum=AUTH_TYPES)
    invoke_mode = body.string("InvokeMode", enum=INVOKE_MODES)
    cors = _cors(body)
    old = _existing(svc, name, qualifier)
    config = models.FunctionUrlConfig(
        function_name=name,
        qualifier=qualifier,
        url_id=old.url_id,
        auth_type=auth_type or old.auth_type,
        invoke_mode=invoke_mode or old.invoke_mode,
        created_s=old.created_s,
        modified_s=now_s(),
        cors=old.cors if cors is None else cors,
        invoke_mode_given=old.invoke_mode_given or invoke_mode is not None,
    )
    svc.catalog.put_url_config(config)
    return json_response(200, _shape(svc, config, modified=True, mode=config.invoke_mode_given))


@handler
async def get_url(request: Request) -> Response:
    svc, name, qualifier = _target(request)
    return json_response(200, _shape(svc, _existing(svc, name, qualifier), modified=True))


@handler
async def delete_url(request: Request) -> Response:
    svc, name, qualifier = _target(request)
    _existing(svc, name, qualifier)
    svc.catalog.delete_qualified(URL, name, qualifier)
    return Response(status_code=204)


@handler
async def list_urls(request: Request) -> Response:
    svc = services_of(request)
    name, _ = parse_function_name(
        request.path_params["function_name"], svc.partition, allow_qualifier=False
    )
    if svc.catalog.version(name, models.LATEST) is None:
        raise errors.NotFound(_MISSING_FUNCTION)
    configs = svc.catalog.url_configs(name)
    page, next_marker = paginate(configs, request, lambda c: c.qualifier, cap=50)
    data: dict[str, Any] = {"FunctionUrlConfigs": [_shape(svc, c, modified=True) for c in page]}
    if next_marker is not None:
        data["NextMarker"] = next_marker
    return json_response(200, data)


_URL = "/2021-10-31/functions/{function_name}/url"
ROUTES = [
    Route(_URL, create_url, methods=["POST"]),
    Route(_URL, get_url, methods=["GET"]),
    Route(_URL, update_url, methods=["PUT"]),
    Route(_URL, delete_url, methods=["DELETE"]),
    Route("/2021-10-31/functions/{function_name}/urls", list_urls, methods=["GET"]),
]

"""Put/Update/Get/Delete/ListFunctionEventInvokeConfigs: how asynchronous invocations of a
function, version or alias are retried, how old they may get, and where their records go.

As on AWS: Put replaces the whole configuration, Update changes only the fields it names
(a destination given as ``{}`` is removed), Get/Update/Delete of a qualifier without one is
``ResourceNotFoundException``. Destinations may be Lambda functions only: Corral has no
queues, topics, buses or buckets to send to, and says so (``InvalidParameterValueException``).
"""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from corral.api.body import Body
from corral.api.http import handler, json_response, read_json
from corral.api.routes.common import function_and_qualifier, latest_or_404, now_s, paginate
from corral.api.routes.common import services as services_of
from corral.api.services import Services
from corral.core import errors, models
from corral.store.catalog import EVENT_INVOKE

__all__ = ["ROUTES", "destination_function"]

_DESTINATION_PATTERN = (
    r"$|kafka://([^.]([a-zA-Z0-9\-_.]{0,248}))|arn:(aws[a-zA-Z0-9-]*):([a-zA-Z0-9\-])+:"
    r"((eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1})?:(\d{12})?:(.*)"
)
_FUNCTION_ARN = re.compile(
    r"arn:aws[a-zA-Z0-9-]*:lambda:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):function:"
    r"(?P<name>[a-zA-Z0-9-_]{1,64})(:(?P<qualifier>\$LATEST|[a-zA-Z0-9-_]{1,128}))?"
)
_SERVICES = {
    "sqs": "an Amazon SQS queue",
    "sns": "an Amazon SNS topic",
    "events": "an Amazon EventBridge event bus",
    "s3": "an Amazon S3 bucket",
    "kafka": "a Kafka topic",
}


def destination_function(arn: str, svc: Services) -> tuple[str, str | None]:
    """The function (and qualifier) a destination ARN names.

    Raises:
        errors.InvalidRequest: not a Lambda function of this account and region.
    """
    match = _FUNCTION_ARN.fullmatch(arn)
    if match is None or (match["region"], match["account"]) != (
        svc.partition.region,
        svc.partition.account_id,
    ):
        service = "kafka" if arn.startswith("kafka://") else (arn.split(":") + ["", ""])[2]
        what = _SERVICES.get(service, "not a Lambda function of this account and region")
        if service in _SERVICES:
            what = f"{what}, which Corral cannot deliver to"
        raise errors.InvalidRequest(
            f"The destination {arn} is {what}. Corral delivers destination records to Lambda "
            f"functions only: give a function ARN such as "
            f"{svc.partition.function_arn('my-function')} (SQS, SNS, EventBridge, S3 and Kafka "
            f"destinations are not supported)."
        )
    return match["name"], match["qualifier"]


def _target(request: Request) -> tuple[Services, str, str]:
    """The function and qualifier named, which must exist (``$LATEST`` when unqualified)."""
    svc = services_of(request)
    name, qualifier = function_and_qualifier(request)
    latest_or_404(svc, name)
    qualifier = qualifier or models.LATEST
    exists = (
        qualifier == models.LATEST
        or (qualifier.isdigit() and svc.catalog.version(name, qualifier) is not None)
        or (not qualifier.isdigit() and svc.catalog.alias(name, qualifier) is not None)
    )
    if not exists:
        raise errors.NotFound(f"Function not found: {svc.partition.function_arn(name, qualifier)}")
    return svc, name, qualifier


def _existing(svc: Services, name: str, qualifier: str) -> models.EventInvokeConfig:
    config = svc.catalog.event_invoke_config(name, qualifier)
    if config is None:
        raise errors.NotFound(
            f"The function {svc.partition.function_arn(name, qualifier)} doesn't have an "
            f"EventInvokeConfig"
        )
    return config


class _Fields:
    """The fields of a Put or Update body, validated; ``given`` says which were there."""

    def __init__(self, body: Body, svc: Services) -> None:
        self.given = {
            key for key in ("MaximumRetryAttempts", "MaximumEventAgeInSeconds") if body.has(key)
        }
        self.retries = body.integer("MaximumRetryAttempts", low=0, high=2)
        self.age = body.integer("MaximumEventAgeInSeconds", low=60, high=21600)
        self.destinations: dict[str, str | None] = {}
        config = body.obj("DestinationConfig")
        if config is None:
            return
        for key in ("OnSuccess", "OnFailure"):
            part = config.obj(key)
            if part is None:
                continue
            arn = part.string("Destination", max_len=350, pattern=_DESTINATION_PATTERN)
            if arn:
                destination_function(arn, svc)
            self.destinations[key] = arn or None


def _shape(svc: Services, config: models.EventInvokeConfig) -> dict[str, object]:
    data: dict[str, object] = {
        "LastModified": config.last_modified_s,
        "FunctionArn": svc.partition.function_arn(config.function_name, config.qualifier),
    }
    if config.max_retry_attempts is not None:
        data["MaximumRetryAttempts"] = config.max_retry_attempts
    if config.max_event_age_s is not None:
        data["MaximumEventAgeInSeconds"] = config.max_event_age_s
    data["DestinationConfig"] = {
        "OnSuccess": {"Destination": config.on_success} if config.on_success else {},
        "OnFailure": {"Destination": config.on_failure} if config.on_failure else {},
    }
    return data


@handler
async def put_event_invoke_config(request: Request) -> Response:
    svc, name, qualifier = _target(request)
    fields = _Fields(await read_json(request, "PutFunctionEventInvokeConfig"), svc)
    config = models.EventInvokeConfig(
        function_name=name,
        qualifier=qualifier,
        last_modified_s=now_s(),
        max_retry_attempts=fields.retries,
        max_event_age_s=fields.age,
        on_success=fields.destinations.get("OnSuccess"),
        on_failure=fields.destinations.get("OnFailure"),
    )
    svc.catalog.put_event_invoke_config(config)
    return json_response(200, _shape(svc, config))


@handler
async def update_event_invoke_config(request: Request) -> Response:
    svc, name, qualifier = _target(request)
    fields = _Fields(await read_json(request, "UpdateFunctionEventInvokeConfig"), svc)
    old = _existing(svc, name, qualifier)
    config = models.EventInvokeConfig(
        function_name=name,
        qualifier=qualifier,
        last_modified_s=now_s(),
        max_retry_attempts=(
            fields.retries if "MaximumRetryAttempts" in fields.given else old.max_retry_attempts
        ),
        max_event_age_s=fields.age
        if "MaximumEventAgeInSeconds" in fields.given
        else old.max_event_age_s,
        on_success=fields.destinations.get("OnSuccess", old.on_success),
        on_failure=fields.destinations.get("OnFailure", old.on_failure),
    )
    svc.catalog.put_event_invoke_config(config)
    return json_response(200, _shape(svc, config))


@handler
async def get_event_invoke_config(request: Request) -> Response:
    svc, name, qualifier = _target(request)
    return json_response(200, _shape(svc, _existing(svc, name, qualifier)))


@handler
async def delete_event_invoke_config(request: Request) -> Response:
    svc, name, qualifier = _target(request)
    _existing(svc, name, qualifier)
    svc.catalog.delete_qualified(EVENT_INVOKE, name, qualifier)
    return Response(status_code=204)


@handler
async def list_event_invoke_configs(request: Request) -> Response:
    svc = services_of(request)
    name, _ = function_and_qualifier(request, allow_qualifier=False)
    latest_or_404(svc, name)
    configs = svc.catalog.event_invoke_configs(name)
    page, next_marker = paginate(configs, request, lambda c: c.qualifier, cap=50)
    data: dict[str, object] = {"FunctionEventInvokeConfigs": [_shape(svc, c) for c in page]}
    if next_marker is not None:
        data["NextMarker"] = next_marker
    return json_response(200, data)


_EIC = "/2019-09-25/functions/{function_name}/event-invoke-config"
ROUTES = [
    Route(_EIC, put_event_invoke_config, methods=["PUT"]),
    Route(_EIC, update_event_invoke_config, methods=["POST"]),
    Route(_EIC, get_event_invoke_config, methods=["GET"]),
    Route(_EIC, delete_event_invoke_config, methods=["DELETE"]),
    Route(_EIC + "/list", list_event_invoke_configs, methods=["GET"]),
]

"""PutFunctionScalingConfig and GetFunctionScalingConfig (Managed Instances)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from corral.api.http import handler, json_response, query, read_json
from corral.api.routes.common import latest_or_404, services
from corral.api.services import Services
from corral.core import errors, models
from corral.core.arns import parse_function_name

__all__ = ["ROUTES"]

_QUALIFIER_PATTERN = r"(\$LATEST\.PUBLISHED|[0-9]+)"


def _target(request: Request) -> tuple[Services, models.FunctionVersion]:
    svc = services(request)
    name, _ = parse_function_name(
        request.path_params["function_name"], svc.partition, allow_qualifier=False
    )
    qualifier = query(request, "Qualifier")
    if qualifier is None or not _matches(qualifier):
        raise errors.Validation(
            errors.constraint_message(
                None if qualifier is None else qualifier[:128],
                "qualifier",
                "Member must not be null"
                if qualifier is None
                else f"Member must satisfy regular expression pattern: {_QUALIFIER_PATTERN}",
            )
        )
    latest = latest_or_404(svc, name)
    if latest.spec.managed is None:
        raise errors.InvalidRequest(
            "Function scaling configuration is only supported for functions with capacity "
            "provider configuration."
        )
    version = svc.catalog.version(name, qualifier)
    if version is None:
        raise errors.NotFound(f"Function not found: {svc.partition.function_arn(name, qualifier)}")
    return svc, version


def _matches(qualifier: str) -> bool:
    return qualifier == models.LATEST_PUBLISHED or qualifier.isdigit()


def _shape(config: models.ScalingConfig) -> dict[str, int]:
    data = {"MinExecutionEnvironments": config.effective_min}
    if config.max_environments is not None:
        data["MaxExecutionEnvironments"] = config.max_environments
    return data


@handler
async def put_function_scaling_config(request: Request) -> Response:
    svc, version = _target(request)
    body = await read_json(request, "PutFunctionScalingConfig")
    config_body = body.obj("FunctionScalingConfig")
    low = high = None
    if config_body is not None:
        low = config_body.integer("MinExecutionEnvironments", low=0, high=15000)
        high = config_body.integer("MaxExecutionEnvironments", low=0, high=15000)
    effective_low = models.ScalingConfig.DEFAULT_MIN if low is None else low
    if low == 0 and high != 0:
        raise errors.InvalidRequest(
            "MinExecutionEnvironments can be 0 only when MaxExecutionEnvironments is 0 too "
            "(that deactivates the version)."
        )
    if high is not None and effective_low > high:
        raise errors.InvalidRequest(
            f"MinExecutionEnvironments ({effective_low}) must not be greater than "
            f"MaxExecutionEnvironments ({high})."
        )
    svc.catalog.put_scaling(version.function_name, version.version, models.ScalingConfig(low, high))
    svc.scaler.poke()
    return json_response(202, {"FunctionState": version.state.value})


@handler
async def get_function_scaling_config(request: Request) -> Response:
    svc, version = _target(request)
    config = svc.catalog.scaling(version.function_name, version.version) or models.ScalingConfig()
    shape = _shape(config)
    return json_response(
        200,
        {
            "FunctionArn": svc.partition.function_arn(version.function_name, version.version),
            "AppliedFunctionScalingConfig": shape,
            "RequestedFunctionScalingConfig": shape,
        },
    )


_SC = "/2025-11-30/functions/{function_name}/function-scaling-config"
ROUTES = [
    Route(_SC, put_function_scaling_config, methods=["PUT"]),
    Route(_SC, get_function_scaling_config, methods=["GET"]),
]

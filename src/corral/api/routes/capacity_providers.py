"""CreateCapacityProvider, GetCapacityProvider, UpdateCapacityProvider,
DeleteCapacityProvider, ListCapacityProviders, ListFunctionVersionsByCapacityProvider."""

from __future__ import annotations

import dataclasses

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from corral.api import shapes
from corral.api.body import Body
from corral.api.function_spec import ROLE_PATTERN
from corral.api.http import handler, json_response, query, read_json
from corral.api.routes.common import now_s, paginate, services
from corral.api.services import Services
from corral.core import errors, extras, models
from corral.core.arns import capacity_provider_name

__all__ = ["ROUTES"]

_MAX_PROVIDERS = 1000
_CPU_METRICS = (
    "LambdaCapacityProviderAverageCPUUtilization",
    "LambdaCapacityProviderAverageGPUUtilization",
)
_INSTANCE_TYPE = r"[a-zA-Z0-9\.\*\-]+"


def _provider_or_404(svc: Services, raw: str) -> models.CapacityProvider:
    name = capacity_provider_name(raw, svc.partition)
    provider = svc.catalog.provider(name)
    if provider is None:
        raise errors.NotFound(
            f"Capacity provider not found: {svc.partition.capacity_provider_arn(name)}"
        )
    return provider


def _scaling(
    body: Body | None, current: models.CapacityProvider | None
) -> tuple[int, models.ScalingMode, tuple[models.ScalingPolicy, ...]]:
    max_vcpu = current.max_vcpu_count if current else 400
    mode = current.scaling_mode if current else models.ScalingMode.AUTO
    policies = current.scaling_policies if current else ()
    if body is None:
        return max_vcpu, mode, policies
    max_vcpu = body.integer("MaxVCpuCount", low=2, high=15000) or max_vcpu
    raw_mode = body.string("ScalingMode", enum=("Auto", "Manual"))
    listed = body.obj_list("ScalingPolicies", min_items=1, max_items=10)
    if listed is not None:
        policies = tuple(
            models.ScalingPolicy(
                metric=p.string("PredefinedMetricType", required=True, enum=_CPU_METRICS) or "",
                target_value=p.number("TargetValue", required=True, low=0.0, high=100.0) or 0.0,
            )
            for p in listed
        )
    if raw_mode is not None:
        mode = models.ScalingMode(raw_mode)
        if mode is models.ScalingMode.AUTO and listed is None:
            policies = ()
    elif listed is not None:
        mode = models.ScalingMode.MANUAL
    if mode is models.ScalingMode.MANUAL and not policies:
        raise errors.InvalidRequest(
            "ScalingMode Manual needs at least one entry in ScalingPolicies (a target for "
            "LambdaCapacityProviderAverageCPUUtilization)."
        )
    if mode is models.ScalingMode.AUTO and policies:
        raise errors.InvalidRequest(
            "ScalingPolicies can only be given with ScalingMode Manual; Auto picks its own target."
        )
    return max_vcpu, mode, policies


def _requirements(body: Body | None) -> models.InstanceRequirements:
    if body is None:
        return models.InstanceRequirements()
    architectures = body.string_list("Architectures", min_items=1, max_items=1)
    if architectures is not None and architectures[0] not in ("x86_64", "arm64"):
        raise body.fail(
            "Architectures",
            f"[{architectures[0]}]",
            "Member must satisfy constraint: [Member must satisfy enum value set: [x86_64, arm64]]",
        )
    allowed = body.string_list("AllowedInstanceTypes", max_items=400, item_pattern=_INSTANCE_TYPE)
    excluded = body.string_list("ExcludedInstanceTypes", max_items=400, item_pattern=_INSTANCE_TYPE)
    if allowed and excluded:
        raise errors.InvalidRequest(
            "Specify AllowedInstanceTypes or ExcludedInstanceTypes, not both."
        )
    return models.InstanceRequirements(
        architectures=tuple(architectures or ("x86_64",)),
        allowed_instance_types=tuple(allowed or ()),
        excluded_instance_types=tuple(excluded or ()),
    )


def _telemetry(body: Body | None, current: models.CapacityProvider | None) -> tuple[str, str]:
    level = current.system_log_level if current else ""
    group = current.log_group if current else ""
    logging = body.obj("LoggingConfig") if body is not None else None
    if logging is not None:
        level = logging.string("SystemLogLevel", enum=("DEBUG", "INFO", "WARN")) or level
        group = (
            logging.string("LogGroup", min_len=1, max_len=512, pattern=r"[\.\-_/#A-Za-z0-9]+")
            or group
        )
    return level, group


def _propagate(
    body: Body | None, current: models.CapacityProvider | None
) -> tuple[str, dict[str, str]]:
    mode = current.propagate_tags_mode if current else ""
    tags = dict(current.propagate_explicit_tags) if current else {}
    if body is not None:
        mode = body.string("Mode", enum=("None", "Explicit")) or mode
        tags = body.string_map("ExplicitTags") or ({} if mode != "Explicit" else tags)
        if len(tags) > 40:
            raise errors.InvalidRequest("PropagateTags.ExplicitTags holds at most 40 tags.")
    return mode, tags


@handler
async def create_capacity_provider(request: Request) -> Response:
    svc = services(request)
    body = await read_json(request, "CreateCapacityProvider")
    raw = body.string("CapacityProviderName", required=True, min_len=1, max_len=140)
    assert raw is not None
    name = capacity_provider_name(raw, svc.partition)
    vpc = body.obj("VpcConfig", required=True)
    assert vpc is not None
    subnets = vpc.string_list(
        "SubnetIds", min_items=1, max_items=16, item_pattern=r"subnet-[0-9a-z]*"
    )
    if subnets is None:
        raise vpc.fail("SubnetIds", None, "Member must not be null")
    groups = vpc.string_list("SecurityGroupIds", max_items=5, item_pattern=r"sg-[0-9a-zA-Z]*") or []
    permissions = body.obj("PermissionsConfig", required=True)
    assert permissions is not None
    role = permissions.string(
        "CapacityProviderOperatorRoleArn", required=True, max_len=10000, pattern=ROLE_PATTERN
    )
    assert role is not None
    max_vcpu, mode, policies = _scaling(body.obj("CapacityProviderScalingConfig"), None)
    level, group = _telemetry(body.obj("TelemetryConfig"), None)
    mode_tags, explicit = _propagate(body.obj("PropagateTags"), None)
    tags = body.string_map("Tags") or {}
    if len(tags) > 50:
        raise errors.InvalidRequest("Number of tags exceeds resource tag limit.")
    extras.check_provider_tags(tags)
    kms = (
        body.string("KmsKeyArn", max_len=10000, pattern=r"arn:(aws[a-zA-Z-]*)?:[a-z0-9-.]+:.*")
        or ""
    )
    if svc.catalog.provider(name) is not None:
        raise errors.Conflict(
            f"Capacity provider already exists: {svc.partition.capacity_provider_arn(name)}"
        )
    if len(svc.catalog.providers()) >= _MAX_PROVIDERS:
        raise errors.LimitExceeded(
            f"This account already has {_MAX_PROVIDERS} capacity providers, the most allowed.",
            lambda_error="CapacityProviderLimitExceededException",
        )
    provider = models.CapacityProvider(
        name=name,
        arn=svc.partition.capacity_provider_arn(name),
        state=models.CapacityProviderState.ACTIVE,
        subnet_ids=tuple(subnets),
        security_group_ids=tuple(groups),
        operator_role_arn=role,
        last_modified_s=now_s(),
        requirements=_requirements(body.obj("InstanceRequirements")),
        max_vcpu_count=max_vcpu,
        scaling_mode=mode,
        scaling_policies=policies,
        kms_key_arn=kms,
        propagate_tags_mode=mode_tags,
        propagate_explicit_tags=explicit,
        system_log_level=level,
        log_group=group,
    )
    svc.catalog.put_provider(provider)
    if tags:
        svc.catalog.tags.put(provider.arn, tags)
    return json_response(202, {"CapacityProvider": shapes.capacity_provider(provider)})


@handler
async def get_capacity_provider(request: Request) -> Response:
    svc = services(request)
    provider = _provider_or_404(svc, request.path_params["name"])
    return json_response(200, {"CapacityProvider": shapes.capacity_provider(provider)})


@handler
async def update_capacity_provider(request: Request) -> Response:
    svc = services(request)
    provider = _provider_or_404(svc, request.path_params["name"])
    body = await read_json(request, "UpdateCapacityProvider")
    max_vcpu, mode, policies = _scaling(body.obj("CapacityProviderScalingConfig"), provider)
    level, group = _telemetry(body.obj("TelemetryConfig"), provider)
    mode_tags, explicit = _propagate(body.obj("PropagateTags"), provider)
    updated = dataclasses.replace(
        provider,
        max_vcpu_count=max_vcpu,
        scaling_mode=mode,
        scaling_policies=policies,
        system_log_level=level,
        log_group=group,
        propagate_tags_mode=mode_tags,
        propagate_explicit_tags=explicit,
        last_modified_s=now_s(),
    )
    svc.catalog.put_provider(updated)
    svc.scaler.poke()
    return json_response(202, {"CapacityProvider": shapes.capacity_provider(updated)})


def _users(svc: Services, provider: models.CapacityProvider) -> list[models.FunctionVersion]:
    return [
        v
        for v in svc.catalog.all_versions()
        if v.spec.managed is not None and v.spec.managed.capacity_provider_name == provider.name
    ]


@handler
async def delete_capacity_provider(request: Request) -> Response:
    svc = services(request)
    provider = _provider_or_404(svc, request.path_params["name"])
    functions = {v.function_name for v in _users(svc, provider)}
    if functions:
        raise errors.Conflict(
            f"The capacity provider is currently in use by {len(functions)} functions. To "
            f"delete this capacity provider, first remove its association with {provider.arn}."
        )
    svc.catalog.delete_provider(provider.name, provider.arn)
    deleting = dataclasses.replace(provider, state=models.CapacityProviderState.DELETING)
    return json_response(202, {"CapacityProvider": shapes.capacity_provider(deleting)})


@handler
async def list_capacity_providers(request: Request) -> Response:
    svc = services(request)
    state = query(request, "State")
    if state is not None and state not in {s.value for s in models.CapacityProviderState}:
        raise errors.Validation(
            errors.constraint_message(
                state[:64],
                "state",
                "Member must satisfy enum value set: [Pending, Active, Failed, Deleting]",
            )
        )
    providers = [p for p in svc.catalog.providers() if state is None or p.state.value == state]
    page, marker = paginate(providers, request, lambda p: p.name, cap=50)
    data: dict[str, object] = {"CapacityProviders": [shapes.capacity_provider(p) for p in page]}
    if marker:
        data["NextMarker"] = marker
    return json_response(200, data)


@handler
async def list_function_versions_by_capacity_provider(request: Request) -> Response:
    svc = services(request)
    provider = _provider_or_404(svc, request.path_params["name"])
    versions = _users(svc, provider)
    page, marker = paginate(versions, request, lambda v: f"{v.function_name}:{v.version}", cap=50)
    data: dict[str, object] = {
        "CapacityProviderArn": provider.arn,
        "FunctionVersions": [
            {
                "FunctionArn": svc.partition.function_arn(v.function_name, v.version),
                "State": v.state.value,
            }
            for v in page
        ],
    }
    if marker:
        data["NextMarker"] = marker
    return json_response(200, data)


_CP = "/2025-11-30/capacity-providers"
ROUTES = [
    Route(_CP, create_capacity_provider, methods=["POST"]),
    Route(_CP, list_capacity_providers, methods=["GET"]),
    Route(_CP + "/{name}", get_capacity_provider, methods=["GET"]),
    Route(_CP + "/{name}", update_capacity_provider, methods=["PUT"]),
    Route(_CP + "/{name}", delete_capacity_provider, methods=["DELETE"]),
    Route(
        _CP + "/{name}/function-versions",
        list_function_versions_by_capacity_provider,
        methods=["GET"],
    ),
]

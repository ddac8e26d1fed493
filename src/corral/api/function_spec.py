"""Validate CreateFunction / UpdateFunctionConfiguration input into a ``FunctionSpec``.

Messages follow AWS's wording where it is known (LMI_FACTS §2, recorded AWS responses);
rules Lambda leaves unpublished (Managed Instances memory/vCPU arithmetic) get a message
that says what to change.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from corral.agent.runtime_env import RESERVED_VARIABLES
from corral.api.body import Body
from corral.core import errors, models
from corral.core.arns import Partition
from corral.sandbox.interpreters import SUPPORTED_RUNTIMES, Interpreter

__all__ = ["SpecContext", "apply_settings", "check_runtime"]

ROLE_PATTERN = r"arn:(aws[a-zA-Z-]*)?:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+"
_PROVIDER_ARN_PATTERN = (
    r"arn:aws[a-zA-Z-]*:lambda:(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:\d{12}:"
    r"capacity-provider:[a-zA-Z0-9-_]+"
)
# Node.js runtimes Managed Instances run ("Node.js 22 and later", LMI_FACTS.md).
_MANAGED_NODE_RUNTIMES = ("nodejs22.x", "nodejs24.x")
_LOG_LEVELS = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")
_SYSTEM_LEVELS = ("DEBUG", "INFO", "WARN")
# Runtimes AWS accepts for new functions today (shown in the enum message, AWS's order).
_AWS_RUNTIMES = (
    "nodejs20.x, python3.14, provided.al2023, python3.12, python3.13, nodejs24.x, nodejs22.x, "
    "java25, python3.10, python3.11, java21, ruby3.3, ruby3.4, ruby3.2, python3.8, python3.9, "
    "java17, nodejs16.x, dotnet10, dotnet8, java11, dotnet6, nodejs18.x, provided.al2, java8.al2"
)
# Runtimes of botocore's enum AWS no longer takes for new or updated functions.
_DEPRECATED_RUNTIMES = frozenset(
    (
        "nodejs nodejs4.3 nodejs4.3-edge nodejs6.10 nodejs8.10 nodejs10.x nodejs12.x "
        "nodejs14.x java8 python2.7 python3.6 python3.7 dotnetcore1.0 dotnetcore2.0 "
        "dotnetcore2.1 dotnetcore3.1 go1.x ruby2.5 ruby2.7 provided"
    ).split()
)
_TEXT_WITH_LEVEL = (
    'LogLevel is not supported when LogFormat is set to "Text". Remove LogLevel from your '
    'request or change the LogFormat to "JSON" and try again.'
)


@dataclass(frozen=True)
class SpecContext:
    """What validation needs to know about this Corral."""

    partition: Partition
    runtimes: Mapping[str, Interpreter]
    provider: Callable[[str], models.CapacityProvider | None]


def check_runtime(runtime: str, ctx: SpecContext) -> None:
    """Refuse a runtime Lambda does not know, or one this host cannot run.

    Raises:
        errors.InvalidRequest: with the list of runtimes that are available here.
    """
    if runtime in _DEPRECATED_RUNTIMES:
        raise errors.InvalidRequest(
            f"The runtime parameter of {runtime} is no longer supported for creating or "
            "updating AWS Lambda functions. We recommend you use a supported runtime while "
            "creating or updating functions."
        )
    known = {r.strip() for r in _AWS_RUNTIMES.split(",")}
    if runtime not in known and runtime not in SUPPORTED_RUNTIMES:
        raise errors.InvalidRequest(
            f"Value {runtime} at 'runtime' failed to satisfy constraint: Member must satisfy "
            f"enum value set: [{_AWS_RUNTIMES}] or be a valid ARN"
        )
    if runtime not in ctx.runtimes:
        available = ", ".join(sorted(ctx.runtimes)) or "none"
        raise errors.InvalidRequest(
            f"The runtime {runtime} is not available on this Corral server. Available "
            f"runtimes: {available}. Python 3.11+ and Node.js 22 and 24 run here; install "
            "missing ones with `corral runtimes install`."
        )


def apply_settings(body: Body, spec: models.FunctionSpec, ctx: SpecContext) -> models.FunctionSpec:
    """The spec with every setting present in ``body`` applied and validated."""
    changes: dict[str, Any] = {}
    runtime = body.string("Runtime")
    if runtime is not None:
        check_runtime(runtime, ctx)
        changes["runtime"] = runtime
    handler = body.string("Handler", max_len=128, pattern=r"[^\s]+")
    if handler is not None:
        changes["handler"] = handler
    role = body.string("Role", max_len=10000, pattern=ROLE_PATTERN)
    if role is not None:
        changes["role"] = role
    description = body.string("Description", max_len=256)
    if description is not None:
        changes["description"] = description
    memory = body.integer("MemorySize", low=128, high=32768)
    if memory is not None:
        changes["memory_size_mb"] = memory
    timeout = body.integer("Timeout", low=1, high=5400)
    if timeout is not None:
        changes["timeout_s"] = timeout
    if body.has("Environment"):
        changes["environment"] = _environment(body)
        changes["environment_given"] = True
    architectures = _architectures(body)
    if architectures is not None:
        changes["architectures"] = architectures
    storage = body.obj("EphemeralStorage")
    if storage is not None:
        changes["ephemeral_storage_mb"] = storage.integer(
            "Size", required=True, low=512, high=10240
        )
    tracing = body.obj("TracingConfig")
    if tracing is not None:
        changes["tracing_mode"] = (
            tracing.string("Mode", enum=("Active", "PassThrough")) or "PassThrough"
        )
    _refuse_unsupported(body)
    updated = dataclasses.replace(spec, **changes)
    managed_body = body.obj("CapacityProviderConfig")
    if managed_body is not None:
        updated = dataclasses.replace(updated, managed=_managed(managed_body, ctx))
    if body.has("LoggingConfig") or updated.managed is not None:
        updated = dataclasses.replace(updated, logging=_logging(body, updated))
    _check_limits(updated, ctx)
    return updated


def _environment(body: Body) -> dict[str, str]:
    env_body = body.obj("Environment")
    assert env_body is not None
    variables = env_body.string_map("Variables") or {}
    for key in variables:
        if (
            not key
            or not key[0].isalpha()
            or not all(c.isalnum() or c == "_" for c in key)
            or len(key) < 2
        ):
            raise errors.Validation(
                errors.constraint_message(
                    key,
                    "environment.variables",
                    "Map keys must satisfy constraint: [Member must satisfy regular expression "
                    "pattern: [a-zA-Z]([a-zA-Z0-9_])+]",
                )
            )
    measured = json.dumps(variables, separators=(",", ":"), ensure_ascii=False)
    if len(measured.encode()) > 4096:
        raise errors.InvalidRequest(
            "Lambda was unable to configure your environment variables because the environment "
            "variables you have provided exceeded the 4KB limit. String measured: " + measured
        )
    reserved = sorted(k for k in variables if k in RESERVED_VARIABLES)
    if reserved:
        raise errors.InvalidRequest(
            "Lambda was unable to configure your environment variables because the environment "
            "variables you have provided contains reserved keys that are currently not "
            f"supported for modification. Reserved keys used in this request: {', '.join(reserved)}"
        )
    return variables


def _architectures(body: Body) -> tuple[str, ...] | None:
    values = body.raw("Architectures")
    if values is None:
        return None
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise body.fail("Architectures", values, "Member must be a list of strings")
    shown = "[" + ", ".join(values) + "]"
    if len(values) != 1:
        raise body.fail(
            "Architectures",
            shown,
            f"Member must have length {'less' if values else 'greater'} than or equal to 1",
        )
    if values[0] not in ("x86_64", "arm64"):
        raise body.fail(
            "Architectures",
            shown,
            "Member must satisfy constraint: [Member must satisfy enum value set: "
            "[x86_64, arm64], Member must not be null]",
        )
    return (values[0],)


def _refuse_unsupported(body: Body) -> None:
    for key, what in (
        ("Layers", "Layers"),
        ("FileSystemConfigs", "File system configurations (EFS)"),
        ("ImageConfig", "Container image configuration"),
    ):
        value = body.raw(key)
        if value:
            raise errors.InvalidRequest(
                f"{what} are not supported by Corral yet: remove {key} from the request."
            )
    snap = body.obj("SnapStart")
    if snap is not None and snap.string("ApplyOn", enum=("PublishedVersions", "None")) not in (
        None,
        "None",
    ):
        raise errors.InvalidRequest("SnapStart is not supported by Corral: set ApplyOn to None.")


def _managed(body: Body, ctx: SpecContext) -> models.ManagedInstancesConfig:
    inner = body.obj("LambdaManagedInstancesCapacityProviderConfig", required=True)
    assert inner is not None
    arn = inner.string(
        "CapacityProviderArn", required=True, max_len=140, pattern=_PROVIDER_ARN_PATTERN
    )
    assert arn is not None
    concurrency = inner.integer("PerExecutionEnvironmentMaxConcurrency", low=1, high=1600)
    ratio = inner.number("ExecutionEnvironmentMemoryGiBPerVCpu", low=2.0, high=8.0)
    if ratio is not None and ratio not in (2.0, 4.0, 8.0):
        raise errors.InvalidRequest(
            f"ExecutionEnvironmentMemoryGiBPerVCpu {ratio:g} is not supported. Use 2, 4 or 8 "
            "GiB of memory per vCPU."
        )
    name = arn.rsplit(":", 1)[-1]
    region, account = arn.split(":")[3:5]
    if (
        region != ctx.partition.region
        or account != ctx.partition.account_id
        or ctx.provider(name) is None
    ):
        raise errors.NotFound(f"Capacity provider not found: {arn}")
    return models.ManagedInstancesConfig(
        capacity_provider_arn=arn,
        per_environment_max_concurrency=concurrency,
        memory_gib_per_vcpu=2.0 if ratio is None else ratio,
    )


def _logging(body: Body, spec: models.FunctionSpec) -> models.LoggingConfig:
    current = spec.logging
    config = body.obj("LoggingConfig")
    log_format = current.log_format
    app_level = current.application_log_level
    sys_level = current.system_log_level
    group = current.log_group
    if config is not None:
        log_format = config.string("LogFormat", enum=("JSON", "Text")) or log_format
        app_level = config.string("ApplicationLogLevel", enum=_LOG_LEVELS) or app_level
        sys_level = config.string("SystemLogLevel", enum=_SYSTEM_LEVELS) or sys_level
        group = (
            config.string("LogGroup", min_len=1, max_len=512, pattern=r"[\.\-_/#A-Za-z0-9]+")
            or group
        )
    if spec.managed is not None:
        # Managed Instances functions log JSON only: a level alone is fine, Text is not.
        if config is not None and config.raw("LogFormat") == "Text":
            raise errors.InvalidRequest(
                "Functions with capacity provider configuration only support the JSON log "
                "format. Set LogFormat to JSON or leave it out."
            )
        log_format = "JSON"
    if (
        config is not None
        and log_format == "Text"
        and (config.has("ApplicationLogLevel") or config.has("SystemLogLevel"))
    ):
        raise errors.InvalidRequest(_TEXT_WITH_LEVEL)
    if log_format == "JSON":
        app_level = app_level or "INFO"
        sys_level = sys_level or "INFO"
    else:
        app_level = sys_level = None
    return models.LoggingConfig(log_format, app_level, sys_level, group)


def _check_limits(spec: models.FunctionSpec, ctx: SpecContext) -> None:
    managed = spec.managed
    if managed is None:
        if spec.memory_size_mb > 10240:
            raise errors.Validation(
                errors.constraint_message(
                    str(spec.memory_size_mb),
                    "memorySize",
                    "Member must have value less than or equal to 10240",
                )
            )
        if spec.timeout_s > 900:
            raise errors.Validation(
                errors.constraint_message(
                    str(spec.timeout_s),
                    "timeout",
                    "Member must have value less than or equal to 900",
                )
            )
        return
    if not spec.runtime.startswith("python") and spec.runtime not in _MANAGED_NODE_RUNTIMES:
        raise errors.InvalidRequest(
            f"Runtime Enum {spec.runtime} does not support specified feature: "
            "Lambda Managed Instances"
        )
    if spec.memory_size_mb < 2048:
        raise errors.InvalidRequest(
            f"MemorySize {spec.memory_size_mb} MB is too small for a function with capacity "
            "provider configuration: the minimum is 2048 MB (1 vCPU at 2 GiB per vCPU)."
        )
    per_vcpu_mb = int(managed.memory_gib_per_vcpu * 1024)
    if spec.memory_size_mb % per_vcpu_mb:
        raise errors.InvalidRequest(
            f"MemorySize {spec.memory_size_mb} MB is not a whole number of vCPUs at "
            f"{managed.memory_gib_per_vcpu:g} GiB per vCPU: use a multiple of {per_vcpu_mb} MB "
            "(Managed Instances gives whole vCPUs only)."
        )
    provider = ctx.provider(managed.capacity_provider_name)
    if provider is not None and spec.architectures[0] not in provider.requirements.architectures:
        raise errors.InvalidRequest(
            f"The function architecture {spec.architectures[0]} does not match the "
            f"architecture of capacity provider {provider.name} "
            f"({', '.join(provider.requirements.architectures)})."
        )

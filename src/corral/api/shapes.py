"""Lambda's JSON shapes, built from Corral's values.

``function_configuration`` is botocore's ``FunctionConfiguration``, with what AWS leaves out
left out (recorded AWS answers: an empty field is absent, not ``{}``/``[]``/``null``): list
entries carry no state, update status or runtime version; ``Environment`` appears once
given; reasons appear only with the states that have them. ``capacity_provider`` and
``alias`` likewise.

A stored version is always settled (Corral prepares code before it answers), but AWS's
answers to CreateFunction and to updates describe the change in motion: ``Motion`` renders
a version as such an answer does (``Pending``/``Creating``; ``InProgress``).
"""

from __future__ import annotations

import hashlib
from enum import Enum
from typing import Any

from corral.core import models
from corral.core.arns import Partition
from corral.core.clock import iso_timestamp

__all__ = [
    "Motion",
    "alias",
    "capacity_provider",
    "function_configuration",
    "function_version_arn",
    "qualified_arn",
]

# AWS says "being created" for updates too (all 41 recorded InProgress answers do).
_CREATING = "The function is being created."


class Motion(Enum):
    """How an answer shows a version that is being created or updated."""

    CREATING = "creating"
    UPDATING = "updating"


def function_version_arn(partition: Partition, version: models.FunctionVersion) -> str:
    """``$LATEST`` answers with the unqualified ARN; every other version is qualified."""
    if version.version == models.LATEST:
        return partition.function_arn(version.function_name)
    return partition.function_arn(version.function_name, version.version)


def qualified_arn(partition: Partition, version: models.FunctionVersion) -> str:
    """The ARN with the version, ``:$LATEST`` included (version listings, and a GetFunction
    that names ``$LATEST``)."""
    return partition.function_arn(version.function_name, version.version)


def function_configuration(
    partition: Partition,
    version: models.FunctionVersion,
    *,
    listing: bool = False,
    arn: str | None = None,
    motion: Motion | None = None,
) -> dict[str, Any]:
    """``FunctionConfiguration``: ``arn`` replaces the version's own ARN (an alias's, a
    qualified ``$LATEST``), ``listing`` drops what list entries lack, ``motion`` shows the
    version as the answer to a create or an update does."""
    spec = version.spec
    data: dict[str, Any] = {
        "FunctionName": version.function_name,
        "FunctionArn": arn or function_version_arn(partition, version),
        "Runtime": spec.runtime,
        "Role": spec.role,
        "Handler": spec.handler,
        "CodeSize": spec.code_size,
        "Description": spec.description,
        "Timeout": spec.timeout_s,
        "MemorySize": spec.memory_size_mb,
        "LastModified": iso_timestamp(version.last_modified_s),
        "CodeSha256": spec.code_sha256,
        "Version": version.version,
        "TracingConfig": {"Mode": spec.tracing_mode},
        "RevisionId": version.revision_id,
        "PackageType": spec.package_type,
        "Architectures": list(spec.architectures),
        "EphemeralStorage": {"Size": spec.ephemeral_storage_mb},
        "LoggingConfig": _logging(spec.logging, version.function_name),
    }
    if not listing:
        data["RuntimeVersionConfig"] = {
            "RuntimeVersionArn": f"arn:aws:lambda:{partition.region}::runtime:"
            + hashlib.sha256(spec.runtime.encode()).hexdigest()
        }
    if spec.environment or spec.environment_given:
        data["Environment"] = {"Variables": dict(spec.environment)}
    if spec.managed is None:
        data["SnapStart"] = {"ApplyOn": "None", "OptimizationStatus": "Off"}
    else:
        managed: dict[str, Any] = {
            "CapacityProviderArn": spec.managed.capacity_provider_arn,
            "ExecutionEnvironmentMemoryGiBPerVCpu": spec.managed.memory_gib_per_vcpu,
        }
        if spec.managed.per_environment_max_concurrency is not None:
            managed["PerExecutionEnvironmentMaxConcurrency"] = (
                spec.managed.per_environment_max_concurrency
            )
        data["CapacityProviderConfig"] = {"LambdaManagedInstancesCapacityProviderConfig": managed}
    if not listing:
        data.update(_states(version, motion))
    return data


def _states(version: models.FunctionVersion, motion: Motion | None) -> dict[str, str]:
    """State and LastUpdateStatus with their reasons, as a read or an answer shows them."""
    if motion is Motion.CREATING:
        # A create answers Pending and no update status (every recorded CreateFunction).
        return {"State": "Pending", "StateReason": _CREATING, "StateReasonCode": "Creating"}
    data = {"State": version.state.value}
    if version.state_reason:
        data["StateReason"] = version.state_reason
    if version.state_reason_code:
        data["StateReasonCode"] = version.state_reason_code
    if motion is Motion.UPDATING:
        data["LastUpdateStatus"] = "InProgress"
        data["LastUpdateStatusReason"] = _CREATING
        data["LastUpdateStatusReasonCode"] = "Creating"
        return data
    data["LastUpdateStatus"] = version.last_update_status.value
    if version.last_update_status_reason:
        data["LastUpdateStatusReason"] = version.last_update_status_reason
    if version.last_update_status_reason_code:
        data["LastUpdateStatusReasonCode"] = version.last_update_status_reason_code
    return data


def _logging(config: models.LoggingConfig, function_name: str) -> dict[str, Any]:
    data: dict[str, Any] = {
        "LogFormat": config.log_format,
        "LogGroup": config.log_group or f"/aws/lambda/{function_name}",
    }
    if config.application_log_level:
        data["ApplicationLogLevel"] = config.application_log_level
    if config.system_log_level:
        data["SystemLogLevel"] = config.system_log_level
    return data


def capacity_provider(provider: models.CapacityProvider) -> dict[str, Any]:
    req = provider.requirements
    requirements: dict[str, Any] = {"Architectures": list(req.architectures)}
    if req.allowed_instance_types:
        requirements["AllowedInstanceTypes"] = list(req.allowed_instance_types)
    if req.excluded_instance_types:
        requirements["ExcludedInstanceTypes"] = list(req.excluded_instance_types)
    scaling: dict[str, Any] = {
        "MaxVCpuCount": provider.max_vcpu_count,
        "ScalingMode": provider.scaling_mode.value,
    }
    if provider.scaling_policies:
        scaling["ScalingPolicies"] = [
            {"PredefinedMetricType": p.metric, "TargetValue": p.target_value}
            for p in provider.scaling_policies
        ]
    data: dict[str, Any] = {
        "CapacityProviderArn": provider.arn,
        "State": provider.state.value,
        "VpcConfig": {
            "SubnetIds": list(provider.subnet_ids),
            "SecurityGroupIds": list(provider.security_group_ids),
        },
        "PermissionsConfig": {"CapacityProviderOperatorRoleArn": provider.operator_role_arn},
        "InstanceRequirements": requirements,
        "CapacityProviderScalingConfig": scaling,
        "LastModified": iso_timestamp(provider.last_modified_s),
    }
    if provider.kms_key_arn:
        data["KmsKeyArn"] = provider.kms_key_arn
    if provider.propagate_tags_mode:
        tags: dict[str, Any] = {"Mode": provider.propagate_tags_mode}
        if provider.propagate_explicit_tags:
            tags["ExplicitTags"] = dict(provider.propagate_explicit_tags)
        data["PropagateTags"] = tags
    data["TelemetryConfig"] = {
        "LoggingConfig": {
            "SystemLogLevel": provider.system_log_level or "INFO",
            "LogGroup": provider.log_group or f"/aws/lambda/capacity-provider/{provider.name}",
        }
    }
    return data


def alias(partition: Partition, record: models.Alias) -> dict[str, Any]:
    data: dict[str, Any] = {
        "AliasArn": partition.function_arn(record.function_name, record.name),
        "Name": record.name,
        "FunctionVersion": record.function_version,
        "Description": record.description,
        "RevisionId": record.revision_id,
    }
    if record.routing_weights:
        data["RoutingConfig"] = {"AdditionalVersionWeights": dict(record.routing_weights)}
    return data

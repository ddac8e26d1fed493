"""The ``__all__`` of public modules, pinned so a public surface changes only on purpose."""

from __future__ import annotations

import importlib

PUBLIC: dict[str, set[str]] = {
    "corral.agent.runtime_env": {"RESERVED_VARIABLES", "RuntimeEnvInputs", "runtime_environment"},
    "corral.api.body": {"Body", "camel", "parse_json_object"},
    "corral.api.lambda_errors": {"LambdaError", "from_exception", "service_error"},
    "corral.core.arns": {
        "Partition",
        "capacity_provider_name",
        "parse_function_name",
        "reconcile_qualifier",
    },
    "corral.core.errors": {
        "AccessDenied",
        "BackendError",
        "Conflict",
        "CorralError",
        "EnvironmentGone",
        "InvalidContent",
        "InvalidRequest",
        "LimitExceeded",
        "NoPublishedVersion",
        "NotFound",
        "PermanentError",
        "PreconditionFailed",
        "RequestTooLarge",
        "SandboxError",
        "TemporaryError",
        "ThrottleCause",
        "Throttled",
        "UnsupportedMediaType",
        "Validation",
        "constraint_message",
    },
    "corral.core.models": {
        "LATEST",
        "LATEST_PUBLISHED",
        "Alias",
        "CapacityProvider",
        "CapacityProviderState",
        "EnvironmentState",
        "Function",
        "FunctionSpec",
        "FunctionState",
        "FunctionVersion",
        "InstanceRequirements",
        "InstanceState",
        "InstanceType",
        "InvocationType",
        "LastUpdateStatus",
        "LoggingConfig",
        "ManagedInstancesConfig",
        "ScalingConfig",
        "ScalingMode",
        "ScalingPolicy",
        "VersionRef",
        "default_concurrency_per_vcpu",
        "is_published",
    },
    "corral.core.settings": {"Settings", "default_runtimes_dir", "is_loopback"},
    "corral.router.selection": {"Candidate", "choose", "least_outstanding"},
    "corral.runtime.invocation": {
        "MAX_RESPONSE_BYTES",
        "Invocation",
        "InvocationResult",
        "error_payload",
        "new_request_id",
        "new_trace_id",
    },
    "corral.scaler.environments": {
        "Action",
        "Failure",
        "MarkVersion",
        "ObservedEnvironment",
        "StartEnvironments",
        "StopEnvironment",
        "VersionTarget",
        "plan",
    },
    "corral.scaler.policy": {
        "TARGET_UTILIZATION",
        "Decision",
        "VersionLoad",
        "desired_environments",
        "init_timeout_s",
        "minimum_environments",
        "should_reap_classic",
    },
    "corral.scaler.placement": {"place"},
    "corral.scaler.views": {"InstanceView"},
    "corral.scaler.instances": {
        "AUTO_TARGET_CPU",
        "Demand",
        "InstanceAction",
        "LaunchInstances",
        "MinimumUnreachable",
        "ProviderTarget",
        "TerminateInstance",
        "plan_instances",
    },
    "corral.cost.catalog": {"Catalogue", "choose_type", "load", "matching", "slots_per_instance"},
    "corral.store.code": {"MAX_UNZIPPED_BYTES", "MAX_ZIPPED_BYTES", "CodeStore", "StoredCode"},
    "corral.store.codec": {
        "provider_from_json",
        "provider_to_json",
        "spec_from_json",
        "spec_to_json",
    },
    "corral.telemetry.logstore": {
        "DiscardedLogs",
        "LogQuery",
        "LogStore",
        "Retention",
        "StoredEvent",
    },
    "corral.telemetry.logs": {
        "LevelFilter",
        "LogRecord",
        "LogSink",
        "platform_report",
        "platform_start",
        "stream_name",
        "text_report",
    },
}


def test_the_public_names_of_each_module_are_exactly_the_pinned_ones() -> None:
    exported = {name: importlib.import_module(name).__all__ for name in PUBLIC}
    assert {name: set(names) for name, names in exported.items()} == PUBLIC
    for name, names in exported.items():
        module = importlib.import_module(name)
        assert len(names) == len(set(names)), f"{name}: a name is listed twice in __all__"
        assert [n for n in names if not hasattr(module, n)] == [], name

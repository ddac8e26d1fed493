"""The environment variables Lambda gives a runtime (``LMI_FACTS.md`` §3.2).

Reserved names are set by Corral; the function's own variables are merged first so they
cannot override them (the API refuses reserved keys before they get here).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from corral.core import models

__all__ = ["RESERVED_VARIABLES", "RuntimeEnvInputs", "runtime_environment"]

# Keys a function may not set (AWS: "reserved keys that are currently not supported for
# modification").
RESERVED_VARIABLES = frozenset(
    {
        "_HANDLER",
        "_X_AMZN_TRACE_ID",
        "AWS_DEFAULT_REGION",
        "AWS_REGION",
        "AWS_EXECUTION_ENV",
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_INITIALIZATION_TYPE",
        "AWS_LAMBDA_LOG_GROUP_NAME",
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "AWS_LAMBDA_MAX_CONCURRENCY",
        "AWS_ACCESS_KEY",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SECRET_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_LAMBDA_RUNTIME_API",
        "LAMBDA_TASK_ROOT",
        "LAMBDA_RUNTIME_DIR",
    }
)


@dataclass(frozen=True)
class RuntimeEnvInputs:
    """What the environment variables are computed from."""

    function_name: str
    version: str
    spec: models.FunctionSpec
    region: str
    runtime_api: str
    task_root: Path
    runtime_dir: Path
    interpreter_bin: Path
    log_group: str
    log_stream: str
    log_socket: Path | None
    tmp_dir: Path
    # Corral's worker pool forks the workers after one init (corral:fork-after-init).
    fork_after_init: bool = False
    # A Node.js runtime (``nodejs22.x``...): Node's variables instead of Python's.
    node: bool = False


def runtime_environment(inputs: RuntimeEnvInputs) -> dict[str, str]:
    """The complete environment of one runtime process."""
    spec = inputs.spec
    env: dict[str, str] = {
        k: v for k, v in _user_variables(spec.environment).items() if not k.startswith("_")
    }
    env.update(
        {
            "PATH": f"{inputs.interpreter_bin}:/usr/local/bin:/usr/bin:/bin",
            "LANG": env.get("LANG", "en_US.UTF-8"),
            "TZ": env.get("TZ", ":UTC"),
            "TMPDIR": str(inputs.tmp_dir),
            "_HANDLER": spec.handler,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
            "AWS_REGION": inputs.region,
            "AWS_DEFAULT_REGION": inputs.region,
            "AWS_LAMBDA_FUNCTION_NAME": inputs.function_name,
            "AWS_LAMBDA_FUNCTION_VERSION": inputs.version,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_size_mb),
            "AWS_LAMBDA_LOG_GROUP_NAME": inputs.log_group,
            "AWS_LAMBDA_LOG_STREAM_NAME": inputs.log_stream,
            "AWS_LAMBDA_RUNTIME_API": inputs.runtime_api,
            "LAMBDA_TASK_ROOT": str(inputs.task_root),
            "LAMBDA_RUNTIME_DIR": str(inputs.runtime_dir),
            "AWS_XRAY_CONTEXT_MISSING": env.get("AWS_XRAY_CONTEXT_MISSING", "LOG_ERROR"),
        }
    )
    if inputs.node:
        _node_variables(env, inputs)
    else:
        env["PYTHONPATH"] = str(inputs.task_root)
    if spec.logging.log_format == "JSON":
        env.setdefault("AWS_LAMBDA_LOG_FORMAT", "JSON")
        env.setdefault("AWS_LAMBDA_LOG_LEVEL", spec.logging.application_log_level or "INFO")
    if spec.managed is not None:
        env["AWS_LAMBDA_INITIALIZATION_TYPE"] = "lambda-managed-instances"
        env["AWS_LAMBDA_MAX_CONCURRENCY"] = str(spec.concurrency)
        if inputs.log_socket is not None:
            env["_LAMBDA_TELEMETRY_LOG_FD_PROVIDER_SOCKET"] = str(inputs.log_socket)
        if inputs.fork_after_init:
            env["_CORRAL_FORK_AFTER_INIT"] = "1"  # read and removed by the pool
    else:
        env["AWS_LAMBDA_INITIALIZATION_TYPE"] = "on-demand"
    return env


def _node_variables(env: dict[str, str], inputs: RuntimeEnvInputs) -> None:
    """What Lambda's Node.js runtimes set (``NODE_PATH`` as on Lambda, without /opt)."""
    runtime_dir = inputs.runtime_dir
    env["NODE_PATH"] = f"{runtime_dir}/node_modules:{runtime_dir}:{inputs.task_root}"
    managed = inputs.spec.managed
    if managed is not None:
        # aws-lambda-ric's own default (8 per vCPU, from the cgroup's cpu.max), set here
        # because a process sandbox has no cgroup of its own; a function may set another.
        vcpus = managed.vcpus(inputs.spec.memory_size_mb)
        env.setdefault("AWS_LAMBDA_NODEJS_WORKER_COUNT", str(8 * vcpus))
        # aws-lambda-ric's own switch: each worker polls /next with node:http on its own
        # event loop instead of its native client, which polls from libuv's shared pool of
        # 4 threads. There, with 8+ workers, idle polls hold every pool thread: a handler's
        # fs or dns call waits for the next invocation, and a worker that exits cannot
        # until its poll returns (the invocation it gets then is lost). Answers still go
        # through the native client. A function may set "false" to have the native poll.
        env.setdefault("AWS_LAMBDA_NODEJS_USE_ALTERNATIVE_CLIENT_1", "true")


def _user_variables(variables: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in variables.items() if k not in RESERVED_VARIABLES}

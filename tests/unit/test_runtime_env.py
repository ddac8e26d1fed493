"""``corral.agent.runtime_env.runtime_environment``: the variables a runtime process gets."""

from __future__ import annotations

from pathlib import Path

from corral.agent import runtime_env
from corral.core import models
from tests.factories import function_spec

PROVIDER = "arn:aws:lambda:us-east-1:123456789012:capacity-provider:pool"


def _inputs(
    *,
    managed: bool = False,
    environment: dict[str, str] | None = None,
    logging: models.LoggingConfig | None = None,
    log_socket: Path | None = Path("/run/env-1/logs.sock"),
    node: bool = False,
) -> runtime_env.RuntimeEnvInputs:
    spec = function_spec(
        memory_size_mb=4096,
        environment=environment or {},
        logging=logging or models.LoggingConfig(),
        managed=models.ManagedInstancesConfig(PROVIDER) if managed else None,
        **({"runtime": "nodejs22.x"} if node else {}),
    )
    return runtime_env.RuntimeEnvInputs(
        function_name="orders",
        version="3",
        spec=spec,
        region="eu-west-1",
        runtime_api="127.0.0.1:9001",
        task_root=Path("/var/task"),
        runtime_dir=Path("/var/runtime"),
        interpreter_bin=Path("/opt/python/bin"),
        log_group="/aws/lambda/orders",
        log_stream="2024/01/02/[3]env-1",
        log_socket=log_socket,
        tmp_dir=Path("/tmp/env-1"),
        node=node,
    )


def test_lambda_variables_describe_the_function_and_its_runtime() -> None:
    env = runtime_env.runtime_environment(_inputs())
    assert env["_HANDLER"] == "app.handler"
    assert env["AWS_EXECUTION_ENV"] == "AWS_Lambda_python3.12"
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "eu-west-1"
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "orders"
    assert env["AWS_LAMBDA_FUNCTION_VERSION"] == "3"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "4096"
    assert env["AWS_LAMBDA_RUNTIME_API"] == "127.0.0.1:9001"
    assert env["AWS_LAMBDA_LOG_STREAM_NAME"] == "2024/01/02/[3]env-1"
    assert env["LAMBDA_TASK_ROOT"] == env["PYTHONPATH"] == "/var/task"
    assert env["PATH"].startswith("/opt/python/bin:")
    assert env["TMPDIR"] == "/tmp/env-1"


def test_a_classic_environment_is_on_demand_with_no_concurrency_or_log_socket() -> None:
    env = runtime_env.runtime_environment(_inputs(managed=False))
    assert env["AWS_LAMBDA_INITIALIZATION_TYPE"] == "on-demand"
    assert "AWS_LAMBDA_MAX_CONCURRENCY" not in env
    assert "_LAMBDA_TELEMETRY_LOG_FD_PROVIDER_SOCKET" not in env


def test_a_managed_environment_gets_its_concurrency_and_log_socket() -> None:
    env = runtime_env.runtime_environment(_inputs(managed=True))
    assert env["AWS_LAMBDA_INITIALIZATION_TYPE"] == "lambda-managed-instances"
    # 4096 MB at 2 GiB per vCPU is 2 vCPUs, 16 slots each for Python.
    assert env["AWS_LAMBDA_MAX_CONCURRENCY"] == "32"
    assert env["_LAMBDA_TELEMETRY_LOG_FD_PROVIDER_SOCKET"] == "/run/env-1/logs.sock"


def test_a_managed_environment_without_a_log_socket_gets_no_socket_variable() -> None:
    env = runtime_env.runtime_environment(_inputs(managed=True, log_socket=None))
    assert "_LAMBDA_TELEMETRY_LOG_FD_PROVIDER_SOCKET" not in env


def test_json_logging_sets_the_format_and_the_application_log_level() -> None:
    env = runtime_env.runtime_environment(_inputs(logging=models.LoggingConfig("JSON", "DEBUG")))
    assert env["AWS_LAMBDA_LOG_FORMAT"] == "JSON"
    assert env["AWS_LAMBDA_LOG_LEVEL"] == "DEBUG"
    default = runtime_env.runtime_environment(_inputs(logging=models.LoggingConfig("JSON")))
    assert default["AWS_LAMBDA_LOG_LEVEL"] == "INFO"
    text = runtime_env.runtime_environment(_inputs())
    assert "AWS_LAMBDA_LOG_FORMAT" not in text and "AWS_LAMBDA_LOG_LEVEL" not in text


def test_user_variables_are_kept_but_reserved_and_underscore_ones_are_dropped() -> None:
    env = runtime_env.runtime_environment(
        _inputs(
            managed=True,
            environment={
                "STAGE": "prod",
                "TZ": "Europe/Paris",
                "AWS_REGION": "us-west-2",
                "AWS_LAMBDA_MAX_CONCURRENCY": "1000",
                "AWS_SECRET_ACCESS_KEY": "leak",
                "_PRIVATE": "x",
                "_LAMBDA_TELEMETRY_LOG_FD_PROVIDER_SOCKET": "/evil",
            },
        )
    )
    assert env["STAGE"] == "prod"
    assert env["TZ"] == "Europe/Paris"
    assert env["AWS_REGION"] == "eu-west-1"
    assert env["AWS_LAMBDA_MAX_CONCURRENCY"] == "32"
    assert "AWS_SECRET_ACCESS_KEY" not in env
    assert "_PRIVATE" not in env
    assert env["_LAMBDA_TELEMETRY_LOG_FD_PROVIDER_SOCKET"] == "/run/env-1/logs.sock"


def test_node_runtimes_get_node_path_and_the_clients_worker_settings() -> None:
    env = runtime_env.runtime_environment(_inputs(managed=True, node=True))
    assert "PYTHONPATH" not in env
    assert env["NODE_PATH"] == "/var/runtime/node_modules:/var/runtime:/var/task"
    assert env["AWS_LAMBDA_MAX_CONCURRENCY"] == "128"  # 64 per vCPU, 2 vCPUs
    assert env["AWS_LAMBDA_NODEJS_WORKER_COUNT"] == "16"  # aws-lambda-ric: 8 per vCPU
    assert env["AWS_LAMBDA_NODEJS_USE_ALTERNATIVE_CLIENT_1"] == "true"
    chosen = runtime_env.runtime_environment(
        _inputs(
            managed=True,
            node=True,
            environment={
                "AWS_LAMBDA_NODEJS_WORKER_COUNT": "3",
                "AWS_LAMBDA_NODEJS_USE_ALTERNATIVE_CLIENT_1": "false",
            },
        )
    )
    assert chosen["AWS_LAMBDA_NODEJS_WORKER_COUNT"] == "3"
    assert chosen["AWS_LAMBDA_NODEJS_USE_ALTERNATIVE_CLIENT_1"] == "false"
    classic = runtime_env.runtime_environment(_inputs(node=True))
    assert "AWS_LAMBDA_MAX_CONCURRENCY" not in classic
    assert "AWS_LAMBDA_NODEJS_WORKER_COUNT" not in classic

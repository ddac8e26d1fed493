"""Lambda Managed Instances functions: capacity providers, publishing, warm concurrency."""

from __future__ import annotations

import base64
import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import botocore.exceptions
import pytest

from tests.helpers import (
    LambdaClient,
    Server,
    invoke,
    managed_config,
    wait_for,
    wait_version_active,
    zip_code,
)


def managed(make_function: Any, provider_arn: str, concurrency: int = 4, **kwargs: Any) -> str:
    name: str = make_function(
        "lmi",
        MemorySize=2048,
        CapacityProviderConfig=managed_config(provider_arn, concurrency),
        **kwargs,
    )
    return name


def published(
    lam: LambdaClient, make_function: Any, provider_arn: str, concurrency: int = 4, **kwargs: Any
) -> str:
    """A Managed Instances function whose version 1 is Active."""
    name = managed(make_function, provider_arn, concurrency, **kwargs)
    lam.publish_version(FunctionName=name)
    wait_version_active(lam, name, "1")
    return name


def test_latest_is_active_non_invocable_and_needs_a_published_version(
    lam: LambdaClient, make_function: Any, provider_arn: str
) -> None:
    name = managed(make_function, provider_arn)
    config = lam.get_function_configuration(FunctionName=name)
    assert config["State"] == "ActiveNonInvocable"
    assert config["LoggingConfig"]["LogFormat"] == "JSON"
    assert config["CapacityProviderConfig"]["LambdaManagedInstancesCapacityProviderConfig"] == {
        "CapacityProviderArn": provider_arn,
        "PerExecutionEnvironmentMaxConcurrency": 4,
        "ExecutionEnvironmentMemoryGiBPerVCpu": 2.0,
    }
    with pytest.raises(lam.exceptions.NoPublishedVersionException):
        invoke(lam, name)
    with pytest.raises(lam.exceptions.NoPublishedVersionException):
        invoke(lam, name, Qualifier="$LATEST")


def test_publish_goes_pending_then_active_after_three_environments(
    lam: LambdaClient, make_function: Any, provider_arn: str, server: Any
) -> None:
    name = managed(make_function, provider_arn)
    published = lam.publish_version(FunctionName=name)
    assert published["Version"] == "1"
    assert published["State"] == "Pending"
    assert published["StateReasonCode"] == "Creating"
    with pytest.raises(lam.exceptions.ResourceConflictException):
        invoke(lam, name, Qualifier="1")
    config = wait_version_active(lam, name, "1")
    assert config["State"] == "Active"
    state = server.state()
    envs = [
        e
        for p in state["capacityProviders"]
        for i in p["instances"]
        for e in i["environments"]
        if e["functionArn"].endswith(f":{name}:1")
    ]
    assert len(envs) == 3
    assert all(e["state"] == "Ready" and e["concurrencyLimit"] == 4 for e in envs)
    body = json.loads(invoke(lam, name, {"a": 1}, Qualifier="1")["Body"])
    assert body["env"]["AWS_LAMBDA_MAX_CONCURRENCY"] == "4"
    assert body["env"]["AWS_LAMBDA_INITIALIZATION_TYPE"] == "lambda-managed-instances"


def test_twelve_requests_run_concurrently_on_three_environments_of_four_slots(
    lam: LambdaClient, make_function: Any, provider_arn: str
) -> None:
    name = published(lam, make_function, provider_arn)
    invoke(lam, name, {}, Qualifier="1")

    windows: list[tuple[float, float]] = []

    def call(_: int) -> tuple[str, int]:
        started = time.monotonic()
        body = json.loads(invoke(lam, name, {"sleep": 1.0}, Qualifier="1")["Body"])
        windows.append((started, time.monotonic()))
        # Pids are per container: a worker is its environment's log stream and its pid.
        return body["env"]["AWS_LAMBDA_LOG_STREAM_NAME"], body["pid"]

    with ThreadPoolExecutor(12) as pool:
        pids = list(pool.map(call, range(12)))
    # One round: every call was sent before any came back (no call waited for a slot).
    assert max(start for start, _ in windows) < min(end for _, end in windows)
    assert len(set(pids)) == 12  # one worker process per slot
    assert len({stream for stream, _ in pids}) == 3


def test_a_thirteenth_concurrent_request_is_throttled_at_once(
    lam: LambdaClient, make_function: Any, provider_arn: str, server: Server
) -> None:
    name = published(lam, make_function, provider_arn)
    # No scaling out: exactly 3 environments of 4 slots.
    lam.put_function_scaling_config(
        FunctionName=name,
        Qualifier="1",
        FunctionScalingConfig={"MinExecutionEnvironments": 3, "MaxExecutionEnvironments": 3},
    )
    with ThreadPoolExecutor(12) as pool:
        running = [pool.submit(invoke, lam, name, {"sleep": 1.5}, Qualifier="1") for _ in range(12)]
        wait_for(lambda: sum(e["concurrency"] for e in server.environments(name)) == 12)
        with pytest.raises(lam.exceptions.TooManyRequestsException) as caught:
            invoke(lam, name, {}, Qualifier="1")
        # At once: it did not wait for a slot, so none of the twelve had finished yet (a
        # comparison with the load itself, not with a wall clock a busy machine stretches).
        assert not any(f.done() for f in running)
        assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
        assert all(f.result()["StatusCode"] == 200 for f in running)
    assert invoke(lam, name, {}, Qualifier="1")["StatusCode"] == 200


def test_unqualified_invoke_runs_latest_published(
    lam: LambdaClient, make_function: Any, provider_arn: str
) -> None:
    name = managed(make_function, provider_arn, PublishTo="LATEST_PUBLISHED")
    config = wait_version_active(lam, name, "$LATEST.PUBLISHED")
    assert config["FunctionArn"].endswith(f":{name}:$LATEST.PUBLISHED")
    response = invoke(lam, name, {"x": 1})
    assert response["ExecutedVersion"] == "$LATEST.PUBLISHED"
    assert json.loads(response["Body"])["arn"].endswith(":$LATEST.PUBLISHED")
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as caught:
        invoke(lam, name, Qualifier="$LATEST")
    assert "can't be invoked with $LATEST qualifier" in str(caught.value)


def test_republishing_latest_published_swaps_code_without_downtime(
    lam: LambdaClient, make_function: Any, provider_arn: str
) -> None:
    name = managed(
        make_function,
        provider_arn,
        code=zip_code({"app.py": "def handler(e, c):\n    return 'one'\n"}),
        PublishTo="LATEST_PUBLISHED",
    )
    wait_version_active(lam, name, "$LATEST.PUBLISHED")
    lam.update_function_code(
        FunctionName=name, ZipFile=zip_code({"app.py": "def handler(e, c):\n    return 'two'\n"})
    )
    republished = lam.publish_version(FunctionName=name, PublishTo="LATEST_PUBLISHED")
    assert republished["State"] == "Active"
    assert republished["LastUpdateStatus"] == "InProgress"
    seen = set()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        seen.add(invoke(lam, name)["Body"])  # never an error while switching
        if (
            b'"two"' in seen
            and lam.get_function_configuration(FunctionName=name, Qualifier="$LATEST.PUBLISHED")[
                "LastUpdateStatus"
            ]
            == "Successful"
        ):
            break
    assert b'"two"' in seen
    assert invoke(lam, name)["Body"] == b'"two"'


def test_a_missing_handler_fails_the_version_with_runtime_init_error(
    lam: LambdaClient, make_function: Any, provider_arn: str
) -> None:
    name = managed(make_function, provider_arn, Handler="nope.handler")
    lam.publish_version(FunctionName=name)
    waiter = lam.get_waiter("published_version_active")
    fast: Any = {"Delay": 0.2, "MaxAttempts": 300}  # botocore sleeps any number
    with pytest.raises(botocore.exceptions.WaiterError, match="failure"):
        waiter.wait(FunctionName=name, Qualifier="1", WaiterConfig=fast)
    config = lam.get_function_configuration(FunctionName=name, Qualifier="1")
    assert config["State"] == "Failed"
    assert config["StateReasonCode"] == "FunctionError.RuntimeInitError"
    assert "Runtime.ImportModuleError" in config["StateReason"]
    with pytest.raises(lam.exceptions.ResourceConflictException):
        invoke(lam, name, Qualifier="1")


def test_json_logs_attribute_every_line_to_its_request(
    lam: LambdaClient, make_function: Any, provider_arn: str
) -> None:
    name = published(lam, make_function, provider_arn)

    def call(i: int) -> tuple[str, str]:
        response = invoke(lam, name, {"sleep": 0.2, "i": i}, Qualifier="1", LogType="Tail")
        return json.loads(response["Body"])["request_id"], base64.b64decode(
            response["LogResult"]
        ).decode()

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(call, range(8)))
    for request_id, log in results:
        lines = [line for line in log.splitlines() if line]
        assert any(f"handling {request_id}" in line for line in lines)
        assert all(request_id in line for line in lines), log
        start = json.loads(lines[0])
        assert start["type"] == "platform.start" and start["record"]["requestId"] == request_id
        assert json.loads(lines[-1])["type"] == "platform.report"


def test_scaling_config_sets_the_number_of_environments(
    lam: LambdaClient, make_function: Any, provider_arn: str, server: Any
) -> None:
    name = published(lam, make_function, provider_arn, concurrency=2)
    assert lam.get_function_scaling_config(FunctionName=name, Qualifier="1")[
        "AppliedFunctionScalingConfig"
    ] == {"MinExecutionEnvironments": 3}
    answer = lam.put_function_scaling_config(
        FunctionName=name,
        Qualifier="1",
        FunctionScalingConfig={"MinExecutionEnvironments": 1, "MaxExecutionEnvironments": 1},
    )
    assert answer["FunctionState"] == "Active"

    def count() -> int:
        state = server.state()
        return sum(
            1
            for p in state["capacityProviders"]
            for i in p["instances"]
            for e in i["environments"]
            if e["functionArn"].endswith(f":{name}:1") and e["state"] == "Ready"
        )

    from tests.helpers import wait_for

    wait_for(lambda: count() == 1)
    with pytest.raises(lam.exceptions.InvalidParameterValueException):
        lam.put_function_scaling_config(
            FunctionName=name,
            Qualifier="1",
            FunctionScalingConfig={"MinExecutionEnvironments": 0, "MaxExecutionEnvironments": 2},
        )


def test_a_provider_in_use_cannot_be_deleted_and_lists_its_versions(
    lam: LambdaClient, make_function: Any
) -> None:
    from tests.helpers import OPERATOR, SUBNETS

    provider = lam.create_capacity_provider(
        CapacityProviderName="cp-in-use",
        VpcConfig=SUBNETS,
        PermissionsConfig=OPERATOR,
        CapacityProviderScalingConfig={"MaxVCpuCount": 12},
    )["CapacityProvider"]
    assert provider["State"] == "Active"
    assert provider["CapacityProviderScalingConfig"] == {"MaxVCpuCount": 12, "ScalingMode": "Auto"}
    name = managed(make_function, provider["CapacityProviderArn"])
    with pytest.raises(lam.exceptions.ResourceConflictException) as caught:
        lam.delete_capacity_provider(CapacityProviderName="cp-in-use")
    assert "first remove its association" in str(caught.value)
    listed = lam.list_function_versions_by_capacity_provider(CapacityProviderName="cp-in-use")
    assert [v["FunctionArn"].split(":")[-2] for v in listed["FunctionVersions"]] == [name]
    lam.delete_function(FunctionName=name)
    deleted = lam.delete_capacity_provider(CapacityProviderName="cp-in-use")
    assert deleted["CapacityProvider"]["State"] == "Deleting"
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_capacity_provider(CapacityProviderName="cp-in-use")


def test_capacity_provider_update_and_list(lam: LambdaClient, provider_arn: str) -> None:
    name = provider_arn.rsplit(":", 1)[-1]
    updated = lam.update_capacity_provider(
        CapacityProviderName=name,
        CapacityProviderScalingConfig={
            "ScalingMode": "Manual",
            "ScalingPolicies": [
                {
                    "PredefinedMetricType": "LambdaCapacityProviderAverageCPUUtilization",
                    "TargetValue": 30.0,
                }
            ],
        },
    )["CapacityProvider"]
    assert updated["CapacityProviderScalingConfig"]["ScalingMode"] == "Manual"
    names = [p["CapacityProviderArn"] for p in lam.list_capacity_providers()["CapacityProviders"]]
    assert provider_arn in names
    got = lam.get_capacity_provider(CapacityProviderName=provider_arn)["CapacityProvider"]
    assert got["CapacityProviderScalingConfig"]["ScalingPolicies"][0]["TargetValue"] == 30.0


def test_a_timed_out_invocation_keeps_running_and_holds_its_slot(
    lam: LambdaClient, make_function: Any, provider_arn: str, server: Any
) -> None:
    from tests.helpers import wait_for

    name = published(lam, make_function, provider_arn, concurrency=1, Timeout=1)
    response = invoke(lam, name, {"sleep": 3, "mark": "late"}, Qualifier="1")
    # The caller got its answer before the handler finished (it prints its mark then).
    assert not server.marks(name, "late")
    error = json.loads(response["Body"])
    assert response["FunctionError"] == "Unhandled" and error["errorType"] == "Sandbox.Timedout"
    # Managed Instances does not stop the code: it finishes after the caller gave up.
    wait_for(lambda: server.marks(name, "late"), timeout_s=10)
    assert invoke(lam, name, {}, Qualifier="1")["StatusCode"] == 200


def test_a_worker_killed_while_idle_does_not_lose_invocations_and_is_replaced(
    lam: LambdaClient, make_function: Any, provider_arn: str, server: Any
) -> None:
    import os
    import signal

    import psutil

    from tests.helpers import wait_for

    name = published(lam, make_function, provider_arn, concurrency=2)
    before = {e["id"] for e in server.environments(name)}
    victim_env = server.environments(name)[0]
    workers = psutil.Process(victim_env["pid"]).children()
    assert len(workers) == 2
    os.kill(workers[0].pid, signal.SIGKILL)
    for _ in range(20):
        assert invoke(lam, name, {}, Qualifier="1")["StatusCode"] == 200
    wait_for(
        lambda: {e["id"] for e in server.environments(name) if e["state"] == "Ready"} - before,
        timeout_s=30,
    )
    assert victim_env["id"] not in {e["id"] for e in server.environments(name)}

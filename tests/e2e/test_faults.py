"""Faults inside Managed Instances environments, injected under concurrent load.

Each test keeps several invocations running on two or more environments, injects one fault
into one environment, and checks that exactly the invocations the fault should fail get the
error AWS gives (``LMI_FACTS.md`` §3.4), that every other invocation succeeds, and that the
faulty environment is replaced.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psutil
import pytest

from tests.helpers import (
    LambdaClient,
    Server,
    managed_config,
    pin_environments,
    wait_for,
    wait_version_active,
    zip_code,
)

SERVER_ENV = {"CORRAL_STUCK_WORKER_GRACE_S": "2", "CORRAL_MANAGED_INIT_TIMEOUT_S": "3"}

FAULTY = r"""
import os, time

def handler(event, context):
    print("handling", context.aws_request_id)
    if event.get("allocate_mb"):
        hoard = bytearray(event["allocate_mb"] * 1024 * 1024)
        for i in range(0, len(hoard), 4096):
            hoard[i] = 1
    if event.get("exit") is not None:
        os._exit(event["exit"])
    time.sleep(event.get("sleep", 0))
    return {"ok": context.aws_request_id}
"""


class Outcome:
    """What one invocation got back, and which environment ran it."""

    def __init__(self, response: Any) -> None:
        self.request_id: str = response["ResponseMetadata"]["RequestId"]
        self.body: dict[str, Any] = json.loads(response["Payload"].read())
        self.error: str | None = (
            self.body.get("errorType") if response.get("FunctionError") else None
        )
        self.stream = ""


def deploy(
    lam: LambdaClient, provider_arn: str, name: str, environments: int, **kwargs: Any
) -> None:
    """A Managed Instances function with exactly ``environments`` environments of 4 slots."""
    lam.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role="arn:aws:iam::123456789012:role/r",
        Handler="app.handler",
        Code={"ZipFile": zip_code({"app.py": FAULTY})},
        MemorySize=2048,
        CapacityProviderConfig=managed_config(provider_arn, 4),
        **kwargs,
    )
    lam.publish_version(FunctionName=name)
    pin_environments(lam, name, environments)
    wait_version_active(lam, name, "1")


def ready(server: Server, name: str) -> set[str]:
    return {e["id"] for e in server.environments(name) if e["state"] == "Ready"}


def under_load(
    lam: LambdaClient,
    server: Server,
    name: str,
    load: list[dict[str, Any]],
    fault: dict[str, Any] | Callable[[], None],
) -> tuple[list[Outcome], Outcome]:
    """Run ``load`` concurrently; once it runs, inject ``fault``: an event to invoke, or an
    action. Returns every outcome, and the faulty invocation's (the last load's if none)."""

    def call(event: dict[str, Any]) -> Outcome:
        return Outcome(lam.invoke(FunctionName=name, Qualifier="1", Payload=json.dumps(event)))

    with ThreadPoolExecutor(len(load) + 1) as pool:
        running = [pool.submit(call, event) for event in load]
        wait_for(lambda: _handling(server, name) >= len(load), timeout_s=10)
        if callable(fault):
            fault()
            injected = running[-1]
        else:
            injected = pool.submit(call, fault)
        outcomes = [f.result() for f in running]
        faulted = injected.result()
    streams = {}
    for event in server.log_events(name):
        if event["message"].startswith("handling "):
            streams[event["message"].split()[1]] = event["logStreamName"]
    for outcome in {id(o): o for o in [*outcomes, faulted]}.values():
        outcome.stream = streams.get(outcome.request_id, "")
    return outcomes, faulted


def _handling(server: Server, name: str) -> int:
    return sum(1 for m in server.log_messages(name) if m.startswith("handling "))


def assert_only_one_environment_failed(outcomes: list[Outcome], stream: str, error: str) -> None:
    on_it = [o for o in outcomes if o.stream == stream]
    elsewhere = [o for o in outcomes if o.stream != stream]
    assert elsewhere, "the load did not reach another environment"
    assert all(o.error is None for o in elsewhere), [o.body for o in elsewhere]
    assert all(o.error == error for o in on_it), [o.body for o in on_it]


@pytest.fixture
def pool(lam: LambdaClient) -> Any:
    created = lam.create_capacity_provider(
        CapacityProviderName=f"faults-{time.monotonic_ns()}",
        VpcConfig={"SubnetIds": ["subnet-0123456789abcdef0"], "SecurityGroupIds": []},
        PermissionsConfig={
            "CapacityProviderOperatorRoleArn": "arn:aws:iam::123456789012:role/operator"
        },
    )
    return created["CapacityProvider"]["CapacityProviderArn"]


def test_out_of_memory_fails_that_environments_invocations_and_no_other(
    lam: LambdaClient, server: Server, pool: str
) -> None:
    deploy(lam, pool, "oom", environments=2, Timeout=60)
    before = ready(server, "oom")

    # Filling 2 GiB takes a few seconds on a small VM: the load outlasts it.
    outcomes, faulted = under_load(lam, server, "oom", [{"sleep": 12}] * 6, {"allocate_mb": 3000})
    assert faulted.error == "Runtime.OutOfMemory", faulted.body
    assert faulted.body["errorMessage"].endswith("Runtime exited with error: signal: killed")
    assert_only_one_environment_failed(outcomes, faulted.stream, "Runtime.OutOfMemory")
    wait_for(lambda: len(ready(server, "oom") - before) == 1, timeout_s=30)  # replaced
    assert len(ready(server, "oom")) == 2


def test_a_killed_runtime_fails_its_invocations_with_exit_error_and_no_other(
    lam: LambdaClient, server: Server, pool: str
) -> None:
    deploy(lam, pool, "killed", environments=2)
    before = ready(server, "killed")
    victim = server.environments("killed")[0]

    def fault() -> None:
        os.kill(victim["pid"], signal.SIGKILL)

    outcomes, _ = under_load(lam, server, "killed", [{"sleep": 2}] * 6, fault)
    assert_only_one_environment_failed(outcomes, victim["logStream"], "Runtime.ExitError")
    failed = [o for o in outcomes if o.error]
    assert failed, "no invocation ran on the killed environment"
    assert failed[0].body["errorMessage"].endswith("Runtime exited with error: signal: killed")
    wait_for(lambda: len(ready(server, "killed") - before) == 1, timeout_s=30)
    assert victim["id"] not in ready(server, "killed")


def test_a_dead_worker_fails_only_its_invocation_and_its_environment_is_replaced(
    lam: LambdaClient, server: Server, pool: str
) -> None:
    deploy(lam, pool, "worker", environments=2)
    before = ready(server, "worker")

    outcomes, faulted = under_load(lam, server, "worker", [{"sleep": 2}] * 6, {"exit": 3})
    assert faulted.error == "Runtime.ExitError", faulted.body
    # Its neighbours in the same environment finish their work.
    assert [o.body for o in outcomes if o.error] == []
    assert any(o.stream == faulted.stream for o in outcomes)
    wait_for(lambda: len(ready(server, "worker") - before) == 1, timeout_s=30)
    assert faulted.stream not in {e["logStream"] for e in server.environments("worker")}


def test_a_worker_stuck_past_its_timeout_gets_its_environment_recycled(
    lam: LambdaClient, server: Server, pool: str
) -> None:
    deploy(lam, pool, "stuck", environments=2, Timeout=1)
    before = ready(server, "stuck")

    outcomes, faulted = under_load(lam, server, "stuck", [{"sleep": 0.5}] * 6, {"sleep": 600})
    assert faulted.error == "Sandbox.Timedout", faulted.body
    assert [o.body for o in outcomes if o.error] == []
    # 2 s after the timeout (CORRAL_STUCK_WORKER_GRACE_S) the environment is recycled.
    stuck = next(e for e in server.environments("stuck") if e["logStream"] == faulted.stream)
    wait_for(lambda: stuck["id"] not in ready(server, "stuck"), timeout_s=15)
    wait_for(lambda: len(ready(server, "stuck") - before) == 1, timeout_s=30)
    for _ in range(8):
        assert "FunctionError" not in lam.invoke(FunctionName="stuck", Qualifier="1")


def test_init_failures_fail_the_version_while_other_functions_serve(
    lam: LambdaClient, server: Server, pool: str
) -> None:
    deploy(lam, pool, "steady", environments=1)
    broken = {
        "crash": ("raise RuntimeError('no config')\n", "FunctionError.RuntimeInitError"),
        "slow": ("import time\ntime.sleep(60)\n", "FunctionError.InitTimeout"),
    }
    for name, (module, _) in broken.items():
        lam.create_function(
            FunctionName=name,
            Runtime="python3.11",
            Role="arn:aws:iam::123456789012:role/r",
            Handler="app.handler",
            Code={"ZipFile": zip_code({"app.py": module + "def handler(e, c):\n    return 1\n"})},
            MemorySize=2048,
            Timeout=3,
            CapacityProviderConfig=managed_config(pool, 4),
        )
    with ThreadPoolExecutor(4) as load:
        steady = [
            load.submit(lam.invoke, FunctionName="steady", Qualifier="1", Payload=b'{"sleep": 0.2}')
            for _ in range(24)
        ]
        for name in broken:
            lam.publish_version(FunctionName=name)
        for name, (_, reason) in broken.items():
            config = wait_for(
                lambda n=name: _failed(lam, n),
                timeout_s=30,
            )
            assert config["StateReasonCode"] == reason, config
        assert all("FunctionError" not in f.result() for f in steady)
    crashed = lam.get_function_configuration(FunctionName="crash", Qualifier="1")
    assert "RuntimeError" in crashed["StateReason"] and "no config" in crashed["StateReason"]


def _failed(lam: LambdaClient, name: str) -> dict[str, Any] | None:
    config = lam.get_function_configuration(FunctionName=name, Qualifier="1")
    return dict(config) if config["State"] == "Failed" else None


def test_environments_stopped_while_they_start_leave_no_network_helper_behind(
    lam: LambdaClient, server: Server, provider_arn: str, make_function: Any
) -> None:
    def helpers() -> int:
        count = 0
        for process in psutil.Process(server.proc.pid).children(recursive=True):
            with contextlib.suppress(psutil.NoSuchProcess):  # one may end meanwhile
                count += process.name() == "slirp4netns"
        return count

    def live_environments() -> int:
        state = server.state()
        return sum(
            len(i["environments"]) for p in state["capacityProviders"] for i in p["instances"]
        )

    for pause_s in (0.0, 0.01, 0.02, 0.04, 0.08):
        name = make_function(
            "brief", MemorySize=2048, CapacityProviderConfig=managed_config(provider_arn, 4)
        )
        lam.publish_version(FunctionName=name)  # its three environments start soon
        wait_for(lambda n=name: server.environments(n), interval_s=0.005)
        time.sleep(pause_s)  # deleted at different points of their start
        lam.delete_function(FunctionName=name)
    # One slirp4netns per live environment in a container, and none for those that are gone.
    wait_for(lambda: helpers() <= live_environments(), timeout_s=20)

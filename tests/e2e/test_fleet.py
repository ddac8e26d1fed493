"""The fleet on a real server: instances, placement, and both scaling loops under load."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.helpers import (
    OPERATOR,
    ROLE,
    SUBNETS,
    LambdaClient,
    Server,
    start_server,
    status_of,
    wait_for,
    wait_version_active,
    zip_code,
)

SLEEPY = zip_code(
    {"app.py": "import time\ndef handler(e, c):\n    time.sleep(e.get('sleep', 0))\n    return 1\n"}
)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(
        tmp_path_factory.mktemp("fleet"),
        CORRAL_SCALE_IN_COOLDOWN_S="1",
        CORRAL_INSTANCE_LAUNCH_DELAY_S="0.5",
    )
    yield server
    server.stop()


def state(server: Server) -> dict[str, Any]:
    return server.state()


def provider_state(server: Server, name: str) -> dict[str, Any]:
    return next(p for p in state(server)["capacityProviders"] if p["name"] == name)


def live_instances(server: Server, provider: str) -> list[dict[str, Any]]:
    return [i for i in provider_state(server, provider)["instances"] if i["state"] != "Terminated"]


def ready_environments(server: Server, provider: str) -> list[dict[str, Any]]:
    return [
        e
        for i in live_instances(server, provider)
        for e in i["environments"]
        if e["state"] == "Ready"
    ]


def deploy(
    lam: LambdaClient, provider: str, name: str, *, memory: int = 2048, **scaling: int
) -> None:
    arn = lam.create_capacity_provider(
        CapacityProviderName=provider,
        VpcConfig=SUBNETS,
        PermissionsConfig=OPERATOR,
        InstanceRequirements={"AllowedInstanceTypes": ["c6a.large"]},
        CapacityProviderScalingConfig={"MaxVCpuCount": scaling.pop("max_vcpus", 400)},
    )["CapacityProvider"]["CapacityProviderArn"]
    lam.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": SLEEPY},
        MemorySize=memory,
        CapacityProviderConfig={
            "LambdaManagedInstancesCapacityProviderConfig": {
                "CapacityProviderArn": arn,
                "PerExecutionEnvironmentMaxConcurrency": 1,
            }
        },
        Publish=True,
    )


class Load:
    """Closed-loop clients on 127.0.0.1; a throttled client retries after 20 ms."""

    def __init__(self, lam: LambdaClient, name: str, clients: int, sleep_s: float) -> None:
        self.ok = 0
        self.throttled_at: list[float] = []
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._loop, args=(lam, name, sleep_s), daemon=True)
            for _ in range(clients)
        ]

    def _loop(self, lam: LambdaClient, name: str, sleep_s: float) -> None:
        payload = json.dumps({"sleep": sleep_s})
        while not self._stop.is_set():
            try:
                lam.invoke(FunctionName=name, Qualifier="1", Payload=payload)["Payload"].read()
                self.ok += 1
            except lam.exceptions.TooManyRequestsException:
                self.throttled_at.append(time.monotonic())
                time.sleep(0.02)

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)


def test_a_step_to_four_times_the_capacity_grows_environments_and_instances_then_shrinks(
    fleet: Server,
) -> None:
    lam = fleet.client()
    deploy(lam, "step", "step-fn")
    wait_version_active(lam, "step-fn", "1")
    lam.put_function_scaling_config(
        FunctionName="step-fn",
        Qualifier="1",
        FunctionScalingConfig={"MinExecutionEnvironments": 3, "MaxExecutionEnvironments": 12},
    )
    start = live_instances(fleet, "step")
    assert len(start) == 3 and all(i["instanceType"] == "c6a.large" for i in start)
    assert sorted(len(i["environments"]) for i in start) == [1, 1, 1]  # spread
    with Load(lam, "step-fn", clients=12, sleep_s=0.3) as load:  # 4 x 3 slots
        wait_for(lambda: len(ready_environments(fleet, "step")) >= 12, timeout_s=60)
        grown = live_instances(fleet, "step")
        assert len(grown) >= 6  # two environments of 1 vCPU per c6a.large
        for instance in grown:
            assert instance["vCpuAllocated"] <= instance["vCpu"]
            assert instance["memoryAllocatedMiB"] <= instance["memoryMiB"]
        calm_since = time.monotonic()
        time.sleep(3.0)
        assert not [t for t in load.throttled_at if t > calm_since], "throttles did not stop"
        assert load.throttled_at, "the step should have been throttled before scaling out"
    wait_for(lambda: len(ready_environments(fleet, "step")) == 3, timeout_s=60)
    wait_for(lambda: len(live_instances(fleet, "step")) <= 3, timeout_s=60)
    assert any(t["cause"] == "concurrency" for t in state(fleet)["throttles"])


def test_max_vcpu_count_holds_and_fails_a_version_that_cannot_get_its_minimum(
    fleet: Server,
) -> None:
    lam = fleet.client()
    deploy(lam, "capped", "capped-fn", memory=4096, max_vcpus=4)  # 3 x 2 vCPU > 4
    waiter_config: Any = {"Delay": 0.2, "MaxAttempts": 300}
    with pytest.raises(Exception, match="Failed"):
        lam.get_waiter("published_version_active").wait(
            FunctionName="capped-fn", Qualifier="1", WaiterConfig=waiter_config
        )
    config = lam.get_function_configuration(FunctionName="capped-fn", Qualifier="1")
    assert config["StateReasonCode"] == "CapacityProviderScalingLimitExceeded"
    assert "maxVCpuCount" in config["StateReason"]
    assert provider_state(fleet, "capped")["vCpuInUse"] <= 4


def test_two_providers_never_share_an_instance(fleet: Server) -> None:
    lam = fleet.client()
    deploy(lam, "left", "left-fn")
    deploy(lam, "right", "right-fn")
    wait_version_active(lam, "left-fn", "1")
    wait_version_active(lam, "right-fn", "1")
    seen: dict[str, str] = {}
    for provider in state(fleet)["capacityProviders"]:
        for instance in provider["instances"]:
            assert seen.setdefault(instance["id"], provider["name"]) == provider["name"]
            for env in instance["environments"]:
                function = env["functionArn"].split(":function:")[1].split(":")[0]
                assert function.startswith(provider["name"]) or provider["name"] in (
                    "step",
                    "capped",
                )
    left = {i["id"] for i in live_instances(fleet, "left")}
    right = {i["id"] for i in live_instances(fleet, "right")}
    assert left and right and not left & right


def test_updating_a_provider_changes_its_scaling_at_once(fleet: Server) -> None:
    lam = fleet.client()
    deploy(lam, "grow", "grow-fn", memory=4096, max_vcpus=4)
    wait_for(
        lambda: (
            lam.get_function_configuration(FunctionName="grow-fn", Qualifier="1")["State"]
            == "Failed"
        ),
        timeout_s=30,
    )
    lam.update_capacity_provider(
        CapacityProviderName="grow", CapacityProviderScalingConfig={"MaxVCpuCount": 12}
    )
    # Version 1 stays Failed, as on AWS; a changed configuration publishes version 2.
    lam.update_function_configuration(FunctionName="grow-fn", Timeout=4)
    assert lam.publish_version(FunctionName="grow-fn")["Version"] == "2"
    lam.get_waiter("published_version_active").wait(
        FunctionName="grow-fn", Qualifier="2", WaiterConfig={"Delay": 1, "MaxAttempts": 60}
    )
    assert provider_state(fleet, "grow")["vCpuInUse"] <= 12


def test_deleting_a_provider_needs_its_versions_gone_then_ends_its_instances(fleet: Server) -> None:
    lam = fleet.client()
    deploy(lam, "short", "short-fn")
    wait_version_active(lam, "short-fn", "1")
    assert live_instances(fleet, "short")
    lam.delete_function(FunctionName="short-fn")
    lam.delete_capacity_provider(CapacityProviderName="short")
    wait_for(
        lambda: all(
            i["state"] == "Terminated"
            for p in state(fleet)["capacityProviders"]
            if p["name"] == "short"
            for i in p["instances"]
        ),
        timeout_s=30,
    )


def test_min_and_max_zero_deactivate_a_version_until_it_is_scaled_up_again(fleet: Server) -> None:
    lam = fleet.client()
    deploy(lam, "nap", "nap-fn")
    wait_version_active(lam, "nap-fn", "1")
    answer = lam.put_function_scaling_config(
        FunctionName="nap-fn",
        Qualifier="1",
        FunctionScalingConfig={"MinExecutionEnvironments": 0, "MaxExecutionEnvironments": 0},
    )
    assert answer["FunctionState"] == "Active"

    def state_of() -> str:
        return str(lam.get_function_configuration(FunctionName="nap-fn", Qualifier="1")["State"])

    wait_for(lambda: state_of() == "Deactivated", timeout_s=30)
    assert ready_environments(fleet, "nap") == []
    with pytest.raises(lam.exceptions.ResourceConflictException):
        lam.invoke(FunctionName="nap-fn", Qualifier="1")
    lam.put_function_scaling_config(
        FunctionName="nap-fn",
        Qualifier="1",
        FunctionScalingConfig={"MinExecutionEnvironments": 1, "MaxExecutionEnvironments": 2},
    )
    wait_for(lambda: state_of() == "Active", timeout_s=30)
    assert status_of(lam.invoke(FunctionName="nap-fn", Qualifier="1")) == 200


def test_no_allowed_type_that_fits_logs_a_launch_failure(fleet: Server) -> None:
    lam = fleet.client()
    arn = lam.create_capacity_provider(
        CapacityProviderName="tiny",
        VpcConfig=SUBNETS,
        PermissionsConfig=OPERATOR,
        InstanceRequirements={"AllowedInstanceTypes": ["c6a.large"]},
    )["CapacityProvider"]["CapacityProviderArn"]
    lam.create_function(
        FunctionName="tiny-fn",
        Runtime="python3.11",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": SLEEPY},
        MemorySize=8192,  # 4 vCPU: no c6a.large can hold it
        CapacityProviderConfig={
            "LambdaManagedInstancesCapacityProviderConfig": {"CapacityProviderArn": arn}
        },
        Publish=True,
    )
    time.sleep(1.0)
    assert (
        lam.get_function_configuration(FunctionName="tiny-fn", Qualifier="1")["State"] == "Pending"
    )
    assert live_instances(fleet, "tiny") == []

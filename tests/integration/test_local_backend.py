"""The local backend's instances: lifecycle, budgets, and the provider's system log."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from corral.agent.environment import EnvironmentSettings
from corral.agent.registry import EnvironmentRegistry
from corral.backends.local import LocalBackend
from corral.core import models
from corral.sandbox.process import ProcessSandbox
from corral.telemetry.logdb import LogQuery
from corral.telemetry.logstore import LogStore
from tests.helpers import eventually

KIND = models.InstanceType("c7g.xlarge", "c7g", "compute", "arm64", 4, 8192, 0.145)


def provider(level: str = "") -> models.CapacityProvider:
    return models.CapacityProvider(
        name="pool",
        arn="arn:aws:lambda:us-east-1:123456789012:capacity-provider:pool",
        state=models.CapacityProviderState.ACTIVE,
        subnet_ids=("subnet-1",),
        security_group_ids=(),
        operator_role_arn="arn:aws:iam::123456789012:role/op",
        last_modified_s=0.0,
        system_log_level=level,
    )


def backend(tmp_path: Path, sink: LogStore, delay_s: float = 0.05) -> LocalBackend:
    return LocalBackend(
        sandbox=ProcessSandbox(),
        registry=EnvironmentRegistry(),
        sink=sink,
        run_dir=tmp_path,
        env_settings=EnvironmentSettings(stop_grace_s=0.5),
        launch_delay_s=delay_s,
    )


def state_of(local: LocalBackend) -> models.InstanceState:
    """The state of the provider's one instance."""
    return local.instances("pool")[0].state


async def events(sink: LogStore) -> list[dict[str, Any]]:
    found = await sink.query(LogQuery("/aws/lambda/capacity-provider/pool"))
    return [json.loads(e.message) for e in found]


@pytest.mark.asyncio
async def test_an_instance_is_pending_for_the_launch_delay_then_running_then_terminated(
    tmp_path: Path,
    sink: LogStore,
) -> None:
    local = backend(tmp_path, sink)
    await local.start()
    info = local.launch_instance(provider(), KIND)
    assert info.state is models.InstanceState.PENDING
    assert (info.vcpus, info.memory_mib, info.vcpus_allocated) == (4, 8192, 0)
    await eventually(lambda: state_of(local) is models.InstanceState.RUNNING)
    local.terminate_instance(info.id, "test")
    await eventually(lambda: state_of(local) is models.InstanceState.TERMINATED)
    logged = await events(sink)
    assert [e["metadata"]["event"] for e in logged] == [
        "Launching",
        "Launched",
        "Terminating",
        "Terminated",
    ]
    launched = logged[1]
    assert launched["level"] == "INFO"
    assert str(launched["message"]).startswith("Successfully launched c7g.xlarge instance i-")
    assert launched["metadata"] == {
        "event": "Launched",
        "instanceId": info.id,
        "availabilityZones": [info.availability_zone],
        "instanceTypes": ["c7g.xlarge"],
        "capacityProviderArn": provider().arn,
    }
    assert str(launched["timestamp"]).endswith("Z")
    await local.stop(1.0)


@pytest.mark.asyncio
async def test_a_warn_level_system_log_keeps_only_failures(tmp_path: Path, sink: LogStore) -> None:
    local = backend(tmp_path, sink, delay_s=0.0)
    await local.start()
    local.launch_instance(provider("WARN"), KIND)
    # Launched is logged (at INFO) when the instance runs: by then nothing was kept.
    await eventually(lambda: state_of(local) is models.InstanceState.RUNNING)
    assert await events(sink) == []
    await local.stop(1.0)


@pytest.mark.asyncio
async def test_a_launch_failure_is_logged_once_a_minute_at_warn(
    tmp_path: Path, sink: LogStore
) -> None:
    local = backend(tmp_path, sink)
    for _ in range(3):
        local.report_launch_failure(provider("WARN"), "No allowed instance type can hold it")
    logged = await events(sink)
    assert len(logged) == 1
    assert logged[0]["level"] == "WARN" and logged[0]["metadata"]["event"] == "LaunchFailed"
    assert logged[0]["message"] == "No allowed instance type can hold it"


@pytest.mark.asyncio
async def test_an_instance_that_fails_its_health_check_is_logged_and_terminated(
    tmp_path: Path,
    sink: LogStore,
) -> None:
    problems: list[str | None] = [None]
    local = LocalBackend(
        sandbox=ProcessSandbox(),
        registry=EnvironmentRegistry(),
        sink=sink,
        run_dir=tmp_path,
        env_settings=EnvironmentSettings(stop_grace_s=0.5),
        launch_delay_s=0.0,
        health_probe=lambda _: problems[0],
        health_interval_s=0.05,
    )
    await local.start()
    info = local.launch_instance(provider(), KIND)
    await eventually(lambda: state_of(local) is models.InstanceState.RUNNING)
    problems[0] = "only 3 MiB of disk left"
    await eventually(lambda: state_of(local) is models.InstanceState.TERMINATED)
    failed = [e for e in await events(sink) if e["metadata"]["event"] == "HealthCheckFailed"]
    assert failed and failed[0]["level"] == "WARN"
    assert failed[0]["message"] == "only 3 MiB of disk left"
    assert failed[0]["metadata"]["instanceId"] == info.id
    await local.stop(1.0)


def test_the_host_health_probe_passes_on_a_writable_directory(tmp_path: Path) -> None:
    from corral.backends.local import host_health

    assert host_health(tmp_path) is None
    assert host_health(tmp_path / "missing") is not None

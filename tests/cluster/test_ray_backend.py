"""Capacity providers on a real Ray cluster (issue #14): a head and two ``corral`` nodes on
loopback addresses of their own, ``corral serve --backend ray`` joined to it, functions in
runc containers on the nodes under the real awslambdaric.

The cluster is shared by the tests of this module (a node costs seconds and hundreds of MB);
each test takes its own capacity provider and gives its nodes back at the end.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.conftest import unique
from tests.helpers import (
    OPERATOR,
    ROLE,
    SUBNETS,
    LambdaClient,
    Server,
    echo_zip,
    error_of,
    invoke,
    managed_config,
    start_server,
    wait_for,
    wait_version_active,
    zip_code,
)
from tests.raycluster import RayCluster, RayNode

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def cluster() -> Iterator[RayCluster]:
    made = RayCluster().start(workers=2)
    yield made
    made.stop()


@pytest.fixture(scope="module")
def ray_server(cluster: RayCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(
        tmp_path_factory.mktemp("corral-ray"),
        CORRAL_BACKEND="ray",
        CORRAL_RAY_ADDRESS=cluster.address,
        # Scale in (one environment, then empty instances) every second, not every minute.
        CORRAL_SCALE_IN_COOLDOWN_S="1",
    )
    yield srv
    assert srv.stop() == 0


@pytest.fixture(scope="module")
def rlam(ray_server: Server) -> LambdaClient:
    return ray_server.client()


def instances(server: Server, provider: str) -> list[dict[str, Any]]:
    name = provider.rsplit(":", 1)[-1]
    for found in server.state()["capacityProviders"]:
        if found["name"] == name:
            return list(found["instances"])
    return []


@pytest.fixture
def provider(rlam: LambdaClient, ray_server: Server) -> Iterator[str]:
    """A capacity provider of its own; its functions and instances go at the end, so the
    nodes are idle for the next test."""
    arn: str = rlam.create_capacity_provider(
        CapacityProviderName=unique("rp"), VpcConfig=SUBNETS, PermissionsConfig=OPERATOR
    )["CapacityProvider"]["CapacityProviderArn"]
    made: list[str] = []
    yield arn
    for function in rlam.list_functions()["Functions"]:
        config = function.get("CapacityProviderConfig", {})
        inner = config.get("LambdaManagedInstancesCapacityProviderConfig", {})
        if inner.get("CapacityProviderArn") == arn:
            made.append(function["FunctionName"])
    for name in made:
        rlam.delete_function(FunctionName=name)
    rlam.delete_capacity_provider(CapacityProviderName=arn)
    wait_for(lambda: not held_by(ray_server, arn), timeout_s=60)


def held_by(server: Server, provider: str) -> list[str]:
    """Instances of a provider (deleted ones included) that still hold a node."""
    name = provider.rsplit(":", 1)[-1]
    return [
        line
        for line in server.get("/metrics").text.splitlines()
        if line.startswith(f'corral_instances{{capacity_provider="{name}"')
        and 'state="Terminated"' not in line
        and not line.endswith(" 0.0")
    ]


def managed(
    rlam: LambdaClient, provider: str, *, minimum: int, maximum: int, slots: int = 2, **kw: Any
) -> str:
    name = unique("rf")
    rlam.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": echo_zip()},
        MemorySize=2048,
        CapacityProviderConfig=managed_config(provider, slots),
        **kw,
    )
    rlam.publish_version(FunctionName=name)
    rlam.put_function_scaling_config(
        FunctionName=name,
        Qualifier="1",
        FunctionScalingConfig={
            "MinExecutionEnvironments": minimum,
            "MaxExecutionEnvironments": maximum,
        },
    )
    wait_version_active(rlam, name, "1")
    return name


def node_of(cluster: RayCluster, instance: dict[str, Any]) -> RayNode:
    ip = instance["address"].rsplit(":", 1)[0]
    return next(n for n in cluster.nodes if n.ip == ip)


def test_a_versions_environments_spread_over_two_nodes_and_serve_with_their_logs(
    rlam: LambdaClient, ray_server: Server, provider: str
) -> None:
    # Three environments of one vCPU: more than one 2-vCPU node holds.
    name = managed(rlam, provider, minimum=3, maximum=3)
    running = [i for i in instances(ray_server, provider) if i["state"] == "Running"]
    holding = [i for i in running if i["environments"]]
    assert len(holding) == 2 and sum(len(i["environments"]) for i in holding) == 3
    assert all(i["node"] for i in holding)
    assert len({i["address"].split(":")[0] for i in holding}) == 2
    assert all(i["instanceType"] == "m7i.large" and i["vCpu"] == 2 for i in holding)
    answer = invoke(rlam, name, {"mark": "ray"}, Qualifier="1", LogType="Tail")
    assert answer["StatusCode"] == 200
    request_id = answer["ResponseMetadata"]["RequestId"]
    assert json.loads(answer["Body"])["request_id"] == request_id
    events = ray_server.log_events(name, requestId=request_id)
    assert any(e["message"].startswith("MARK ray ") for e in events)
    assert {e["requestId"] for e in events} == {request_id}
    metrics = ray_server.get("/metrics").text
    assert f'corral_invocations_total{{function="{name}",version="1"}} 1.0' in metrics
    table = subprocess.run(
        [sys.executable, "-m", "corral", "status", "--endpoint-url", ray_server.url],
        capture_output=True,
        text=True,
        env=ray_server.cli_env() | {"COLUMNS": "250"},
        timeout=60,
    )
    assert table.returncode == 0 and "node " in table.stdout
    address = ray_server.state()["backend"]["address"]
    assert f"Ray cluster at {address}: 2 corral node(s), 2 in use" in table.stdout
    # Instances on nodes are not slices of the server's host.
    assert ray_server.state()["host"]["instanceVCpu"] == 0


NODE_APP = r"""
export const handler = async (event, context) => {
  console.log(`start of ${context.awsRequestId}`);
  await new Promise((resolve) => setTimeout(resolve, 300));
  if (event.fail) throw new TypeError('remote failure');
  console.log(`end of ${context.awsRequestId}`);
  return context.awsRequestId;
};
"""


def test_a_node_function_serves_from_a_node_with_its_logs_by_request(
    rlam: LambdaClient, ray_server: Server, provider: str
) -> None:
    """Node.js on a remote instance: the node's agent prepares the runtime; one process
    serves concurrent requests, each line filed under its request."""
    name = unique("rnode")
    rlam.create_function(
        FunctionName=name,
        Runtime="nodejs22.x",
        Role=ROLE,
        Handler="index.handler",
        Code={"ZipFile": zip_code({"index.mjs": NODE_APP})},
        MemorySize=2048,
        CapacityProviderConfig=managed_config(provider, 16),
    )
    rlam.publish_version(FunctionName=name)
    rlam.put_function_scaling_config(
        FunctionName=name,
        Qualifier="1",
        FunctionScalingConfig={"MinExecutionEnvironments": 1, "MaxExecutionEnvironments": 1},
    )
    wait_version_active(rlam, name, "1")
    (instance,) = [i for i in instances(ray_server, provider) if i["environments"]]
    assert instance["node"] and instance["environments"][0]["workerPool"] == "aws-lambda-ric"

    def call(_: int) -> str:
        answer = rlam.invoke(FunctionName=name, Qualifier="1", Payload=b"{}")
        assert "FunctionError" not in answer
        return str(json.loads(answer["Payload"].read()))

    started = time.monotonic()
    with ThreadPoolExecutor(16) as pool:
        ids = list(pool.map(call, range(16)))
    assert time.monotonic() - started < 2.0  # 16 x 300 ms at once on one environment
    for request_id in ids[:4]:
        lines = wait_for(
            lambda rid=request_id: (
                (events := ray_server.log_events(name, requestId=rid))
                and any("end of" in e["message"] for e in events)
                and events
            )
        )
        mine = [json.loads(e["message"]) for e in lines if '"level"' in e["message"]]
        assert [m["message"] for m in mine] == [f"start of {request_id}", f"end of {request_id}"]
    failed = rlam.invoke(FunctionName=name, Qualifier="1", Payload=b'{"fail": true}')
    assert failed["FunctionError"] == "Unhandled"
    assert json.loads(failed["Payload"].read())["errorType"] == "TypeError"


def test_a_providers_requirements_and_vcpu_cap_decide_which_nodes_it_takes(
    rlam: LambdaClient, ray_server: Server
) -> None:
    """Nodes are m7i.large: a provider that allows only c7i.large gets none of them (its
    instances wait for Ray's autoscaler), and one capped at 2 vCPUs takes one node at most:
    its version, whose minimum is three environments of one vCPU, fails as on AWS."""
    picky = rlam.create_capacity_provider(
        CapacityProviderName=unique("rp"),
        VpcConfig=SUBNETS,
        PermissionsConfig=OPERATOR,
        InstanceRequirements={"AllowedInstanceTypes": ["c7i.large"]},
    )["CapacityProvider"]["CapacityProviderArn"]
    capped = rlam.create_capacity_provider(
        CapacityProviderName=unique("rp"),
        VpcConfig=SUBNETS,
        PermissionsConfig=OPERATOR,
        CapacityProviderScalingConfig={"MaxVCpuCount": 2},
    )["CapacityProvider"]["CapacityProviderArn"]
    names = [unique("rf"), unique("rf")]
    try:
        for name, arn in zip(names, (picky, capped), strict=True):
            rlam.create_function(
                FunctionName=name,
                Runtime="python3.11",
                Role=ROLE,
                Handler="app.handler",
                Code={"ZipFile": echo_zip()},
                MemorySize=2048,
                CapacityProviderConfig=managed_config(arn, 2),
                Publish=True,
            )
        failed = wait_for(
            lambda: (
                c
                if (c := rlam.get_function_configuration(FunctionName=names[1], Qualifier="1"))[
                    "State"
                ]
                == "Failed"
                else None
            ),
            timeout_s=30,
        )
        assert failed["StateReasonCode"] == "CapacityProviderScalingLimitExceeded"
        held = [i for i in instances(ray_server, capped) if i["node"]]
        assert len(held) <= 1 and all(i["vCpu"] == 2 for i in held)
        waiting = wait_for(lambda: instances(ray_server, picky), timeout_s=20)
        assert all(i["state"] == "Pending" and not i["node"] for i in waiting)
        assert (
            rlam.get_function(FunctionName=names[0], Qualifier="1")["Configuration"]["State"]
            == "Pending"
        )
        assert ray_server.state()["backend"]["nodesInUse"] <= 1
        told = ray_server.get(
            "/corral/v1/logs", capacityProvider=picky.rsplit(":", 1)[-1], limit="1000"
        ).json()["events"]
        assert any(
            "Waiting for Ray's autoscaler" in e["message"] and "c7i.large" in e["message"]
            for e in told
        ), told
    finally:
        for name in names:
            rlam.delete_function(FunctionName=name)
        for arn in (picky, capped):
            rlam.delete_capacity_provider(CapacityProviderName=arn)
        wait_for(lambda: not held_by(ray_server, picky) and not held_by(ray_server, capped))


def test_a_full_version_throttles_through_remote_agents(rlam: LambdaClient, provider: str) -> None:
    name = managed(rlam, provider, minimum=1, maximum=1, slots=1)
    with ThreadPoolExecutor(2) as pool:
        busy = pool.submit(invoke, rlam, name, {"sleep": 3}, Qualifier="1")
        time.sleep(1.0)
        code, status, _ = error_of(rlam.invoke, FunctionName=name, Qualifier="1", Payload=b"{}")
        assert (code, status) == ("TooManyRequestsException", 429)
        assert busy.result()["StatusCode"] == 200


def test_a_step_load_takes_the_second_node(
    rlam: LambdaClient, ray_server: Server, provider: str
) -> None:
    name = managed(rlam, provider, minimum=1, maximum=4)
    # Published with the default minimum of 3, then set to 1: settle there first.
    wait_for(
        lambda: len([i for i in instances(ray_server, provider) if i["environments"]]) == 1,
        timeout_s=60,
    )
    deadline = time.monotonic() + 60
    with ThreadPoolExecutor(8) as pool:
        while time.monotonic() < deadline:
            futures = [pool.submit(_quietly, rlam, name, {"sleep": 1}) for _ in range(8)]
            for future in futures:
                future.result()
            holding = [i for i in instances(ray_server, provider) if i["environments"]]
            if len(holding) == 2:
                break
    assert len({i["node"] for i in holding}) == 2


def _quietly(rlam: LambdaClient, name: str, event: Any) -> None:
    try:
        invoke(rlam, name, event, Qualifier="1")
    except rlam.exceptions.TooManyRequestsException:
        pass


def test_a_node_that_dies_under_load_fails_its_invocations_and_is_replaced(
    rlam: LambdaClient, ray_server: Server, cluster: RayCluster, provider: str
) -> None:
    # Four environments of one slot fill both nodes: two on each.
    name = managed(rlam, provider, minimum=4, maximum=4, slots=1)
    holding = [i for i in instances(ray_server, provider) if i["environments"]]
    assert [len(i["environments"]) for i in holding] == [2, 2]
    victim = node_of(cluster, holding[0])
    results: list[tuple[str, Any, Any]] = []

    def call() -> None:
        try:
            answer = invoke(rlam, name, {"sleep": 2.5}, Qualifier="1")
            results.append(("ok", answer["StatusCode"], answer.get("FunctionError")))
        except Exception as exc:  # the lost ones
            results.append(("error", exc, None))

    with ThreadPoolExecutor(4) as pool:
        calls = [pool.submit(call) for _ in range(4)]
        wait_for(lambda: _busy(ray_server, provider) == 4)
        started = time.monotonic()
        victim.kill()
        for future in calls:
            future.result()
    noticed_s = time.monotonic() - started
    assert sorted(kind for kind, _, _ in results) == ["error", "error", "ok", "ok"]
    assert [r[1:] for r in results if r[0] == "ok"] == [(200, None), (200, None)]
    for _, error, _ in (r for r in results if r[0] == "error"):
        assert error.response["Error"]["Code"] == "ServiceException"
        assert "was lost" in error.response["Error"]["Message"]
    assert noticed_s < 10  # at once, not after a Ray timeout
    # The version stays Active and serves on the node that is left.
    assert rlam.get_function_configuration(FunctionName=name, Qualifier="1")["State"] == "Active"
    assert invoke(rlam, name, {}, Qualifier="1")["StatusCode"] == 200
    # Its lost environments come back on a node that joins.
    cluster.nodes.remove(victim)
    cluster.add_worker()
    wait_for(lambda: _ready(ray_server, provider) == 4, timeout_s=60)


def _busy(server: Server, provider: str) -> int:
    return sum(e["concurrency"] for i in instances(server, provider) for e in i["environments"])


def _ready(server: Server, provider: str) -> int:
    return sum(
        1 for i in instances(server, provider) for e in i["environments"] if e["state"] == "Ready"
    )


def test_a_restarted_server_leaves_no_runtime_behind_and_serves_again(
    cluster: RayCluster, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    first = start_server(data, CORRAL_BACKEND="ray", CORRAL_RAY_ADDRESS=cluster.address)
    lam = first.client()
    arn = lam.create_capacity_provider(
        CapacityProviderName="restarted", VpcConfig=SUBNETS, PermissionsConfig=OPERATOR
    )["CapacityProvider"]["CapacityProviderArn"]
    name = managed(lam, arn, minimum=1, maximum=1)
    runtimes = {
        p.pid
        for node in cluster.nodes
        for p in map(_process, node.tree())
        if p is not None and "awslambdaric" in " ".join(_cmdline(p))
    }
    assert runtimes
    first.proc.kill()  # the driver dies: Ray ends the agents it owned, and their runtimes
    first.proc.wait(timeout=30)
    first.close_files()
    wait_for(lambda: not any(psutil.pid_exists(pid) for pid in runtimes), timeout_s=30)
    again = start_server(data, CORRAL_BACKEND="ray", CORRAL_RAY_ADDRESS=cluster.address)
    try:
        lam = again.client()
        assert wait_version_active(lam, name, "1")["State"] == "Active"
        assert invoke(lam, name, {}, Qualifier="1")["StatusCode"] == 200
        lam.delete_function(FunctionName=name)
        lam.delete_capacity_provider(CapacityProviderName=arn)
        wait_for(lambda: not held_by(again, arn), timeout_s=60)
    finally:
        assert again.stop() == 0


def _process(pid: int) -> psutil.Process | None:
    try:
        return psutil.Process(pid)
    except psutil.NoSuchProcess:
        return None


def _cmdline(process: psutil.Process) -> list[str]:
    try:
        return process.cmdline()
    except psutil.Error:
        return []


def test_a_node_declaring_an_unknown_type_is_not_used_and_says_why(
    cluster: RayCluster, ray_server: Server
) -> None:
    odd = cluster.add_worker(instance_type="z9.huge")
    try:
        warning = wait_for(
            lambda: [w for w in ray_server.state()["warnings"] if "'z9.huge'" in w], timeout_s=20
        )
        assert "not in Corral's catalogue" in warning[0]
        backend = ray_server.state()["backend"]
        assert backend["nodes"] == 3 and backend["nodesUnusable"] == 1
    finally:
        odd.stop()
        cluster.nodes.remove(odd)


def test_a_ray_address_that_does_not_answer_is_a_clear_error(tmp_path: Path) -> None:
    started = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "corral",
            "serve",
            "--port",
            "0",
            "--data-dir",
            str(tmp_path / "data"),
            "--backend",
            "ray",
            "--ray-address",
            "127.0.0.99:1",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "cannot reach the Ray cluster at 127.0.0.99:1" in done.stderr
    assert time.monotonic() - started < 30

"""Instances from Ray's autoscaler (issue #14): a cluster that starts with no ``corral``
node, whose head runs Ray's real autoscaler with a node provider that launches nodes on
loopback addresses (``loopback_provider``). Corral asks for nodes
(``ray.autoscaler.sdk.request_resources``, a target of every instance it wants); the
autoscaler launches one; the instance binds to it and serves; released, the request goes
down and the autoscaler takes the idle node away.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.test_ray_backend import instances, managed
from tests.helpers import OPERATOR, SUBNETS, LambdaClient, Server, invoke, start_server, wait_for
from tests.raycluster import HEAD_IP, RayCluster

pytestmark = pytest.mark.ray

HERE = Path(__file__).parent


def autoscaling_config(cluster: RayCluster) -> Path:
    """Ray's cluster config: one node type mirroring an instance type (docs/ray.md)."""
    config = {
        "cluster_name": "corral-test",
        "max_workers": 2,
        "provider": {
            "type": "external",
            "module": "loopback_provider.LoopbackProvider",
            "gcs_address": cluster.address,
            "temp_dir": str(cluster.root / "autoscaled"),
            "first_ip_octet": 30,
            "use_node_id_as_ip": True,
            "disable_node_updaters": True,
            "disable_launch_config_check": True,
        },
        "available_node_types": {
            "ray.head.default": {"resources": {"CPU": 0}, "node_config": {}, "max_workers": 0},
            "corral.m7i.large": {
                "resources": {
                    "CPU": 2,
                    "memory": 8 * 1024**3,
                    "corral": 1,
                    "object_store_memory": 100_000_000,
                },
                "labels": {"corral-instance-type": "m7i.large"},
                "node_config": {},
                "min_workers": 0,
                "max_workers": 2,
            },
        },
        "head_node_type": "ray.head.default",
        "idle_timeout_minutes": 0.1,
        "upscaling_speed": 1.0,
        "auth": {},
        "docker": {},
        "file_mounts": {},
        "cluster_synced_files": [],
        "file_mounts_sync_continuously": False,
        "rsync_exclude": [],
        "rsync_filter": [],
        "initialization_commands": [],
        "setup_commands": [],
        "head_setup_commands": [],
        "worker_setup_commands": [],
        "head_start_ray_commands": [],
        "worker_start_ray_commands": [],
    }
    path = cluster.root / "autoscaling.json"
    path.write_text(json.dumps(config))
    return path


@pytest.fixture(scope="module")
def autoscaled() -> Iterator[RayCluster]:
    cluster = RayCluster(
        head_env={
            "RAY_FAKE_CLUSTER": "1",
            "AUTOSCALER_UPDATE_INTERVAL_S": "1",
            "PYTHONPATH": str(HERE),
        }
    )
    config = autoscaling_config(cluster)
    cluster._head_args = ["--autoscaling-config", str(config)]
    (cluster.root / "autoscaled").mkdir()
    cluster.start(workers=0)
    yield cluster
    cluster.stop()


def test_with_no_corral_node_the_server_says_so_and_the_autoscaler_brings_one(
    autoscaled: RayCluster, tmp_path: Path
) -> None:
    server = start_server(
        tmp_path / "data",
        CORRAL_BACKEND="ray",
        CORRAL_RAY_ADDRESS=autoscaled.address,
        CORRAL_SCALE_IN_COOLDOWN_S="1",
    )
    try:
        _serve_from_an_autoscaled_node(server, server.client())
    finally:
        assert server.stop() == 0


def _serve_from_an_autoscaled_node(server: Server, lam: LambdaClient) -> None:
    warnings = server.state()["warnings"]
    assert any("has no node with the resource 'corral'" in w for w in warnings), warnings
    arn = lam.create_capacity_provider(
        CapacityProviderName="autoscaled", VpcConfig=SUBNETS, PermissionsConfig=OPERATOR
    )["CapacityProvider"]["CapacityProviderArn"]
    name = managed(lam, arn, minimum=1, maximum=1)  # Active once a node joined
    running = [i for i in instances(server, arn) if i["environments"]]
    assert len(running) == 1
    assert running[0]["address"].startswith("127.0.0.3")  # launched by the autoscaler
    assert running[0]["address"].split(":")[0] != HEAD_IP
    assert invoke(lam, name, {}, Qualifier="1")["StatusCode"] == 200
    assert not any("has no node" in w for w in server.state()["warnings"])
    lam.delete_function(FunctionName=name)
    lam.delete_capacity_provider(CapacityProviderName=arn)
    # Nothing wanted any more: the autoscaler takes the idle node away.
    wait_for(
        lambda: any(
            "has no node with the resource 'corral'" in w for w in server.state()["warnings"]
        ),
        timeout_s=90,
    )

"""An autoscaler node provider for tests: Ray's fake multi-node provider, with each node it
launches on its own loopback address (127.0.0.N) instead of the machine's routable one.

The head's monitor imports it (``provider.type: external``, ``module:
loopback_provider.LoopbackProvider``, with this directory on ``PYTHONPATH`` and
``RAY_FAKE_CLUSTER=1``). It launches nodes as Ray's fake provider does, in the monitor's
process, so they end with the head's process group.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import ray
from ray._private import ray_constants
from ray.autoscaler._private.fake_multi_node.node_provider import FakeMultiNodeProvider
from ray.autoscaler.tags import (
    NODE_KIND_WORKER,
    STATUS_UP_TO_DATE,
    TAG_RAY_NODE_KIND,
    TAG_RAY_NODE_NAME,
    TAG_RAY_NODE_STATUS,
    TAG_RAY_USER_NODE_TYPE,
)


class LoopbackProvider(FakeMultiNodeProvider):
    """Fake nodes on 127.0.0.<first_ip_octet + n>."""

    def _create_node_with_resources_and_labels(
        self,
        node_config: dict[str, Any],
        tags: dict[str, str],
        count: int,
        resources: dict[str, Any],
        labels: dict[str, str],
    ) -> None:
        resources = copy.deepcopy(resources)
        with self.lock:
            node_type = tags[TAG_RAY_USER_NODE_TYPE]
            next_id = self._next_hex_node_id()  # type: ignore[no-untyped-call]  # Ray's
            octet = int(self.provider_config.get("first_ip_octet", 30)) + self._next_node_id - 1
            params = ray._private.parameter.RayParams(
                node_ip_address=f"127.0.0.{octet}",
                temp_dir=self.provider_config["temp_dir"],
                min_worker_port=0,
                max_worker_port=0,
                dashboard_port=None,
                dashboard_agent_listen_port=0,
                num_cpus=resources.pop("CPU", 0),
                num_gpus=resources.pop("GPU", 0),
                memory=resources.pop("memory", None),
                object_store_memory=resources.pop("object_store_memory", None),
                resources=resources,
                labels=labels,
                redis_address=self._gcs_address,
                gcs_address=self._gcs_address,
                env_vars={
                    "RAY_OVERRIDE_NODE_ID_FOR_TESTING": next_id,
                    "RAY_CLOUD_INSTANCE_ID": next_id,
                    "RAY_NODE_TYPE_NAME": node_type,
                    ray_constants.RESOURCES_ENVIRONMENT_VARIABLE: json.dumps(resources),
                    ray_constants.LABELS_ENVIRONMENT_VARIABLE: json.dumps(labels),
                },
            )
            node = ray._private.node.Node(
                params, head=False, shutdown_at_exit=False, spawn_reaper=False
            )
            all_tags = {
                TAG_RAY_NODE_KIND: NODE_KIND_WORKER,
                TAG_RAY_USER_NODE_TYPE: node_type,
                TAG_RAY_NODE_NAME: next_id,
                TAG_RAY_NODE_STATUS: STATUS_UP_TO_DATE,
            }
            all_tags.update(tags)
            # Ray keeps the node object itself there (its own annotation says dict).
            self._nodes[next_id] = {"tags": all_tags, "node": node}  # type: ignore[dict-item]

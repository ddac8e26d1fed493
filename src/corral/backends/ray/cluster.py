"""The server as a Ray driver: join the cluster, see its nodes, place agents, ask for nodes.

Every call here blocks (Ray's client API does); the backend calls them from worker threads.

* ``connect`` first checks that something answers at the head's address, so a wrong
  address is an error in seconds with the fix in it, not a long hang inside ``ray.init``.
* ``nodes`` is Ray's view of the cluster: each node's id, address, liveness, resources and
  labels.
* ``start_agent`` places one ``AgentActor`` on a given node (hard node affinity) and
  returns its handle once the agent listens; ``stop_agent`` ends it.
* ``request_nodes`` tells Ray's autoscaler how many ``corral`` nodes of which size Corral
  wants in all (a target, as ``ray.autoscaler.sdk.request_resources`` takes it).
"""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass, field
from typing import Any

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from corral.backends.ray.actor import AgentActor
from corral.core import errors
from corral.core.settings import Settings

__all__ = ["CORRAL_RESOURCE", "ClusterNode", "RayCluster"]

CORRAL_RESOURCE = "corral"
_PROBE_TIMEOUT_S = 3.0
_AGENT_START_TIMEOUT_S = 300.0
_EXIT_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class ClusterNode:
    """A node as Ray reports it."""

    node_id: str
    address: str
    alive: bool
    cpus: int
    memory_mib: int
    corral: bool
    labels: dict[str, str] = field(default_factory=dict)


class RayCluster:
    """The Ray cluster at ``address``, joined as a driver."""

    def __init__(self, address: str, node_ip: str = "") -> None:
        self.address = address
        self.node_ip = node_ip or address.rpartition(":")[0]

    def connect(self) -> None:
        """Join the cluster.

        Raises:
            errors.BackendError: nothing answers at the address, or Ray refused.
        """
        host, _, port = self.address.rpartition(":")
        try:
            with socket.create_connection((host, int(port)), timeout=_PROBE_TIMEOUT_S):
                pass
        except (OSError, ValueError) as exc:
            raise errors.BackendError(
                f"cannot reach the Ray cluster at {self.address}: {exc}. Is "
                "`ray start --head --port PORT` running there? Give its address as "
                "--ray-address HOST:PORT (CORRAL_RAY_ADDRESS)."
            ) from exc
        # Ray's own notices (a driver's threads, its signal handlers) are not the user's.
        logging.getLogger("ray").setLevel(logging.ERROR)
        try:
            ray.init(
                address=self.address,
                _node_ip_address=self.node_ip,
                namespace="corral",
                logging_level=logging.WARNING,
                log_to_driver=False,
                configure_logging=False,
            )
        except Exception as exc:  # Ray raises many kinds; all mean the same to the user
            raise errors.BackendError(
                f"cannot join the Ray cluster at {self.address}: {exc}"
            ) from exc

    def shutdown(self) -> None:
        if ray.is_initialized():
            ray.shutdown()

    def nodes(self) -> list[ClusterNode]:
        """Every node Ray knows of, alive or dead."""
        found = []
        for node in ray.nodes():  # type: ignore[no-untyped-call]  # Ray leaves it untyped
            resources: dict[str, float] = node.get("Resources") or {}
            labels: dict[str, str] = dict(node.get("Labels") or {})
            found.append(
                ClusterNode(
                    node_id=str(node["NodeID"]),
                    address=str(node.get("NodeManagerAddress", "")),
                    alive=bool(node.get("Alive")),
                    cpus=int(resources.get("CPU", 0)),
                    memory_mib=int(resources.get("memory", 0) // (1024 * 1024)),
                    corral=resources.get(CORRAL_RESOURCE, 0) > 0,
                    labels=labels,
                )
            )
        return found

    def start_agent(
        self, node_id: str, settings: Settings, instance_id: str, secret: bytes
    ) -> tuple[Any, tuple[str, int]]:
        """Place an agent on ``node_id``; return its handle and where it listens.

        Raises:
            errors.BackendError: the agent did not start there.
        """
        strategy = NodeAffinitySchedulingStrategy(node_id=node_id, soft=False)
        handle = AgentActor.options(  # type: ignore[attr-defined]  # made by @ray.remote
            name=f"corral-agent-{instance_id}",
            # Held while the agent lives: the autoscaler must not take a busy node away.
            resources={CORRAL_RESOURCE: 1},
            scheduling_strategy=strategy,
        ).remote(settings, instance_id, secret)
        try:
            host, port = ray.get(handle.address.remote(), timeout=_AGENT_START_TIMEOUT_S)
        except Exception as exc:
            self.stop_agent(handle)
            raise errors.BackendError(
                f"the agent of instance {instance_id} did not start on node {node_id[:12]}: "
                f"{_gist(exc)}"
            ) from exc
        return handle, (str(host), int(port))

    def stop_agent(self, handle: Any, timeout_s: float = 60.0) -> None:
        """Stop an agent's environments, then end its actor: an orderly exit, else killed."""
        try:
            ray.get(handle.stop.remote(), timeout=timeout_s)
            ray.get(handle.exit.remote(), timeout=_EXIT_TIMEOUT_S)
        except Exception:  # an exited actor answers with an error; gone, stuck: killed anyway
            pass
        try:
            ray.kill(handle)
        except Exception:
            pass

    def request_nodes(self, bundles: list[dict[str, float]]) -> None:
        """Ask the autoscaler for these nodes in all (each bundle one ``corral`` node)."""
        from ray.autoscaler.sdk import request_resources

        request_resources(bundles=bundles)


def _gist(exc: Exception) -> str:
    """Ray's multi-line account of a failed actor in one line: what and why."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    why = [line for line in lines[1:] if line.startswith("The actor died because")]
    return " ".join(lines[:1] + why) or type(exc).__name__

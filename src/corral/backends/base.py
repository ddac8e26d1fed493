"""The ``Backend`` protocol: instances, and execution environments launched on them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from corral.agent.environment import EnvironmentConfig
from corral.agent.handle import EnvironmentHandle
from corral.core import models

__all__ = ["ON_DEMAND", "Backend", "InstanceInfo"]

# The pool classic functions run in: not an instance of any capacity provider.
ON_DEMAND = "on-demand"


@dataclass(frozen=True)
class InstanceInfo:
    """An instance as the backend sees it now."""

    id: str
    capacity_provider: str
    instance_type: models.InstanceType
    state: models.InstanceState
    availability_zone: str
    launched_seq: int
    vcpus_allocated: int
    memory_allocated_mib: int
    environments: int
    cpu_utilization: float
    memory_utilization: float
    empty_since_s: float | None
    # Where it runs: the Ray node id and the agent's address (empty on the local backend).
    node: str = ""
    address: str = ""

    @property
    def vcpus(self) -> int:
        return self.instance_type.vcpus

    @property
    def memory_mib(self) -> int:
        return self.instance_type.memory_mib


class Backend(Protocol):
    """A source of instances."""

    async def start(self) -> None:
        """Begin background work (usage sampling; the Ray backend joins its cluster).

        Raises:
            errors.BackendError: instances cannot come from where the backend looks.
        """

    @property
    def warnings(self) -> list[str]:
        """What the operator must know about where instances come from now."""

    def describe(self) -> dict[str, object]:
        """Where instances come from, for ``/corral/v1/state``: ``{"name": ...}`` and more."""

    async def stop(self, drain_timeout_s: float) -> None:
        """Drain and stop every environment on every instance."""

    def instances(self, capacity_provider: str | None = None) -> list[InstanceInfo]:
        """Instances not terminated long ago, of one provider or of all."""

    def launch_instance(
        self, provider: models.CapacityProvider, kind: models.InstanceType
    ) -> InstanceInfo:
        """Start launching an instance: ``Pending`` now, ``Running`` after the launch delay."""

    def report_launch_failure(self, provider: models.CapacityProvider, message: str) -> None:
        """Log that an instance of ``provider`` could not be launched (``LaunchFailed``)."""

    def terminate_instance(self, instance_id: str, reason: str) -> None:
        """Drain the instance's environments, then terminate it (in the background)."""

    async def launch_environment(
        self, instance_id: str, config: EnvironmentConfig
    ) -> EnvironmentHandle:
        """Start an execution environment on ``instance_id`` (or ``ON_DEMAND``)."""

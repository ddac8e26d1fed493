"""The ``Backend`` protocol: instances, and execution environments launched on them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from corral.agent.environment import EnvironmentConfig, ExecutionEnvironment

__all__ = ["Backend", "InstanceInfo"]


@dataclass(frozen=True)
class InstanceInfo:
    """An instance as the backend sees it."""

    id: str
    capacity_provider: str | None
    instance_type: str
    state: str
    vcpus: int
    memory_mib: int


class Backend(Protocol):
    """A source of instances."""

    def start(self) -> None:
        """Begin background work (usage sampling)."""

    async def stop(self, drain_timeout_s: float) -> None:
        """Drain and stop every environment on every instance."""

    def instances(self) -> list[InstanceInfo]:
        """Every instance, of every capacity provider and the on-demand pool."""

    async def launch_environment(
        self, capacity_provider: str | None, config: EnvironmentConfig
    ) -> ExecutionEnvironment:
        """Start an execution environment on an instance of ``capacity_provider``
        (``None``: the on-demand pool of classic functions)."""

    def instance_id(self, capacity_provider: str | None) -> str:
        """The instance an environment of ``capacity_provider`` would run on."""

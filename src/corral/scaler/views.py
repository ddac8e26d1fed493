"""What the scaling decisions see of an instance: one value for placement and the plans."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from corral.core import models

__all__ = ["InstanceView"]


@dataclass(frozen=True)
class InstanceView:
    """An instance at the start of a tick, as the pure scaling functions see it."""

    id: str
    state: models.InstanceState
    vcpus: int
    memory_mib: int
    vcpus_allocated: int
    memory_allocated_mib: int
    launched_seq: int = 0
    environments: int = 0
    cpu_utilization: float = 0.0
    empty_since_s: float | None = None
    version_counts: Mapping[models.VersionRef, int] = field(default_factory=dict)

    @property
    def free_vcpus(self) -> int:
        return self.vcpus - self.vcpus_allocated

    @property
    def free_memory_mib(self) -> int:
        return self.memory_mib - self.memory_allocated_mib

    def fits(self, vcpus: int, memory_mib: int) -> bool:
        """Whether an environment of this size can start here now."""
        return (
            self.state is models.InstanceState.RUNNING
            and self.free_vcpus >= vcpus
            and self.free_memory_mib >= memory_mib
        )

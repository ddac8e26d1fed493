"""Where a new execution environment goes: a pure function.

An environment needs whole vCPUs (memory / ratio) and its memory. It may only go on a
``Running`` instance of its own capacity provider with that much free. Among those:

1. spread: prefer the instance with the fewest environments of the same version, so a
   version's first environments land on different instances (AWS spreads them over
   Availability Zones);
2. then bin-pack: prefer the instance with the least room left after placing it (best fit),
   so empty instances stay empty and can be terminated;
3. then the oldest instance, for a stable order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from corral.core import models

__all__ = ["InstanceView", "place"]


@dataclass(frozen=True)
class InstanceView:
    """An instance as placement sees it."""

    id: str
    state: models.InstanceState
    vcpus: int
    memory_mib: int
    vcpus_allocated: int
    memory_allocated_mib: int
    launched_seq: int = 0
    version_counts: Mapping[models.VersionRef, int] = field(default_factory=dict)

    @property
    def free_vcpus(self) -> int:
        return self.vcpus - self.vcpus_allocated

    @property
    def free_memory_mib(self) -> int:
        return self.memory_mib - self.memory_allocated_mib

    def fits(self, vcpus: int, memory_mib: int) -> bool:
        return (
            self.state is models.InstanceState.RUNNING
            and self.free_vcpus >= vcpus
            and self.free_memory_mib >= memory_mib
        )


def place(
    instances: Sequence[InstanceView], ref: models.VersionRef, vcpus: int, memory_mib: int
) -> InstanceView | None:
    """The instance for one environment of ``ref``, or None when none has room."""
    candidates = [i for i in instances if i.fits(vcpus, memory_mib)]
    if not candidates:
        return None
    return min(
        candidates,
        key=lambda i: (
            i.version_counts.get(ref, 0),
            (i.free_vcpus - vcpus, i.free_memory_mib - memory_mib),
            i.launched_seq,
        ),
    )

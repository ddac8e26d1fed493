"""Plan the instances of one capacity provider: a pure function.

``plan_instances(target, instances, demand, now_s=..., cooldown_s=...)`` returns launches,
terminations, and the versions whose minimum cannot be met because of ``MaxVCpuCount``.

Rules, in order:

1. Demand: environments that found no room (``Demand``) are packed, first fit, onto the
   free room of ``Pending`` instances and then onto new instances of the chosen type.
2. First instances: a provider with no instance at all launches one per environment wanted,
   up to three, the way AWS launches three instances for Availability Zone resiliency.
3. CPU target tracking: when the average CPU of the ``Running`` instances is above the
   target (Auto: ``AUTO_TARGET_CPU``; Manual: the policy's ``TargetValue``), enough
   instances are added to bring it back to the target.
4. ``MaxVCpuCount`` is a hard cap on the vCPUs of every instance not terminated. Launches
   are cut to fit; environments still unplaced that a version needs for its *minimum*
   make that version fail with ``CapacityProviderScalingLimitExceeded``.
5. Scale-in: a ``Running`` instance without environments for ``cooldown_s`` is terminated
   (AWS: "terminates an instance once it has no active execution environments").
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from corral.core import models
from corral.scaler.views import InstanceView

__all__ = [
    "AUTO_TARGET_CPU",
    "Demand",
    "InstanceAction",
    "LaunchInstances",
    "MinimumUnreachable",
    "ProviderTarget",
    "TerminateInstance",
    "plan_instances",
]

# Auto mode keeps the instances' average CPU at or below half, so load can double.
AUTO_TARGET_CPU = 0.5
_FIRST_INSTANCES = 3


@dataclass(frozen=True)
class ProviderTarget:
    """What a capacity provider allows: its cap, its CPU target, the type to launch."""

    name: str
    max_vcpus: int
    target_cpu: float
    instance_type: models.InstanceType | None


@dataclass(frozen=True)
class Demand:
    """Environments of one version that found no room on a running instance."""

    ref: models.VersionRef
    count: int
    vcpus: int
    memory_mib: int
    for_minimum: int = 0


@dataclass(frozen=True)
class LaunchInstances:
    provider: str
    instance_type: models.InstanceType
    count: int
    reason: str


@dataclass(frozen=True)
class TerminateInstance:
    instance_id: str
    reason: str


@dataclass(frozen=True)
class MinimumUnreachable:
    """``ref`` cannot get its minimum environments without passing ``MaxVCpuCount``."""

    ref: models.VersionRef
    reason: str


InstanceAction = LaunchInstances | TerminateInstance | MinimumUnreachable

_LIMIT_REASON = (
    "MinimumExecutionEnvironments can't be provisioned because CapacityProvider has reached "
    "maxVCpuCount limit. Increase maxVCpuCount in the CapacityProvider configuration and try "
    "again."
)


def plan_instances(
    target: ProviderTarget,
    instances: Sequence[InstanceView],
    demand: Sequence[Demand],
    *,
    now_s: float,
    cooldown_s: float,
) -> list[InstanceAction]:
    """The instance actions for one capacity provider (see the module docstring)."""
    live = [i for i in instances if i.state is not models.InstanceState.TERMINATED]
    actions: list[InstanceAction] = []
    # 5. Scale-in first: stop what is redundant before starting what is missing.
    for instance in live:
        if (
            instance.state is models.InstanceState.RUNNING
            and instance.environments == 0
            and instance.empty_since_s is not None
            and now_s - instance.empty_since_s >= cooldown_s
            and not demand
        ):
            actions.append(TerminateInstance(instance.id, "no execution environments"))
    kind = target.instance_type
    if kind is None:
        return actions
    # 1. Pack the demand onto pending room, then onto new instances.
    pending_room = [
        _Room(i.vcpus - i.vcpus_allocated, i.memory_mib - i.memory_allocated_mib)
        for i in live
        if i.state is models.InstanceState.PENDING
    ]
    new_rooms: list[_Room] = []
    for item in demand:
        for index in range(item.count):
            if _fit(pending_room, item):
                continue
            if not _fit(new_rooms, item, minimum=index < item.for_minimum):
                room = _Room(kind.vcpus, kind.memory_mib)
                new_rooms.append(room)
                _fit([room], item, minimum=index < item.for_minimum)
    wanted = len(new_rooms)
    reason = "execution environments need room"
    # 2. The provider's first instances.
    if not live and demand:
        first = min(_FIRST_INSTANCES, sum(d.count for d in demand))
        if first > wanted:
            wanted, reason = first, "first instances of the capacity provider"
    # 3. CPU target tracking over running instances.
    running = [i for i in live if i.state is models.InstanceState.RUNNING]
    if running and target.target_cpu > 0:
        average = sum(i.cpu_utilization for i in running) / len(running)
        if average > target.target_cpu:
            total = math.ceil(len(running) * average / target.target_cpu)
            extra = total - len(live)
            if extra > wanted:
                wanted, reason = extra, f"average CPU {average:.0%} above target"
    # 4. The vCPU cap.
    used = sum(i.vcpus for i in live)
    allowed = max(0, (target.max_vcpus - used) // kind.vcpus)
    launch = min(wanted, allowed)
    if launch > 0:
        actions.append(LaunchInstances(target.name, kind, launch, reason))
    short = {ref for room in new_rooms[launch:] for ref in room.minimum_of}
    actions.extend(MinimumUnreachable(ref, _LIMIT_REASON) for ref in sorted(short))
    return actions


@dataclass
class _Room:
    vcpus: int
    memory_mib: int
    minimum_of: set[models.VersionRef] = field(default_factory=set)


def _fit(rooms: list[_Room], item: Demand, *, minimum: bool = False) -> bool:
    """Take room for one environment of ``item`` from the first room that has it."""
    for room in rooms:
        if room.vcpus >= item.vcpus and room.memory_mib >= item.memory_mib:
            room.vcpus -= item.vcpus
            room.memory_mib -= item.memory_mib
            if minimum:
                room.minimum_of.add(item.ref)
            return True
    return False

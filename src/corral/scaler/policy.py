"""Pure scaling rules (no I/O): how many environments a version wants, when to reap.

Managed Instances keeps ``MinExecutionEnvironments`` (default 3) environments of every
published version, within ``MaxExecutionEnvironments``; ``min = max = 0`` deactivates the
version. Above the minimum it scales on concurrency saturation and CPU (LMI_FACTS §2.6):
enough environments that the busiest moment of the last tick fills at most
``TARGET_UTILIZATION`` of the slots, and the average CPU of the environments stays at or
below the same share, so traffic can double without throttles. Throttles mean the demand is
unknown but larger than the capacity: the count at least doubles, tick after tick, until
they stop (counting throttled attempts instead would overshoot: clients retry). Scale-out
happens at once; scale-in removes one environment per cooldown, so a dip does not throw
away warm capacity.

Classic functions have no floor: an environment is reaped once idle for the idle timeout.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from corral.core import models
from corral.cost import calculator

__all__ = [
    "TARGET_UTILIZATION",
    "Decision",
    "VersionLoad",
    "desired_environments",
    "init_timeout_s",
    "minimum_environments",
    "should_reap_classic",
]

# Half the capacity busy at most: load may double before anything is throttled, the
# headroom AWS's default target promises (LMI_FACTS §2.6). One value for the fleet and the
# cost calculator, which sizes fleets by the same rule.
TARGET_UTILIZATION = calculator.TARGET_UTILIZATION


def minimum_environments(scaling: models.ScalingConfig | None) -> int:
    """Environments a published Managed Instances version keeps even when idle."""
    config = scaling or models.ScalingConfig()
    floor = config.effective_min
    if config.max_environments is not None:
        floor = min(floor, config.max_environments)
    return floor


@dataclass(frozen=True)
class VersionLoad:
    """What one version's environments went through since the last tick."""

    environments: int
    slots_per_environment: int
    peak_inflight: int = 0
    throttled: int = 0
    cpu_utilization: float = 0.0


@dataclass(frozen=True)
class Decision:
    """How many environments the version should have, and when that last went down."""

    desired: int
    last_scale_in_s: float


def desired_environments(
    load: VersionLoad,
    scaling: models.ScalingConfig | None,
    *,
    previous: int,
    last_scale_in_s: float,
    now_s: float,
    cooldown_s: float,
) -> Decision:
    """The next desired count of environments of one Managed Instances version."""
    config = scaling or models.ScalingConfig()
    floor = minimum_environments(config)
    ceiling = config.max_environments
    if config.deactivated:
        return Decision(0, last_scale_in_s)
    slots = max(1, load.slots_per_environment) * TARGET_UTILIZATION
    for_concurrency = math.ceil(load.peak_inflight / slots)
    if load.throttled:
        for_concurrency = max(for_concurrency, 2 * max(1, load.environments))
    for_cpu = math.ceil(load.environments * load.cpu_utilization / TARGET_UTILIZATION)
    wanted = max(floor, for_concurrency, for_cpu)
    if ceiling is not None:
        wanted = min(wanted, ceiling)
    current = max(previous, floor)
    if ceiling is not None:
        current = min(current, ceiling)
    if wanted >= current:
        return Decision(wanted, last_scale_in_s)
    if now_s - last_scale_in_s < cooldown_s:
        return Decision(current, last_scale_in_s)
    return Decision(current - 1, now_s)


def should_reap_classic(idle_s: float, outstanding: int, idle_timeout_s: float) -> bool:
    """Whether an idle classic environment should be stopped (scale to zero)."""
    return outstanding == 0 and idle_s >= idle_timeout_s


def init_timeout_s(
    spec: models.FunctionSpec, classic_init_timeout_s: float, managed_init_floor_s: float = 130.0
) -> float:
    """How long a runtime may take to initialise.

    Managed Instances: ``max(130 s, function timeout up to 900 s)`` (LMI_FACTS §2.7; the
    130 s floor is a setting); classic Lambda: a fixed init phase (10 s on AWS).
    """
    if spec.managed is None:
        return classic_init_timeout_s
    return float(max(managed_init_floor_s, min(spec.timeout_s, 900)))

"""Pure scaling rules (no I/O): how many environments a version wants, when to reap.

Managed Instances keeps ``MinExecutionEnvironments`` (default 3) environments of every
published version, within ``MaxExecutionEnvironments``; ``min = max = 0`` deactivates the
version. Classic functions have no floor: an environment is reaped once idle for the
idle timeout.
"""

from __future__ import annotations

from corral.core import models

__all__ = ["init_timeout_s", "minimum_environments", "should_reap_classic"]


def minimum_environments(scaling: models.ScalingConfig | None) -> int:
    """Environments a published Managed Instances version keeps even when idle."""
    config = scaling or models.ScalingConfig()
    floor = config.effective_min
    if config.max_environments is not None:
        floor = min(floor, config.max_environments)
    return floor


def should_reap_classic(idle_s: float, outstanding: int, idle_timeout_s: float) -> bool:
    """Whether an idle classic environment should be stopped (scale to zero)."""
    return outstanding == 0 and idle_s >= idle_timeout_s


def init_timeout_s(spec: models.FunctionSpec, classic_init_timeout_s: float) -> float:
    """How long a runtime may take to initialise.

    Managed Instances: ``max(130 s, function timeout up to 900 s)`` (LMI_FACTS §2.7);
    classic Lambda: a fixed init phase (10 s on AWS).
    """
    if spec.managed is None:
        return classic_init_timeout_s
    return float(max(130, min(spec.timeout_s, 900)))

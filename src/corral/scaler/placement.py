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

from collections.abc import Sequence

from corral.core import models
from corral.scaler.views import InstanceView

__all__ = ["place"]


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

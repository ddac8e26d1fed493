"""Time, injected: the ``Clock`` protocol and the real clock.

Reconcile loops and policies take a ``Clock`` so unit tests can drive time by hand.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol

__all__ = ["Clock", "SystemClock", "iso_timestamp", "iso_timestamp_z"]


class Clock(Protocol):
    """Monotonic seconds for intervals and wall-clock seconds for records."""

    def monotonic(self) -> float: ...

    def time(self) -> float: ...


class SystemClock:
    """The clock of this machine."""

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()


def iso_timestamp(epoch_s: float) -> str:
    """Lambda's ``LastModified`` format: ``2025-12-01T10:00:00.000+0000``."""
    moment = datetime.fromtimestamp(epoch_s, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def iso_timestamp_z(epoch_s: float) -> str:
    """ISO 8601 in UTC with milliseconds and ``Z``: ``2025-12-01T10:00:00.000Z`` (destination
    records' ``timestamp``)."""
    moment = datetime.fromtimestamp(epoch_s, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"

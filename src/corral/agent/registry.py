"""Every execution environment of this Corral, indexed for the router and the scaler.

The registry is the ``EnvironmentListener`` of all environments: it keeps, per function
version, the list of ready ones (what the router chooses from) and all live ones (what the
scaler counts), and forwards lifecycle events to subscribers (the version-state tracker).
It also counts throttles per version and cause: the router records them, the scaler reads
them as a sign of saturation, and ``corral status`` shows them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from corral.agent.handle import EnvironmentHandle
from corral.core import models

__all__ = ["EnvironmentRegistry"]

Subscriber = Callable[[EnvironmentHandle], None]


class EnvironmentRegistry:
    """Live environments by id and by version."""

    def __init__(self) -> None:
        self._all: dict[str, EnvironmentHandle] = {}
        self._ready: dict[models.VersionRef, list[EnvironmentHandle]] = {}
        self._on_ready: list[Subscriber] = []
        self._on_ended: list[Subscriber] = []
        self._throttles_since: Counter[models.VersionRef] = Counter()
        self.throttles: Counter[tuple[models.VersionRef, str]] = Counter()
        self._on_throttle: list[Callable[[models.VersionRef], None]] = []

    def subscribe(
        self,
        *,
        ready: Subscriber,
        ended: Subscriber,
        throttled: Callable[[models.VersionRef], None] | None = None,
    ) -> None:
        self._on_ready.append(ready)
        self._on_ended.append(ended)
        if throttled is not None:
            self._on_throttle.append(throttled)

    def add(self, environment: EnvironmentHandle) -> None:
        """Track a starting environment."""
        self._all[environment.id] = environment

    # EnvironmentListener ------------------------------------------------------------------
    def environment_ready(self, environment: EnvironmentHandle) -> None:
        self._ready.setdefault(environment.ref, []).append(environment)
        for callback in self._on_ready:
            callback(environment)

    def environment_ended(self, environment: EnvironmentHandle) -> None:
        if self._all.pop(environment.id, None) is None:
            return
        ready = self._ready.get(environment.ref)
        if ready is not None and environment in ready:
            ready.remove(environment)
            if not ready:
                del self._ready[environment.ref]
        for callback in self._on_ended:
            callback(environment)

    # throttles ----------------------------------------------------------------------------
    def record_throttle(self, ref: models.VersionRef, cause: str) -> None:
        """An invocation of ``ref`` was refused with 429 because of ``cause``."""
        self.throttles[(ref, cause)] += 1
        self.record_saturation(ref)

    def record_saturation(self, ref: models.VersionRef) -> None:
        """An invocation of ``ref`` found no free slot (a 429, or it waits for one): the
        scaler counts it as demand beyond the capacity."""
        first = ref not in self._throttles_since
        self._throttles_since[ref] += 1
        if first:
            for callback in self._on_throttle:
                callback(ref)

    def forget_throttles(self, function: str) -> None:
        """Drop a deleted function's throttle counts."""
        for key in [k for k in self.throttles if k[0].function == function]:
            del self.throttles[key]

    def take_throttles(self, ref: models.VersionRef) -> int:
        """Throttles of ``ref`` since the last call."""
        return self._throttles_since.pop(ref, 0)

    # queries ------------------------------------------------------------------------------
    def ready_for(self, ref: models.VersionRef) -> list[EnvironmentHandle]:
        """Ready environments of a version (the router filters by free slot)."""
        return self._ready.get(ref, [])

    def for_version(self, ref: models.VersionRef) -> list[EnvironmentHandle]:
        return [e for e in self._all.values() if e.ref == ref]

    def for_function(self, function_name: str) -> list[EnvironmentHandle]:
        return [e for e in self._all.values() if e.ref.function == function_name]

    def all(self) -> list[EnvironmentHandle]:
        return list(self._all.values())

    def get(self, environment_id: str) -> EnvironmentHandle | None:
        return self._all.get(environment_id)

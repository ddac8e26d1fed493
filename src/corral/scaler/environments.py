"""Plan the execution environments of every function version: a pure function.

``plan(targets, observed, failures, idle_timeout_s)`` compares what should run with what
runs and returns the actions that close the gap. It never does I/O; ``scaler.loop`` applies
the actions. Stop actions come before start actions (stop what is redundant first).
"""

from __future__ import annotations

from dataclasses import dataclass

from corral.core import models
from corral.scaler import policy

__all__ = [
    "Action",
    "Failure",
    "MarkVersion",
    "ObservedEnvironment",
    "StartEnvironments",
    "StopEnvironment",
    "VersionTarget",
    "plan",
]

_LIVE = (models.EnvironmentState.STARTING, models.EnvironmentState.READY)
# An environment due for recycling serves until its replacement is ready, or this long when
# none can start (no room): then it drains anyway.
RECYCLE_WAIT_S = 60.0


@dataclass(frozen=True)
class VersionTarget:
    """A version that should have environments (or may, for classic ones).

    ``desired`` is how many it should have now (the scaling policy's answer, at least the
    minimum); ``min_environments`` is how many make a new version ``Active``.
    """

    ref: models.VersionRef
    revision_id: str
    managed: bool
    min_environments: int
    state: models.FunctionState
    updating: bool = False
    desired: int | None = None
    # Why it is scaled to zero (its provider's corral:idle-timeout-s), "" while it is not.
    asleep: str = ""

    @property
    def wanted(self) -> int:
        return self.min_environments if self.desired is None else self.desired


@dataclass(frozen=True)
class ObservedEnvironment:
    """An environment as the loop sees it."""

    id: str
    ref: models.VersionRef
    revision_id: str
    state: models.EnvironmentState
    outstanding: int
    idle_s: float
    managed: bool
    # Why it must be replaced (its function's corral:recycle-* tags), and since when.
    recycle: str = ""
    recycle_for_s: float = 0.0


@dataclass(frozen=True)
class Failure:
    """An environment of ``ref`` at ``revision_id`` failed to initialise."""

    ref: models.VersionRef
    revision_id: str
    reason_code: str
    reason: str


@dataclass(frozen=True)
class StartEnvironments:
    ref: models.VersionRef
    count: int


@dataclass(frozen=True)
class StopEnvironment:
    environment_id: str
    reason: str
    # Let what it runs finish, up to the function's timeout (not only the drain timeout).
    until_done: bool = False


@dataclass(frozen=True)
class MarkVersion:
    ref: models.VersionRef
    revision_id: str
    state: models.FunctionState
    reason_code: str = ""
    reason: str = ""


Action = StartEnvironments | StopEnvironment | MarkVersion


def plan(
    targets: list[VersionTarget],
    observed: list[ObservedEnvironment],
    failures: list[Failure],
    *,
    idle_timeout_s: float,
) -> list[Action]:
    """The actions that bring ``observed`` to ``targets``.

    Steps:
      1. Environments of versions that no longer exist, or (classic) of an older revision,
         or idle too long, are stopped.
      2. For each Managed Instances version: environments due for recycling are left out
         of its count, so replacements start, and stopped (drained) once the others are
         ready (or after ``RECYCLE_WAIT_S`` without room for one); a version scaled to
         zero by its provider's idle timeout (``asleep``) stops its environments and stays
         ``Active``; a failure of its current
         revision while it is being created or updated marks it ``Failed`` and stops its
         environments (an ``Active`` version just replaces the environment); a version scaled
         to zero (min = max = 0) stops everything and becomes ``Deactivated``, and ``Pending``
         again when scaled back up; otherwise environments beyond ``desired`` are stopped, missing
         ones started, stale revisions stopped once the new one has its minimum ready, and a
         ``Pending`` version becomes ``Active`` once its minimum is ready.
    """
    by_ref = {t.ref: t for t in targets}
    failed = {(f.ref, f.revision_id): f for f in failures}
    stops: list[Action] = []
    starts: list[Action] = []
    marks: list[Action] = []
    # 1. Environments without a target, and classic ones.
    for env in observed:
        target = by_ref.get(env.ref)
        if target is None:
            stops.append(StopEnvironment(env.id, "version deleted"))
        elif not env.managed:
            stale = env.revision_id != target.revision_id
            if env.outstanding == 0 and (
                stale or policy.should_reap_classic(env.idle_s, env.outstanding, idle_timeout_s)
            ):
                stops.append(StopEnvironment(env.id, "idle" if not stale else "code updated"))
    # 2. Managed Instances versions.
    for target in targets:
        if not target.managed:
            continue
        mine = [e for e in observed if e.ref == target.ref and e.state in _LIVE]
        current = [e for e in mine if e.revision_id == target.revision_id]
        older = [e for e in mine if e.revision_id != target.revision_id]
        failure = failed.get((target.ref, target.revision_id))
        settling = target.state is models.FunctionState.PENDING or target.updating
        if failure is not None and settling:
            marks.append(
                MarkVersion(
                    target.ref,
                    target.revision_id,
                    models.FunctionState.FAILED,
                    failure.reason_code,
                    failure.reason,
                )
            )
            stops.extend(StopEnvironment(e.id, "version failed") for e in current)
            continue
        if target.state is models.FunctionState.FAILED:
            stops.extend(StopEnvironment(e.id, "version failed") for e in current)
            continue
        if target.asleep:
            # Scaled to zero: Active still, without an environment until an invocation.
            stops.extend(StopEnvironment(e.id, target.asleep) for e in mine)
            continue
        if target.wanted == 0 and target.min_environments == 0:
            stops.extend(StopEnvironment(e.id, "version deactivated") for e in mine)
            quiet = not mine and target.state is not models.FunctionState.DEACTIVATED
            busy = mine and target.state is not models.FunctionState.DEACTIVATING
            if quiet or busy:
                state = (
                    models.FunctionState.DEACTIVATED if quiet else models.FunctionState.DEACTIVATING
                )
                marks.append(MarkVersion(target.ref, target.revision_id, state))
            continue
        if target.state in (models.FunctionState.DEACTIVATED, models.FunctionState.DEACTIVATING):
            marks.append(
                MarkVersion(
                    target.ref, target.revision_id, models.FunctionState.PENDING, "Creating"
                )
            )
            continue
        # Environments due for recycling are replaced first: they do not count towards what
        # the version wants, and drain once as many others are ready.
        recycling = [e for e in current if e.recycle]
        current = [e for e in current if not e.recycle]
        stops.extend(_trim(current, target.wanted))
        missing = target.wanted - len(current)
        if missing > 0:
            starts.append(StartEnvironments(target.ref, missing))
        ready = sum(1 for e in current if e.state is models.EnvironmentState.READY)
        # One leaves for each replacement that is ready (the longest due first), so as many
        # serve as the version wants all along; without room, after RECYCLE_WAIT_S anyway.
        replaced = max(0, ready + len(recycling) - target.wanted)
        for rank, env in enumerate(sorted(recycling, key=lambda e: -e.recycle_for_s)):
            if rank < replaced or env.recycle_for_s >= RECYCLE_WAIT_S:
                stops.append(StopEnvironment(env.id, env.recycle, until_done=True))
        if ready >= target.min_environments:
            stops.extend(StopEnvironment(e.id, "replaced by a new revision") for e in older)
            if target.state is models.FunctionState.PENDING or target.updating:
                marks.append(
                    MarkVersion(target.ref, target.revision_id, models.FunctionState.ACTIVE)
                )
    return stops + starts + marks


def _trim(current: list[ObservedEnvironment], keep: int) -> list[Action]:
    """Stop environments beyond ``keep``: starting ones first, then the least busy."""
    extra = len(current) - keep
    if extra <= 0:
        return []
    order = sorted(
        current,
        key=lambda e: (e.state is models.EnvironmentState.READY, e.outstanding, -e.idle_s),
    )
    return [StopEnvironment(e.id, "above the scaling minimum") for e in order[:extra]]

"""``corral.scaler.policy`` and ``corral.scaler.environments.plan``: pure scaling decisions."""

from __future__ import annotations

import dataclasses

import pytest

from corral.core import models
from corral.core.extras import function_extras
from corral.scaler import environments as envs
from corral.scaler import policy
from tests.factories import function_spec

REF = models.VersionRef("orders", "1")
OTHER = models.VersionRef("billing", "2")
READY = models.EnvironmentState.READY
STARTING = models.EnvironmentState.STARTING
PENDING = models.FunctionState.PENDING
ACTIVE = models.FunctionState.ACTIVE
FAILED = models.FunctionState.FAILED
IDLE_TIMEOUT_S = 300.0


def _target(
    min_environments: int = 3,
    *,
    state: models.FunctionState = ACTIVE,
    revision_id: str = "r1",
    updating: bool = False,
    managed: bool = True,
    ref: models.VersionRef = REF,
) -> envs.VersionTarget:
    return envs.VersionTarget(ref, revision_id, managed, min_environments, state, updating)


def _env(
    env_id: str,
    state: models.EnvironmentState = READY,
    *,
    revision_id: str = "r1",
    outstanding: int = 0,
    idle_s: float = 0.0,
    managed: bool = True,
    ref: models.VersionRef = REF,
) -> envs.ObservedEnvironment:
    return envs.ObservedEnvironment(env_id, ref, revision_id, state, outstanding, idle_s, managed)


def _plan(
    targets: list[envs.VersionTarget],
    observed: list[envs.ObservedEnvironment],
    failures: list[envs.Failure] | None = None,
) -> list[envs.Action]:
    return envs.plan(targets, observed, failures or [], idle_timeout_s=IDLE_TIMEOUT_S)


def _stopped(actions: list[envs.Action]) -> dict[str, str]:
    return {a.environment_id: a.reason for a in actions if isinstance(a, envs.StopEnvironment)}


def _marks(actions: list[envs.Action]) -> list[envs.MarkVersion]:
    return [a for a in actions if isinstance(a, envs.MarkVersion)]


def _starts(actions: list[envs.Action]) -> list[envs.StartEnvironments]:
    return [a for a in actions if isinstance(a, envs.StartEnvironments)]


# policy


def test_the_minimum_defaults_to_three_and_is_capped_by_the_maximum() -> None:
    cases = {
        None: 3,
        models.ScalingConfig(min_environments=1): 1,
        models.ScalingConfig(max_environments=2): 2,
        models.ScalingConfig(min_environments=5, max_environments=2): 2,
        models.ScalingConfig(min_environments=0, max_environments=0): 0,
    }
    assert {k: policy.minimum_environments(k) for k in cases} == cases


def _spec(timeout_s: int, *, managed: bool) -> models.FunctionSpec:
    config = models.ManagedInstancesConfig("arn:aws:lambda:r:1:capacity-provider:p")
    return function_spec(timeout_s=timeout_s, managed=config if managed else None)


def test_a_classic_function_gets_the_given_init_timeout() -> None:
    assert policy.init_timeout_s(_spec(600, managed=False), 10.0) == 10.0


def test_a_managed_function_gets_its_timeout_between_130_and_900_seconds() -> None:
    cases = {3: 130.0, 300: 300.0, 1000: 900.0}
    assert {t: policy.init_timeout_s(_spec(t, managed=True), 10.0) for t in cases} == cases


def test_the_managed_init_floor_is_a_setting() -> None:
    cases = {3: 5.0, 300: 300.0}
    assert {t: policy.init_timeout_s(_spec(t, managed=True), 10.0, 5.0) for t in cases} == cases


def test_a_classic_environment_is_reaped_only_when_idle_for_the_whole_timeout() -> None:
    assert policy.should_reap_classic(300.0, 0, 300.0)
    assert not policy.should_reap_classic(299.9, 0, 300.0)
    assert not policy.should_reap_classic(1000.0, 1, 300.0)


# plan: Managed Instances versions


def test_missing_environments_are_started_up_to_the_minimum() -> None:
    assert _plan([_target(3)], []) == [envs.StartEnvironments(REF, 3)]
    assert _plan([_target(3)], [_env("a")]) == [envs.StartEnvironments(REF, 2)]


def test_environments_above_the_minimum_are_stopped_starting_ones_first() -> None:
    observed = [_env("ready-1"), _env("starting", STARTING), _env("ready-2")]
    actions = _plan([_target(2)], observed)
    assert actions == [envs.StopEnvironment("starting", "above the scaling minimum")]


def test_trimming_ready_environments_stops_the_least_busy() -> None:
    observed = [_env("busy", outstanding=4), _env("idle"), _env("warm", outstanding=1)]
    assert set(_stopped(_plan([_target(1)], observed))) == {"idle", "warm"}


def test_a_pending_version_stays_pending_until_its_minimum_is_ready() -> None:
    observed = [_env("a"), _env("b", STARTING)]
    assert _marks(_plan([_target(2, state=PENDING)], observed)) == []


def test_a_pending_version_becomes_active_once_its_minimum_is_ready() -> None:
    actions = _plan([_target(2, state=PENDING)], [_env("a"), _env("b")])
    assert actions == [envs.MarkVersion(REF, "r1", ACTIVE)]


def test_an_active_version_with_its_minimum_ready_needs_nothing() -> None:
    assert _plan([_target(2)], [_env("a"), _env("b")]) == []


@pytest.mark.parametrize(
    "target", [_target(2, state=PENDING), _target(2, updating=True)], ids=["pending", "updating"]
)
def test_a_failure_of_the_current_revision_while_settling_marks_the_version_failed(
    target: envs.VersionTarget,
) -> None:
    failure = envs.Failure(REF, "r1", "InitError", "handler raised")
    actions = _plan([target], [_env("a"), _env("b", STARTING)], [failure])
    assert _marks(actions) == [envs.MarkVersion(REF, "r1", FAILED, "InitError", "handler raised")]
    assert _stopped(actions) == {"a": "version failed", "b": "version failed"}
    assert _starts(actions) == []


def test_a_failure_of_an_active_version_only_replaces_the_environment() -> None:
    failure = envs.Failure(REF, "r1", "InitError", "crashed")
    actions = _plan([_target(2)], [_env("a")], [failure])
    assert _marks(actions) == []
    assert actions == [envs.StartEnvironments(REF, 1)]


def test_a_failure_of_an_older_revision_does_not_fail_the_new_one() -> None:
    failure = envs.Failure(REF, "r0", "InitError", "old code")
    actions = _plan([_target(1, state=PENDING)], [_env("a")], [failure])
    assert _marks(actions) == [envs.MarkVersion(REF, "r1", ACTIVE)]


def test_a_failed_version_has_its_environments_stopped_and_none_started() -> None:
    actions = _plan([_target(2, state=FAILED)], [_env("a")])
    assert actions == [envs.StopEnvironment("a", "version failed")]


def test_stale_revisions_keep_serving_until_the_new_revision_has_its_minimum_ready() -> None:
    target = _target(2, revision_id="r2", updating=True)
    observed = [
        _env("old-1", revision_id="r1"),
        _env("old-2", revision_id="r1"),
        _env("new-1", revision_id="r2"),
        _env("new-2", STARTING, revision_id="r2"),
    ]
    actions = _plan([target], observed)
    assert _stopped(actions) == {}
    assert _marks(actions) == []


def test_stale_revisions_are_stopped_once_the_new_revision_is_ready() -> None:
    target = _target(1, revision_id="r2", updating=True)
    observed = [_env("old", revision_id="r1", outstanding=2), _env("new", revision_id="r2")]
    actions = _plan([target], observed)
    assert _stopped(actions) == {"old": "replaced by a new revision"}
    assert _marks(actions) == [envs.MarkVersion(REF, "r2", ACTIVE)]


def test_a_deactivated_version_starts_nothing_and_stops_what_runs() -> None:
    minimum = policy.minimum_environments(models.ScalingConfig(0, 0))
    actions = _plan([_target(minimum)], [_env("a"), _env("b", STARTING)])
    assert _starts(actions) == []
    assert set(_stopped(actions)) == {"a", "b"}


def test_stops_come_before_starts_in_the_plan() -> None:
    targets = [_target(2), _target(1, ref=OTHER, state=PENDING)]
    observed = [_env("orphan", ref=models.VersionRef("gone", "1")), _env("x", ref=OTHER)]
    actions = _plan(targets, observed)
    kinds = [type(a) for a in actions]
    assert kinds == [envs.StopEnvironment, envs.StartEnvironments, envs.MarkVersion]


# plan: environments without a target, and classic environments


def test_environments_of_deleted_versions_are_stopped_even_when_busy() -> None:
    observed = [
        _env("managed", ref=OTHER, outstanding=3),
        _env("classic", ref=OTHER, managed=False, outstanding=1),
    ]
    assert _stopped(_plan([], observed)) == {
        "managed": "version deleted",
        "classic": "version deleted",
    }


def test_an_idle_classic_environment_is_reaped_after_the_idle_timeout() -> None:
    target = _target(0, managed=False)
    observed = [
        _env("old", managed=False, idle_s=IDLE_TIMEOUT_S),
        _env("recent", managed=False, idle_s=IDLE_TIMEOUT_S - 1),
    ]
    assert _plan([target], observed) == [envs.StopEnvironment("old", "idle")]


def test_a_classic_environment_of_a_stale_revision_is_stopped_once_idle() -> None:
    target = _target(0, managed=False, revision_id="r2")
    observed = [_env("stale", managed=False, revision_id="r1", idle_s=0.0)]
    assert _plan([target], observed) == [envs.StopEnvironment("stale", "code updated")]


def test_a_busy_classic_environment_is_never_reaped() -> None:
    target = _target(0, managed=False, revision_id="r2")
    observed = [
        _env("stale", managed=False, revision_id="r1", outstanding=1),
        _env("long-idle", managed=False, revision_id="r2", outstanding=1, idle_s=10_000.0),
    ]
    assert _plan([target], observed) == []


def test_a_classic_version_never_gets_environments_started_by_the_scaler() -> None:
    assert _plan([_target(3, managed=False)], []) == []


def _recycling(env_id: str, reason: str, for_s: float = 0.0) -> envs.ObservedEnvironment:
    return envs.ObservedEnvironment(
        env_id, REF, "r1", READY, 1, 0.0, True, recycle=reason, recycle_for_s=for_s
    )


def test_an_environment_due_for_recycling_is_replaced_before_it_drains() -> None:
    due = _recycling("c", "recycled: 100 invocations >= 100")
    actions = _plan([_target(3)], [_env("a"), _env("b"), due])
    # It serves on while its replacement starts.
    assert _stopped(actions) == {}
    assert [a for a in actions if isinstance(a, envs.StartEnvironments)] == [
        envs.StartEnvironments(REF, 1)
    ]
    # The replacement is starting: still no drain.
    assert _stopped(_plan([_target(3)], [_env("a"), _env("b"), _env("d", STARTING), due])) == {}
    # Ready: now it drains, with its reason, and nothing more starts.
    actions = _plan([_target(3)], [_env("a"), _env("b"), _env("d"), due])
    assert _stopped(actions) == {"c": "recycled: 100 invocations >= 100"}
    # What it runs may finish (up to the function's timeout): nothing fails for a recycle.
    assert all(a.until_done for a in actions if isinstance(a, envs.StopEnvironment))
    assert not [a for a in actions if isinstance(a, envs.StartEnvironments)]


def test_without_room_for_a_replacement_it_drains_after_a_while() -> None:
    waited = _recycling("c", "recycled: memory 83% >= 80%", for_s=envs.RECYCLE_WAIT_S)
    assert _stopped(_plan([_target(3)], [_env("a"), _env("b"), waited])) == {
        "c": "recycled: memory 83% >= 80%"
    }


def test_recycle_reasons_name_the_limit_crossed() -> None:
    extras = function_extras(
        {
            "corral:recycle-after-invocations": "100",
            "corral:recycle-memory-percent": "80",
            "corral:recycle-after-s": "3600",
        }
    )
    assert extras.recycle_reason(99, 0.79, 3599) == ""
    assert extras.recycle_reason(100, 0.1, 0) == "recycled: 100 invocations >= 100"
    assert extras.recycle_reason(1, 0.834, 0) == "recycled: memory 83% >= 80%"
    assert extras.recycle_reason(1, 0.1, 3600.4) == "recycled: 3600 s old >= 3600 s"
    assert function_extras({}).recycle_reason(10**9, 1.0, 10**9) == ""


def test_recycled_environments_leave_one_per_ready_replacement() -> None:
    due = [_recycling(name, f"recycled: {name}", for_s=s) for name, s in (("x", 5), ("y", 9))]
    # Two due, one replacement ready so far: the one due longest leaves, the other serves on.
    actions = _plan([_target(2)], [_env("n1"), _env("n2", STARTING), *due])
    assert _stopped(actions) == {"y": "recycled: y"}
    actions = _plan([_target(2)], [_env("n1"), _env("n2"), *due])
    assert _stopped(actions) == {"x": "recycled: x", "y": "recycled: y"}


def test_a_version_scaled_to_zero_stops_everything_and_stays_active() -> None:
    asleep = dataclasses.replace(_target(3), asleep="scaled to zero: no invocation for 60 s")
    actions = _plan([asleep], [_env("a"), _env("b", STARTING)])
    assert _stopped(actions) == {
        "a": "scaled to zero: no invocation for 60 s",
        "b": "scaled to zero: no invocation for 60 s",
    }
    assert _starts(actions) == [] and _marks(actions) == []
    # Woken (no longer asleep): its minimum starts again, still Active.
    actions = _plan([_target(3)], [])
    assert _starts(actions) == [envs.StartEnvironments(REF, 3)] and _marks(actions) == []

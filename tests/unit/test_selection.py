"""``corral.router``: which environment takes an invocation, or why none (``selection``), and
the classic concurrency accounting (``router.admit``)."""

from __future__ import annotations

from dataclasses import dataclass

from corral.router import selection
from corral.router.router import admit


@dataclass(frozen=True)
class _Env:
    name: str
    outstanding: int
    has_free_slot: bool = True
    overload: str | None = None


def _pick(*envs: _Env) -> str | None:
    chosen = selection.least_outstanding(list(envs))
    return None if chosen is None else chosen.name


def test_the_environment_with_the_fewest_outstanding_invocations_wins() -> None:
    assert _pick(_Env("a", 3), _Env("b", 1), _Env("c", 2)) == "b"


def test_environments_without_a_free_slot_are_skipped_even_if_least_loaded() -> None:
    assert _pick(_Env("full", 0, has_free_slot=False), _Env("busy", 5)) == "busy"


def test_a_tie_goes_to_the_first_candidate() -> None:
    assert _pick(_Env("a", 2), _Env("b", 2), _Env("c", 2)) == "a"
    assert _pick(_Env("a", 0), _Env("b", 0)) == "a"


def test_nothing_is_chosen_when_no_environment_has_a_free_slot() -> None:
    assert _pick(_Env("a", 1, has_free_slot=False), _Env("b", 0, has_free_slot=False)) is None
    assert _pick() is None


def test_an_overloaded_environment_takes_nothing_even_with_a_free_slot() -> None:
    assert _pick(_Env("hot", 0, overload="cpu"), _Env("cool", 3)) == "cool"


def test_choose_says_why_nothing_was_chosen() -> None:
    full = _Env("full", 4, has_free_slot=False)
    assert selection.choose([full]) == (None, "concurrency")
    assert selection.choose([full, _Env("hot", 1, overload="cpu")]) == (None, "cpu")
    assert selection.choose([_Env("big", 1, overload="memory")]) == (None, "memory")
    assert selection.choose([]) == (None, "concurrency")
    chosen, cause = selection.choose([_Env("ok", 1)])
    assert chosen is not None and chosen.name == "ok" and cause == ""


# The classic concurrency accounting (router.admit), as AWS counts it ---------------------


def test_a_reserved_function_runs_within_its_reservation_only() -> None:
    assert admit(reserved=5, function_inflight=4, pool_inflight=999, pool_limit=100) is None
    assert admit(reserved=5, function_inflight=5, pool_inflight=0, pool_limit=100) == (
        "ReservedFunctionConcurrentInvocationLimitExceeded"
    )
    assert admit(reserved=0, function_inflight=0, pool_inflight=0, pool_limit=100) == (
        "ReservedFunctionConcurrentInvocationLimitExceeded"
    )


def test_the_unreserved_pool_counts_only_functions_without_a_reservation() -> None:
    # Account 1000, function A reserves 900 and runs 150 (none of them in the pool): a
    # function B with nothing running is admitted (the reported defect throttled it).
    assert admit(reserved=None, function_inflight=0, pool_inflight=0, pool_limit=100) is None
    assert admit(reserved=None, function_inflight=3, pool_inflight=99, pool_limit=100) is None
    assert admit(reserved=None, function_inflight=0, pool_inflight=100, pool_limit=100) == (
        "ConcurrentInvocationLimitExceeded"
    )

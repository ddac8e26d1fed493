"""``corral.router.selection.least_outstanding``: which environment takes an invocation."""

from __future__ import annotations

from dataclasses import dataclass

from corral.router import selection


@dataclass(frozen=True)
class _Env:
    name: str
    outstanding: int
    has_free_slot: bool = True


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

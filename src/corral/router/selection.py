"""Pick the execution environment for one invocation: a pure function.

Least outstanding wins; ties go to the environment after the previous pick, so equal
environments share the load instead of one taking every request.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar

__all__ = ["Candidate", "least_outstanding"]


class Candidate(Protocol):
    @property
    def has_free_slot(self) -> bool: ...

    @property
    def outstanding(self) -> int: ...


C = TypeVar("C", bound=Candidate)


def least_outstanding(candidates: Sequence[C], offset: int) -> C | None:
    """The candidate with a free slot and the fewest outstanding invocations, or None."""
    count = len(candidates)
    best: C | None = None
    best_load = 0
    for step in range(count):
        candidate = candidates[(offset + step) % count]
        if not candidate.has_free_slot:
            continue
        load = candidate.outstanding
        if best is None or load < best_load:
            best = candidate
            best_load = load
            if load == 0:
                break
    return best

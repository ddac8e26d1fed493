"""Pick the execution environment for one invocation: a pure function.

Least outstanding wins; ties go to the first candidate in the list. At low load this keeps
the same environment (and, inside it, the same worker) busy: on a real machine its caches
are warm, which cut the median invoke latency by a third in ``bench/invoke.py``. Under load
every environment is used, least loaded first.

An environment whose CPU or memory is nearly exhausted (``overload`` names which) takes no
new invocation even with a free slot: as on AWS, the invocation goes to another one, or is
throttled to protect the invocations already running (LMI_FACTS §2.5).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar

__all__ = ["Candidate", "choose", "least_outstanding"]


class Candidate(Protocol):
    @property
    def has_free_slot(self) -> bool: ...

    @property
    def outstanding(self) -> int: ...

    @property
    def overload(self) -> str | None: ...


C = TypeVar("C", bound=Candidate)


def least_outstanding(candidates: Sequence[C]) -> C | None:
    """The candidate with a free slot, not overloaded, with the fewest outstanding
    invocations; None if there is none."""
    best: C | None = None
    best_load = 0
    for candidate in candidates:
        if not candidate.has_free_slot or candidate.overload is not None:
            continue
        load = candidate.outstanding
        if best is None or load < best_load:
            best = candidate
            best_load = load
            if load == 0:
                break
    return best


def choose(candidates: Sequence[C]) -> tuple[C | None, str]:
    """The candidate to use, or None and why not: ``concurrency``, ``cpu`` or ``memory``."""
    best = least_outstanding(candidates)
    if best is not None:
        return best, ""
    for candidate in candidates:
        if candidate.has_free_slot and candidate.overload is not None:
            return None, candidate.overload
    return None, "concurrency"

"""Corral's opt-in extras beyond AWS, turned on with ``corral:`` tags (docs/beyond-aws.md).

Tags because every tool that deploys Lambda functions can set them (boto3, the AWS CLI, SAM,
CDK, Terraform) and AWS itself ignores them: the same template deploys to both. Without a
``corral:`` tag a resource behaves as on AWS. Pure: parsing and checking only.

Keys under ``corral:`` are Corral's: one it does not know is refused (a typo must not turn a
setting off without a word), as is a value out of its range, with
``InvalidParameterValueException`` naming the tag and what it accepts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from corral.core import errors

__all__ = [
    "FORK_AFTER_INIT",
    "IDLE_TIMEOUT_S",
    "KILL_ON_TIMEOUT",
    "PREFIX",
    "QUEUE_MAX",
    "QUEUE_TIMEOUT_MS",
    "RECYCLED",
    "RECYCLE_AFTER_INVOCATIONS",
    "RECYCLE_AFTER_S",
    "RECYCLE_MEMORY_PERCENT",
    "ExtrasOf",
    "FunctionExtras",
    "ProviderExtras",
    "ProviderExtrasOf",
    "check_function_tags",
    "check_provider_tags",
    "function_extras",
    "provider_extras",
    "stored_function_extras",
    "stored_provider_extras",
]

PREFIX = "corral:"
QUEUE_TIMEOUT_MS = "corral:queue-timeout-ms"
QUEUE_MAX = "corral:queue-max"
RECYCLE_AFTER_INVOCATIONS = "corral:recycle-after-invocations"
RECYCLE_MEMORY_PERCENT = "corral:recycle-memory-percent"
RECYCLE_AFTER_S = "corral:recycle-after-s"
FORK_AFTER_INIT = "corral:fork-after-init"
KILL_ON_TIMEOUT = "corral:kill-on-timeout"
IDLE_TIMEOUT_S = "corral:idle-timeout-s"

# Function tags: (lowest, highest) of their integer values.
_FUNCTION_RANGES: dict[str, tuple[int, int]] = {
    QUEUE_TIMEOUT_MS: (0, 900_000),
    QUEUE_MAX: (1, 100_000),
    RECYCLE_AFTER_INVOCATIONS: (1, 1_000_000_000),
    RECYCLE_MEMORY_PERCENT: (10, 95),
    RECYCLE_AFTER_S: (10, 30 * 86_400),
}
# Capacity provider tags, as ``_FUNCTION_RANGES``.
_PROVIDER_RANGES: dict[str, tuple[int, int]] = {IDLE_TIMEOUT_S: (60, 86_400)}
# How the end reason of a recycled environment starts.
RECYCLED = "recycled"
# Function tags that are switches: ``true`` or ``false``.
_FUNCTION_SWITCHES = frozenset({FORK_AFTER_INIT, KILL_ON_TIMEOUT})
# A version's queue holds this many times its slots unless ``corral:queue-max`` says otherwise.
QUEUE_SLOTS_FACTOR = 10


@dataclass(frozen=True)
class FunctionExtras:
    """What a function's ``corral:`` tags turn on."""

    # A Managed Instances invocation that finds every slot busy waits this long for one
    # (never past the function's timeout) before its 429; 0: 429 at once, as on AWS.
    queue_timeout_ms: int = 0
    # At most this many invocations wait per version; None: QUEUE_SLOTS_FACTOR x its slots.
    queue_max: int | None = None
    # A Managed Instances environment past any of these is replaced (a new one first, then
    # it drains): after so many invocations, at this share of MemorySize, after so long.
    recycle_after_invocations: int | None = None
    recycle_memory_percent: int | None = None
    recycle_after_s: int | None = None
    # Python workers are forked from one process that ran the function's init.
    fork_after_init: bool = False
    # A worker still running an invocation at its deadline is killed and replaced.
    kill_on_timeout: bool = False

    def recycle_reason(self, invocations: int, memory_utilization: float, age_s: float) -> str:
        """Why an environment with these figures must be recycled ("" while it need not)."""
        if self.recycle_after_invocations is not None:
            if invocations >= self.recycle_after_invocations:
                return f"{RECYCLED}: {invocations} invocations >= {self.recycle_after_invocations}"
        if self.recycle_memory_percent is not None:
            percent = 100 * memory_utilization
            if percent >= self.recycle_memory_percent:
                return f"{RECYCLED}: memory {percent:.0f}% >= {self.recycle_memory_percent}%"
        if self.recycle_after_s is not None and age_s >= self.recycle_after_s:
            return f"{RECYCLED}: {age_s:.0f} s old >= {self.recycle_after_s} s"
        return ""

    def queue_limit(self, slots: int) -> int:
        """How many invocations may wait for a version with ``slots`` slots in all."""
        if self.queue_max is not None:
            return self.queue_max
        return QUEUE_SLOTS_FACTOR * max(1, slots)


@dataclass(frozen=True)
class ProviderExtras:
    """What a capacity provider's ``corral:`` tags turn on."""

    # A version on the provider without an invocation for this long drops to no
    # environment (scale to zero); the next invocation starts one and waits for it.
    idle_timeout_s: int | None = None


def provider_extras(tags: Mapping[str, str]) -> ProviderExtras:
    """The extras a capacity provider's tags turn on.

    Raises:
        errors.InvalidRequest: a ``corral:`` tag Corral does not know, or a bad value.
    """
    values = _values(tags, _PROVIDER_RANGES, frozenset(), "capacity providers")
    return ProviderExtras(idle_timeout_s=values.get(IDLE_TIMEOUT_S))


def stored_provider_extras(tags: Mapping[str, str]) -> ProviderExtras:
    """The extras of a provider's stored tags (ones stored before a check are ignored)."""
    try:
        return provider_extras(tags)
    except errors.InvalidRequest:
        return ProviderExtras()


# A capacity provider's extras by its name.
ProviderExtrasOf = Callable[[str], ProviderExtras]


# A function's extras by its name (the server reads its stored tags): one for the router and
# the scaler.
ExtrasOf = Callable[[str], FunctionExtras]


def function_extras(tags: Mapping[str, str]) -> FunctionExtras:
    """The extras a function's tags turn on.

    Raises:
        errors.InvalidRequest: a ``corral:`` tag Corral does not know, or a bad value.
    """
    values = _values(tags, _FUNCTION_RANGES, _FUNCTION_SWITCHES, "functions")
    return FunctionExtras(
        fork_after_init=values.get(FORK_AFTER_INIT, 0) == 1,
        kill_on_timeout=values.get(KILL_ON_TIMEOUT, 0) == 1,
        queue_timeout_ms=values.get(QUEUE_TIMEOUT_MS, 0),
        queue_max=values.get(QUEUE_MAX),
        recycle_after_invocations=values.get(RECYCLE_AFTER_INVOCATIONS),
        recycle_memory_percent=values.get(RECYCLE_MEMORY_PERCENT),
        recycle_after_s=values.get(RECYCLE_AFTER_S),
    )


def stored_function_extras(tags: Mapping[str, str]) -> FunctionExtras:
    """The extras of tags already stored: ones stored before a check existed are ignored."""
    try:
        return function_extras(tags)
    except errors.InvalidRequest:
        return FunctionExtras()


def check_function_tags(tags: Mapping[str, str]) -> None:
    """Refuse bad ``corral:`` tags of a function (``InvalidParameterValueException``)."""
    function_extras(tags)


def check_provider_tags(tags: Mapping[str, str]) -> None:
    """Refuse bad ``corral:`` tags of a capacity provider (``InvalidParameterValueException``)."""
    provider_extras(tags)


def _values(
    tags: Mapping[str, str],
    ranges: Mapping[str, tuple[int, int]],
    switches: frozenset[str],
    kind: str,
) -> dict[str, int]:
    """The ``corral:`` tags' values: whole numbers, and switches as 1 (true) or 0 (false)."""
    found: dict[str, int] = {}
    for key, raw in tags.items():
        if not key.startswith(PREFIX):
            continue
        if key in switches:
            word = raw.strip().lower()
            if word not in ("true", "false"):
                raise errors.InvalidRequest(f"Tag {key} must be true or false, not '{raw[:64]}'.")
            found[key] = int(word == "true")
            continue
        if key not in ranges:
            known = ", ".join(sorted({*ranges, *switches})) or "none yet"
            raise errors.InvalidRequest(
                f"Tag {key} is not a Corral setting for {kind} (known: {known}; "
                "docs/beyond-aws.md)."
            )
        low, high = ranges[key]
        try:
            value = int(raw.strip())
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            raise errors.InvalidRequest(
                f"Tag {key} must be a whole number from {low} to {high}, not '{raw[:64]}'."
            )
        found[key] = value
    return found

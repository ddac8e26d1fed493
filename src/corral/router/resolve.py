"""Which version an invocation runs: Lambda's qualifier rules, as a pure function.

* Classic functions: no qualifier means ``$LATEST``.
* Managed Instances functions: no qualifier means ``$LATEST.PUBLISHED``; ``$LATEST`` cannot
  be invoked (``InvalidParameterValueException``, or ``NoPublishedVersionException`` when
  nothing was ever published).
* An alias resolves to its version, or to its additional version with the routing weight.
* Only ``Active`` versions are invoked; others get ``ResourceConflictException``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from corral.core import errors, models
from corral.core.arns import Partition
from corral.store.catalog import Catalog

__all__ = ["Resolved", "resolve"]

_LATEST_MANAGED = (
    "Functions configured with capacity provider configuration can't be invoked with $LATEST "
    "qualifier. To invoke this function, specify a published version qualifier or "
    "$LATEST.PUBLISHED."
)
_NO_PUBLISHED = (
    "The function can't be invoked because no published version exists. For functions with "
    "capacity provider configuration, either publish a version to $LATEST.PUBLISHED, or "
    "specify a published version qualifier."
)


@dataclass(frozen=True)
class Resolved:
    """The version to run, and the ARN the function sees as invoked."""

    version: models.FunctionVersion
    invoked_arn: str


def resolve(
    catalog: Catalog,
    partition: Partition,
    function_name: str,
    qualifier: str | None,
    *,
    chance: float | None = None,
) -> Resolved:
    """Resolve ``function_name:qualifier`` to an invocable version.

    Raises:
        errors.NotFound, errors.NoPublishedVersion, errors.InvalidRequest, errors.Conflict.
    """
    latest = catalog.version(function_name, models.LATEST)
    if latest is None:
        shown = partition.function_arn(function_name, qualifier or models.LATEST)
        raise errors.NotFound(f"Function not found: {shown}")
    managed = latest.spec.managed is not None
    invoked_arn = partition.function_arn(function_name, qualifier)
    target = qualifier
    if target is None and managed:
        target = models.LATEST_PUBLISHED
        invoked_arn = partition.function_arn(function_name, target)
        if catalog.version(function_name, target) is None:
            raise errors.NoPublishedVersion(_NO_PUBLISHED)
    target = target or models.LATEST
    if not (target.startswith("$") or target.isdigit()):
        alias = catalog.alias(function_name, target)
        if alias is None:
            raise errors.NotFound(f"Function not found: {invoked_arn}")
        target = _pick_alias_version(alias, chance)
    if target == models.LATEST and managed:
        if catalog.version(function_name, models.LATEST_PUBLISHED) is not None:
            raise errors.InvalidRequest(_LATEST_MANAGED)
        raise errors.NoPublishedVersion(_NO_PUBLISHED)
    version = catalog.version(function_name, target)
    if version is None:
        raise errors.NotFound(f"Function not found: {invoked_arn}")
    if version.state is not models.FunctionState.ACTIVE:
        raise errors.Conflict(
            "The operation cannot be performed at this time. The function is currently in "
            f"the following state: {version.state.value}"
        )
    return Resolved(version=version, invoked_arn=invoked_arn)


def _pick_alias_version(alias: models.Alias, chance: float | None) -> str:
    if not alias.routing_weights:
        return alias.function_version
    roll = random.random() if chance is None else chance
    for version, weight in alias.routing_weights.items():
        if roll < weight:
            return version
        roll -= weight
    return alias.function_version

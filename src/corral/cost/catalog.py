"""The instance-type catalogue: load it, filter it, and pick a type for an environment.

Filtering follows ``InstanceRequirements``: one architecture, and either allowed or
excluded type names, each a name or a shell-style wildcard (``m7g.*``, ``*.metal``).

The default choice (no type named), for execution environments of ``v`` vCPUs and ``m``
MiB, is the type with the lowest on-demand price per environment it can hold, where it
holds ``min(vcpus // v, memory // m)`` environments. Ties go to the smaller type (finer
steps when scaling), then to the newer generation. GPU types are chosen only when the
function needs a GPU, and are never chosen otherwise. This favours the family whose
memory-to-vCPU ratio matches the function's (C for 2 GiB per vCPU, M for 4, R for 8),
because the others leave memory or vCPUs unused.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources

from corral.core import errors, models

__all__ = ["Catalogue", "choose_type", "load", "matching", "slots_per_instance"]


@dataclass(frozen=True)
class Catalogue:
    """The instance types with where their prices come from."""

    types: tuple[models.InstanceType, ...]
    source: str
    region: str
    retrieved: str

    def get(self, name: str) -> models.InstanceType | None:
        return next((t for t in self.types if t.name == name), None)


@cache
def load() -> Catalogue:
    """The catalogue shipped with Corral (read once)."""
    text = resources.files("corral.cost").joinpath("data/instance_types.json").read_text()
    data = json.loads(text)
    types = tuple(
        models.InstanceType(
            name=item["name"],
            family=item["family"],
            category=item["category"],
            architecture=item["architecture"],
            vcpus=int(item["vcpus"]),
            memory_mib=int(round(float(item["memory_gib"]) * 1024)),
            price_per_hour=float(item["price_per_hour"]),
            gpus=int(item.get("gpus") or 0),
            gpu_model=item.get("gpu_model"),
            gpu_memory_gib=int(item.get("gpu_memory_gib") or 0),
        )
        for item in data["instance_types"]
    )
    return Catalogue(types, data["source"], data["region"], data["retrieved"])


def _matches(name: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


def matching(
    types: Iterable[models.InstanceType], requirements: models.InstanceRequirements
) -> list[models.InstanceType]:
    """Types of the requirements' architecture, allowed or not excluded."""
    result = []
    for kind in types:
        if kind.architecture not in requirements.architectures:
            continue
        if requirements.allowed_instance_types and not _matches(
            kind.name, requirements.allowed_instance_types
        ):
            continue
        if _matches(kind.name, requirements.excluded_instance_types):
            continue
        result.append(kind)
    return result


def slots_per_instance(kind: models.InstanceType, vcpus: int, memory_mib: int) -> int:
    """How many environments of ``vcpus`` and ``memory_mib`` fit on one instance."""
    return min(kind.vcpus // max(1, vcpus), kind.memory_mib // max(1, memory_mib))


_GENERATION = re.compile(r"[a-z]+(\d+)")


def _generation(kind: models.InstanceType) -> int:
    match = _GENERATION.match(kind.family)
    return int(match.group(1)) if match else 0


def choose_type(
    candidates: Sequence[models.InstanceType],
    vcpus: int,
    memory_mib: int,
    *,
    gpus: int = 0,
) -> models.InstanceType:
    """The default instance type for environments of this size (see the module docstring).

    Raises:
        errors.InvalidRequest: no candidate can hold even one environment.
    """
    usable = [
        k
        for k in candidates
        if slots_per_instance(k, vcpus, memory_mib) >= 1
        and (k.gpus >= gpus if gpus else k.gpus == 0)
    ]
    if not usable:
        raise errors.InvalidRequest(
            f"No allowed instance type can hold an execution environment of {vcpus} vCPU and "
            f"{memory_mib} MiB; allow larger types in the capacity provider's "
            "InstanceRequirements."
        )
    return min(
        usable,
        key=lambda k: (
            k.price_per_hour / slots_per_instance(k, vcpus, memory_mib),
            k.vcpus,
            -_generation(k),
            k.name,
        ),
    )

"""JSON encoding of the dataclasses the store keeps in TEXT columns.

The encoding is private to the store: field names are the dataclass names, so a rename in
``core.models`` needs a migration here, never a change on the wire.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

from corral.core import models

__all__ = [
    "provider_from_json",
    "provider_to_json",
    "spec_digest",
    "spec_from_json",
    "spec_to_json",
]


def spec_to_json(spec: models.FunctionSpec) -> str:
    data = dataclasses.asdict(spec)
    data["environment"] = dict(spec.environment)
    return json.dumps(data, sort_keys=True)


def spec_digest(spec: models.FunctionSpec) -> str:
    """A digest of a version's whole configuration and code."""
    return hashlib.sha256(spec_to_json(spec).encode()).hexdigest()


def spec_from_json(text: str) -> models.FunctionSpec:
    data: dict[str, Any] = json.loads(text)
    data["logging"] = models.LoggingConfig(**data["logging"])
    if data.get("managed") is not None:
        data["managed"] = models.ManagedInstancesConfig(**data["managed"])
    data["architectures"] = tuple(data["architectures"])
    return models.FunctionSpec(**data)


def provider_to_json(provider: models.CapacityProvider) -> str:
    data = dataclasses.asdict(provider)
    for key in ("name", "state", "last_modified_s"):
        data.pop(key)
    return json.dumps(data, sort_keys=True)


def provider_from_json(
    name: str, state: str, last_modified_s: float, text: str
) -> models.CapacityProvider:
    data: dict[str, Any] = json.loads(text)
    req = data.pop("requirements")
    data["requirements"] = models.InstanceRequirements(
        architectures=tuple(req["architectures"]),
        allowed_instance_types=tuple(req["allowed_instance_types"]),
        excluded_instance_types=tuple(req["excluded_instance_types"]),
    )
    data["scaling_policies"] = tuple(
        models.ScalingPolicy(**policy) for policy in data["scaling_policies"]
    )
    data["scaling_mode"] = models.ScalingMode(data["scaling_mode"])
    data["subnet_ids"] = tuple(data["subnet_ids"])
    data["security_group_ids"] = tuple(data["security_group_ids"])
    return models.CapacityProvider(
        name=name,
        state=models.CapacityProviderState(state),
        last_modified_s=last_modified_s,
        **data,
    )

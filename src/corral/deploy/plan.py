"""What a deploy will do: ``plan(template, recorded)`` (pure).

The template's resources are split into those Corral deploys (``SUPPORTED``) and those it
skips (listed, never silently dropped). Deployed resources are ordered so that everything a
resource refers to (``Ref``, ``Fn::GetAtt``, ``Fn::Sub``, ``DependsOn``) comes first; a
resource recorded by the last deploy and gone from the template is deleted, dependents
first. Whether a kept resource changes is known once the values it refers to are: the plan
resolves what it can with the last deploy's values (``changes``), and the apply step decides
again with the real ones.
"""

from __future__ import annotations

import graphlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from corral.core import errors
from corral.deploy import intrinsics

__all__ = ["SUPPORTED", "Action", "Desired", "Plan", "Recorded", "Step", "desired", "plan"]

# What Corral deploys, in the words of CloudFormation.
SUPPORTED = (
    "AWS::Lambda::CapacityProvider",
    "AWS::IAM::Role",
    "AWS::Lambda::Function",
    "AWS::Lambda::Version",
    "AWS::Lambda::Alias",
    "AWS::Lambda::Url",
    "AWS::Lambda::EventInvokeConfig",
    "AWS::Lambda::Permission",
)


class Action(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    KEEP = "no change"


@dataclass(frozen=True)
class Desired:
    """A resource of the template that Corral deploys (properties still unresolved)."""

    logical_id: str
    type: str
    properties: Mapping[str, Any]
    depends_on: frozenset[str]
    retain: bool = False  # DeletionPolicy: Retain (a version kept when it leaves the stack)


@dataclass(frozen=True)
class Recorded:
    """A resource as the last deploy left it."""

    logical_id: str
    type: str
    physical_id: str
    properties: Mapping[str, Any]  # resolved
    attributes: Mapping[str, Any] = field(default_factory=dict)
    code_digest: str = ""
    retain: bool = False


@dataclass(frozen=True)
class Step:
    logical_id: str
    type: str
    action: Action
    why: str = ""


@dataclass(frozen=True)
class Plan:
    steps: tuple[Step, ...]  # creates and updates in dependency order, then deletes
    skipped: tuple[tuple[str, str], ...]  # (logical id, type) of what Corral does not deploy

    @property
    def changes(self) -> bool:
        return any(s.action is not Action.KEEP for s in self.steps)


def desired(
    template: Mapping[str, Any], conditions: Mapping[str, bool]
) -> tuple[list[Desired], list[tuple[str, str]]]:
    """The resources to deploy and the ones skipped (their condition false: neither).

    Raises:
        errors.TemplateError: a resource's Condition is not in the template.
    """
    found: list[Desired] = []
    skipped: list[tuple[str, str]] = []
    for logical, resource in template["Resources"].items():
        condition = resource.get("Condition")
        if condition is not None:
            if condition not in conditions:
                raise errors.TemplateError(
                    f"resource {logical}: condition {condition!r} is not in Conditions"
                )
            if not conditions[condition]:
                continue
        kind = resource["Type"]
        if kind not in SUPPORTED:
            skipped.append((logical, kind))
            continue
        depends = resource.get("DependsOn") or []
        found.append(
            Desired(
                logical_id=logical,
                type=kind,
                properties=resource.get("Properties") or {},
                depends_on=frozenset([depends] if isinstance(depends, str) else depends),
                retain=resource.get("DeletionPolicy") == "Retain",
            )
        )
    return found, skipped


def plan(
    resources: list[Desired],
    skipped: list[tuple[str, str]],
    recorded: Mapping[str, Recorded],
    changed: Mapping[str, bool],
) -> Plan:
    """The steps of a deploy. ``changed`` says, for recorded resources kept in the template,
    whether their properties (resolved with the last deploy's values) or code differ.

    Raises:
        errors.TemplateError: resources that refer to each other in a cycle.
    """
    steps = []
    for resource in order(resources):
        old = recorded.get(resource.logical_id)
        if old is None:
            steps.append(Step(resource.logical_id, resource.type, Action.CREATE))
        elif old.type != resource.type:
            raise errors.TemplateError(
                f"resource {resource.logical_id} was a {old.type} and is now a {resource.type}: "
                "give the new resource another logical id"
            )
        elif changed.get(resource.logical_id, True):
            steps.append(Step(resource.logical_id, resource.type, Action.UPDATE))
        else:
            steps.append(Step(resource.logical_id, resource.type, Action.KEEP))
    kept = {r.logical_id for r in resources}
    for logical in reversed(list(recorded)):
        if logical not in kept:
            old = recorded[logical]
            why = "kept in Corral (DeletionPolicy: Retain)" if old.retain else ""
            steps.append(Step(logical, old.type, Action.DELETE, why))
    return Plan(tuple(steps), tuple(skipped))


def order(resources: list[Desired]) -> list[Desired]:
    """``resources`` with each after everything it refers to.

    Raises:
        errors.TemplateError: a cycle.
    """
    by_id = {r.logical_id: r for r in resources}
    sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    for resource in resources:
        needs = (intrinsics.references(resource.properties) | resource.depends_on) & set(by_id)
        sorter.add(resource.logical_id, *sorted(needs - {resource.logical_id}))
    try:
        ordered = list(sorter.static_order())
    except graphlib.CycleError as exc:
        raise errors.TemplateError(
            f"resources refer to each other in a cycle: {' -> '.join(exc.args[1])}"
        ) from None
    return [by_id[logical] for logical in ordered]

"""A deploy from start to end: ``prepare`` (read, transform, plan; no change anywhere) and
``apply`` (the plan's steps through the Lambda API, then the stack's new record).

Steps:

1. read the template and its parameters; expand SAM with AWS's translator (local code
   replaced by placeholders);
2. decide the conditions; split the resources into deployed and skipped;
3. plan against the stack's record: what is created, updated, deleted, kept;
4. apply: each resource's properties are resolved once everything it refers to exists
   (``Ref``/``Fn::GetAtt`` of resources made earlier in the same deploy), then created or
   updated, or deleted (dependents first). A failure rolls back what this deploy created
   and records the stack as it now is, so a fixed template deploys over it.

References to resources Corral skips (an SQS queue, say) resolve to a placeholder
``corral-skipped:<logical id>`` so that the rest deploys.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from corral.core import errors
from corral.deploy import intrinsics, sam, template
from corral.deploy.apply import HANDLERS, Target
from corral.deploy.package import CodeSource
from corral.deploy.plan import Action, Desired, Plan, Recorded, Step, desired
from corral.deploy.plan import plan as make_plan

__all__ = ["Deployment", "apply", "prepare", "recorded_of"]


class _Placeholder(Mapping[str, str]):
    """Attributes of a resource Corral does not deploy: any name, a placeholder."""

    def __init__(self, logical: str) -> None:
        self._logical = logical

    def __getitem__(self, name: str) -> str:
        return f"corral-skipped:{self._logical}.{name}"

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


@dataclass
class Deployment:
    """A prepared deploy: the expanded template, its plan, and what the plan needs."""

    stack: str
    template_path: Path
    parameters: dict[str, Any]
    pseudo: dict[str, Any]
    cfn: dict[str, Any]
    sources: dict[str, CodeSource]
    conditions: dict[str, bool]
    resources: list[Desired]
    recorded: dict[str, Recorded]
    plan: Plan
    skipped_refs: dict[str, str] = field(default_factory=dict)

    def known(self, done: Mapping[str, Recorded]) -> intrinsics.Known:
        """What values resolve against, given the resources that exist."""
        attributes: dict[str, Mapping[str, Any]] = {
            logical: _Placeholder(logical) for logical in self.skipped_refs
        }
        attributes.update({r.logical_id: r.attributes for r in done.values()})
        return intrinsics.Known(
            parameters=self.parameters,
            pseudo=self.pseudo,
            conditions=self.conditions,
            mappings=self.cfn.get("Mappings") or {},
            refs={**self.skipped_refs, **{r.logical_id: r.physical_id for r in done.values()}},
            attributes=attributes,
            resources=frozenset(r.logical_id for r in self.resources),
        )


def recorded_of(record: Mapping[str, Any] | None) -> dict[str, Recorded]:
    """The resources of a stack's record, in the order they were made."""
    if not record:
        return {}
    return {
        r["LogicalId"]: Recorded(
            logical_id=r["LogicalId"],
            type=r["Type"],
            physical_id=r["PhysicalId"],
            properties=r.get("Properties") or {},
            attributes=r.get("Attributes") or {},
            code_digest=r.get("CodeDigest", ""),
            retain=bool(r.get("Retain")),
        )
        for r in record.get("Resources", [])
    }


def prepare(
    path: Path,
    stack: str,
    overrides: Mapping[str, str],
    *,
    region: str,
    account: str,
    record: Mapping[str, Any] | None,
    target: Target,
) -> Deployment:
    """Read, expand and plan a deploy (steps 1 to 3); nothing changes yet.

    Raises:
        errors.TemplateError: what is wrong with the template, and where.
    """
    source = template.load(path)
    parameters = template.parameter_values(source, overrides)
    pseudo = {
        "AWS::Region": region,
        "AWS::AccountId": account,
        "AWS::StackName": stack,
        "AWS::StackId": f"arn:aws:cloudformation:{region}:{account}:stack/{stack}/corral",
        "AWS::Partition": "aws",
        "AWS::URLSuffix": "amazonaws.com",
    }
    cfn, sources = sam.expand(source, path.parent, parameters, pseudo)
    base = intrinsics.Known(parameters, pseudo, mappings=cfn.get("Mappings") or {})
    conditions = intrinsics.evaluate_conditions(cfn.get("Conditions") or {}, base)
    resources, skipped = desired(cfn, conditions)
    recorded = recorded_of(record)
    deployment = Deployment(
        stack,
        path,
        parameters,
        pseudo,
        cfn,
        sources,
        conditions,
        resources,
        recorded,
        Plan((), ()),
        {logical: f"corral-skipped:{logical}" for logical, _ in skipped},
    )
    target.sources = sources
    _check(deployment)
    known = deployment.known(recorded)
    changed = {
        r.logical_id: _differs(r, recorded[r.logical_id], known, target)
        for r in resources
        if r.logical_id in recorded
    }
    deployment.plan = make_plan(resources, skipped, recorded, changed)
    return deployment


def _check(deployment: Deployment) -> None:
    """Resolve everything once with stand-ins for what does not exist yet, so that a template
    Corral cannot deploy fails before anything changes.

    Raises:
        errors.TemplateError: an intrinsic Corral cannot resolve, naming the resource.
    """
    every = {r.logical_id for r in deployment.resources} | set(deployment.skipped_refs)
    known = intrinsics.Known(
        parameters=deployment.parameters,
        pseudo=deployment.pseudo,
        conditions=deployment.conditions,
        mappings=deployment.cfn.get("Mappings") or {},
        refs={logical: f"<{logical}>" for logical in every},
        attributes={logical: _Placeholder(logical) for logical in every},
    )
    for resource in deployment.resources:
        try:
            intrinsics.resolve(resource.properties, known)
        except errors.TemplateError as exc:
            raise errors.TemplateError(f"resource {resource.logical_id}: {exc.message}") from None
    for name, spec in (deployment.cfn.get("Outputs") or {}).items():
        try:
            intrinsics.resolve(spec.get("Value"), known)
        except errors.TemplateError as exc:
            raise errors.TemplateError(f"output {name}: {exc.message}") from None


def _differs(resource: Desired, old: Recorded, known: intrinsics.Known, target: Target) -> bool:
    try:
        props = intrinsics.resolve(resource.properties, known)
    except intrinsics.Pending:
        return True  # it refers to something this deploy makes
    if props != old.properties:
        return True
    return HANDLERS[resource.type].digest(target, resource.logical_id, props) != old.code_digest


def apply(
    deployment: Deployment,
    target: Target,
    on_step: Callable[[Step, str], None],
) -> dict[str, Any]:
    """Carry out the plan (step 4); returns the stack's new record (its ``Status`` says how
    it went; on failure ``Reason`` says why and what this deploy created is gone again).
    """
    done: dict[str, Recorded] = dict(deployment.recorded)
    created: list[Recorded] = []
    by_id = {r.logical_id: r for r in deployment.resources}
    status, reason = "UPDATE_COMPLETE" if deployment.recorded else "CREATE_COMPLETE", ""
    try:
        for step in deployment.plan.steps:
            handler = HANDLERS[step.type]
            if step.action is Action.DELETE:
                gone = done.pop(step.logical_id)
                shared = any(
                    r.physical_id == gone.physical_id for r in done.values() if r.type == gone.type
                )
                if not shared:
                    on_step(step, "deleting")
                    handler.delete(target, gone)
                continue
            resource = by_id[step.logical_id]
            props = intrinsics.resolve(resource.properties, deployment.known(done))
            old = done.get(step.logical_id)
            if old is None:
                on_step(step, "creating")
                made = handler.create(target, step.logical_id, props)
                created.append(made)
            elif props == old.properties and (
                handler.digest(target, step.logical_id, props) == old.code_digest
            ):
                continue
            else:
                on_step(step, "updating")
                made = handler.update(target, old, props)
            done[step.logical_id] = Recorded(
                made.logical_id,
                made.type,
                made.physical_id,
                made.properties,
                made.attributes,
                made.code_digest,
                resource.retain,
            )
    except (errors.CorralError, intrinsics.Pending, Exception) as exc:
        reason = _explain(exc)
        status = "UPDATE_ROLLBACK_COMPLETE" if deployment.recorded else "ROLLBACK_COMPLETE"
        for made in reversed(created):
            try:
                HANDLERS[made.type].delete(target, made)
            except Exception as undo:  # keep rolling back; say what stayed
                reason += f"; rolling back {made.logical_id} failed: {_explain(undo)}"
                continue
            done.pop(made.logical_id, None)
    return _record(deployment, done, status, reason)


def _explain(exc: BaseException) -> str:
    if isinstance(exc, errors.CorralError):
        return exc.message
    if isinstance(exc, intrinsics.Pending):
        return f"{exc.logical_id} was not made before a resource that refers to it"
    response = getattr(exc, "response", None)
    if isinstance(response, dict) and "Error" in response:
        error = response["Error"]
        return f"{error.get('Code')}: {error.get('Message')}"
    return f"{type(exc).__name__}: {exc}"


def _record(
    deployment: Deployment, done: Mapping[str, Recorded], status: str, reason: str
) -> dict[str, Any]:
    order = [s.logical_id for s in deployment.plan.steps if s.logical_id in done]
    order += [logical for logical in done if logical not in order]
    outputs: dict[str, Any] = {}
    if not reason:
        known = deployment.known(done)
        for name, spec in (deployment.cfn.get("Outputs") or {}).items():
            condition = spec.get("Condition")
            if condition is not None and not deployment.conditions.get(condition, False):
                continue
            try:
                value = intrinsics.resolve(spec.get("Value"), known)
            except (errors.CorralError, intrinsics.Pending) as exc:
                value = f"(unresolved: {_explain(exc)})"
            outputs[name] = {"Value": value, "Description": spec.get("Description", "")}
    return {
        "Name": deployment.stack,
        "Status": status,
        "Reason": reason,
        "Template": str(deployment.template_path),
        "Parameters": deployment.parameters,
        "Updated": time.time(),
        "Skipped": [list(s) for s in deployment.plan.skipped],
        "Outputs": outputs,
        "Resources": [
            {
                "LogicalId": r.logical_id,
                "Type": r.type,
                "PhysicalId": r.physical_id,
                "Properties": r.properties,
                "Attributes": dict(r.attributes),
                "CodeDigest": r.code_digest,
                "Retain": r.retain,
            }
            for r in (done[logical] for logical in order)
        ],
    }

"""Which instance a cluster node is: a pure function of what the node advertises.

A node that advertises the custom resource ``corral`` is a Corral instance. Its vCPUs and
memory are the node's own (the ``CPU`` and ``memory`` resources it starts with). Its
instance type is the one it declares with the label ``corral-instance-type`` (a name of
Corral's catalogue: ``ray start ... --labels corral-instance-type=m7i.large``), else
the closest type that fits it: the largest catalogue type of its architecture (label
``corral-architecture``, default ``x86_64``) whose vCPUs and memory are within the node's,
the cheapest among equals. The type decides what ``AllowedInstanceTypes``,
``ExcludedInstanceTypes`` and ``Architectures`` of a capacity provider see; ``MaxVCpuCount``
counts the node's vCPUs.

A node whose declaration cannot be honoured (an unknown type, an unknown architecture,
no type small enough) is not used, and says why (``NodeType.problem``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from corral.core import models

__all__ = ["ARCHITECTURE_LABEL", "TYPE_LABEL", "NodeType", "node_type"]

TYPE_LABEL = "corral-instance-type"
ARCHITECTURE_LABEL = "corral-architecture"
_ARCHITECTURES = ("x86_64", "arm64")


@dataclass(frozen=True)
class NodeType:
    """The instance type a node counts as (with the node's own size), or why none."""

    instance_type: models.InstanceType | None
    declared: bool
    problem: str = ""


def node_type(
    types: Sequence[models.InstanceType],
    labels: Mapping[str, str],
    vcpus: int,
    memory_mib: int,
) -> NodeType:
    """The type of a node of ``vcpus`` and ``memory_mib`` with these labels."""
    if vcpus < 1:
        return NodeType(None, False, "it offers no CPU (start it with --num-cpus N)")
    declared = labels.get(TYPE_LABEL)
    if declared:
        found = next((t for t in types if t.name == declared), None)
        if found is None:
            return NodeType(
                None,
                True,
                f"it declares the instance type {declared!r}, which is not in Corral's "
                "catalogue (`corral cost types` lists them)",
            )
        return NodeType(_sized(found, vcpus, memory_mib), True)
    architecture = labels.get(ARCHITECTURE_LABEL, "x86_64")
    if architecture not in _ARCHITECTURES:
        return NodeType(
            None, False, f"it declares the architecture {architecture!r} (x86_64 or arm64)"
        )
    fitting = [
        t
        for t in types
        if t.architecture == architecture
        and t.gpus == 0
        and t.vcpus <= vcpus
        and t.memory_mib <= memory_mib
    ]
    if not fitting:
        return NodeType(
            None,
            False,
            f"no {architecture} instance type is as small as {vcpus} vCPU and {memory_mib} "
            f"MiB; declare one with the label {TYPE_LABEL}",
        )
    closest = min(fitting, key=lambda t: (-t.vcpus, -t.memory_mib, t.price_per_hour, t.name))
    return NodeType(_sized(closest, vcpus, memory_mib), False)


def _sized(kind: models.InstanceType, vcpus: int, memory_mib: int) -> models.InstanceType:
    """The type, with the node's own vCPUs and memory (what placement may use)."""
    return dataclasses.replace(kind, vcpus=vcpus, memory_mib=memory_mib)

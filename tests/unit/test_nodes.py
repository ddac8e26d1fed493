"""``corral.backends.nodes``: which instance type a cluster node counts as."""

from __future__ import annotations

from corral.backends.nodes import ARCHITECTURE_LABEL, TYPE_LABEL, node_type
from corral.cost import catalog

TYPES = catalog.load().types


def test_a_declared_type_is_used_with_the_nodes_own_size() -> None:
    found = node_type(TYPES, {TYPE_LABEL: "m7i.large"}, vcpus=2, memory_mib=6000)
    assert found.instance_type is not None and found.declared
    assert found.instance_type.name == "m7i.large"
    assert (found.instance_type.vcpus, found.instance_type.memory_mib) == (2, 6000)


def test_an_unknown_declared_type_makes_the_node_unusable_and_says_why() -> None:
    found = node_type(TYPES, {TYPE_LABEL: "z9.huge"}, vcpus=2, memory_mib=8192)
    assert found.instance_type is None
    assert "'z9.huge', which is not in Corral's catalogue" in found.problem


def test_without_a_declaration_the_closest_type_that_fits_is_chosen() -> None:
    found = node_type(TYPES, {}, vcpus=2, memory_mib=8192)
    assert found.instance_type is not None and not found.declared
    kind = found.instance_type
    chosen = catalog.load().get(kind.name)
    assert chosen is not None
    assert (chosen.vcpus, chosen.memory_mib) == (2, 8192)  # an m-family large
    assert chosen.architecture == "x86_64" and chosen.gpus == 0
    arm = node_type(TYPES, {ARCHITECTURE_LABEL: "arm64"}, vcpus=4, memory_mib=9000)
    assert arm.instance_type is not None and arm.instance_type.architecture == "arm64"
    assert catalog.load().get(arm.instance_type.name).vcpus == 4  # type: ignore[union-attr]


def test_a_node_too_small_or_without_cpu_is_refused() -> None:
    assert "no x86_64 instance type" in node_type(TYPES, {}, vcpus=1, memory_mib=512).problem
    assert "offers no CPU" in node_type(TYPES, {}, vcpus=0, memory_mib=8192).problem
    assert (
        "architecture 'sparc'" in node_type(TYPES, {ARCHITECTURE_LABEL: "sparc"}, 2, 8192).problem
    )

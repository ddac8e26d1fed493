"""The fleet's pure decisions: instance types, placement, desired environments, instances."""

from __future__ import annotations

import pytest

from corral.core import errors, models
from corral.cost import catalog
from corral.scaler import instances, placement, policy
from corral.scaler.views import InstanceView

REF = models.VersionRef("orders", "1")
OTHER = models.VersionRef("orders", "2")
RUNNING = models.InstanceState.RUNNING
PENDING = models.InstanceState.PENDING


def kind(
    name: str, vcpus: int, memory_gib: int, price: float, arch: str = "x86_64"
) -> models.InstanceType:
    family = name.split(".")[0]
    return models.InstanceType(name, family, "general", arch, vcpus, memory_gib * 1024, price)


# --- the catalogue ---------------------------------------------------------------------


def test_the_shipped_catalogue_has_priced_c_m_r_and_gpu_types_with_its_source() -> None:
    shipped = catalog.load()
    assert shipped.region == "us-east-1" and shipped.source and shipped.retrieved
    names = {t.name for t in shipped.types}
    assert {"c7g.xlarge", "m6g.large", "r7i.2xlarge", "g5.xlarge", "g6.xlarge"} <= names
    m6g = shipped.get("m6g.large")
    assert m6g is not None and (m6g.vcpus, m6g.memory_mib, m6g.price_per_hour) == (2, 8192, 0.077)
    assert all(t.price_per_hour > 0 and t.vcpus >= 2 for t in shipped.types)
    assert {t.architecture for t in shipped.types} == {"x86_64", "arm64"}
    assert all(t.architecture == "x86_64" for t in shipped.types if t.gpus)


def test_requirements_filter_by_architecture_and_allowed_or_excluded_wildcards() -> None:
    shipped = catalog.load().types
    arm = catalog.matching(shipped, models.InstanceRequirements(architectures=("arm64",)))
    assert arm and all(t.architecture == "arm64" for t in arm)
    allowed = catalog.matching(
        shipped, models.InstanceRequirements(allowed_instance_types=("m7g.*", "c7g.large"))
    )
    assert {t.family for t in allowed} == set()  # m7g and c7g are arm64; x86_64 is the default
    allowed_arm = catalog.matching(
        shipped,
        models.InstanceRequirements(("arm64",), allowed_instance_types=("m7g.*", "c7g.large")),
    )
    assert {t.name for t in allowed_arm} >= {"m7g.large", "m7g.xlarge", "c7g.large"}
    assert all(t.family == "m7g" or t.name == "c7g.large" for t in allowed_arm)
    excluded = catalog.matching(
        shipped, models.InstanceRequirements(excluded_instance_types=("*.large", "g*"))
    )
    assert excluded and all(not t.name.endswith(".large") and t.gpus == 0 for t in excluded)


def test_the_default_type_is_the_cheapest_per_environment() -> None:
    cheap_per_slot = kind("m.xlarge", 4, 16, 0.20)  # 4 environments of 1 vCPU / 2 GiB
    pricey = kind("c.large", 2, 4, 0.12)  # 2 environments: 0.06 each
    assert catalog.choose_type([pricey, cheap_per_slot], 1, 2048).name == "m.xlarge"


def test_ties_go_to_the_smaller_type() -> None:
    small, big = kind("c.large", 2, 4, 0.10), kind("c.xlarge", 4, 8, 0.20)
    assert catalog.choose_type([big, small], 1, 2048).name == "c.large"


def test_the_matching_ratio_family_wins_for_the_shipped_prices() -> None:
    shipped = catalog.matching(catalog.load().types, models.InstanceRequirements(("arm64",)))
    assert catalog.choose_type(shipped, 1, 2048).family.startswith("c")
    assert catalog.choose_type(shipped, 1, 4096).family.startswith("m")
    assert catalog.choose_type(shipped, 1, 8192).family.startswith("r")


def test_no_type_that_can_hold_an_environment_is_a_clear_error() -> None:
    with pytest.raises(errors.InvalidRequest, match="InstanceRequirements"):
        catalog.choose_type([kind("c.large", 2, 4, 0.1)], 4, 16384)


# --- placement -----------------------------------------------------------------------------


def view(
    name: str,
    vcpus: int = 4,
    used: int = 0,
    *,
    seq: int = 0,
    state: models.InstanceState = RUNNING,
    counts: dict[models.VersionRef, int] | None = None,
) -> InstanceView:
    return InstanceView(
        id=name,
        state=state,
        vcpus=vcpus,
        memory_mib=vcpus * 2048,
        vcpus_allocated=used,
        memory_allocated_mib=used * 2048,
        launched_seq=seq,
        version_counts=counts or {},
    )


def test_an_environment_goes_only_where_it_fits_and_only_on_running_instances() -> None:
    assert placement.place([view("full", 2, 2), view("boot", state=PENDING)], REF, 1, 2048) is None
    chosen = placement.place([view("full", 2, 2), view("room", 2, 1)], REF, 1, 2048)
    assert chosen is not None and chosen.id == "room"


def test_a_versions_environments_spread_before_they_pack() -> None:
    busy = view("a", 4, 1, counts={REF: 1})
    empty = view("b", 4, 0, seq=1)
    chosen = placement.place([busy, empty], REF, 1, 2048)
    assert chosen is not None and chosen.id == "b"


def test_otherwise_the_fullest_instance_that_fits_wins() -> None:
    roomy, snug = view("roomy", 8, 0), view("snug", 4, 3, seq=1)
    chosen = placement.place([roomy, snug], OTHER, 1, 2048)
    assert chosen is not None and chosen.id == "snug"


# --- desired environments -----------------------------------------------------------------


def decide(
    load: policy.VersionLoad,
    previous: int = 3,
    last: float = 0.0,
    now: float = 100.0,
    scaling: models.ScalingConfig | None = None,
) -> policy.Decision:
    return policy.desired_environments(
        load, scaling, previous=previous, last_scale_in_s=last, now_s=now, cooldown_s=60.0
    )


def test_an_idle_version_keeps_its_minimum() -> None:
    assert decide(policy.VersionLoad(3, 4)).desired == 3


def test_busy_slots_add_enough_environments_to_keep_half_of_them_free() -> None:
    # 12 in flight on slots of 4: 12 / (4 * 0.5) = 6 environments.
    assert decide(policy.VersionLoad(3, 4, peak_inflight=12)).desired == 6


def test_throttles_at_least_double_the_environments_however_many_retries_there_were() -> None:
    assert decide(policy.VersionLoad(3, 4, peak_inflight=12, throttled=500)).desired == 6
    assert decide(policy.VersionLoad(6, 4, peak_inflight=24, throttled=3), previous=6).desired == 12


def test_busy_cpu_adds_environments() -> None:
    assert decide(policy.VersionLoad(4, 16, peak_inflight=1, cpu_utilization=0.9)).desired == 8


def test_the_maximum_caps_scale_out() -> None:
    load = policy.VersionLoad(3, 4, peak_inflight=40)
    assert decide(load, scaling=models.ScalingConfig(3, 5)).desired == 5


def test_scale_in_removes_one_environment_per_cooldown() -> None:
    quiet = policy.VersionLoad(10, 4)
    first = decide(quiet, previous=10, last=0.0, now=100.0)
    assert first == policy.Decision(9, 100.0)
    assert decide(quiet, previous=9, last=100.0, now=130.0).desired == 9
    assert decide(quiet, previous=9, last=100.0, now=161.0).desired == 8


def test_min_and_max_zero_deactivate() -> None:
    load = policy.VersionLoad(3, 4, peak_inflight=50)
    assert decide(load, scaling=models.ScalingConfig(0, 0)).desired == 0


# --- instances -----------------------------------------------------------------------------


TYPE = kind("c.xlarge", 4, 8, 0.17)


def target(max_vcpus: int = 400, cpu: float = 0.5) -> instances.ProviderTarget:
    return instances.ProviderTarget("pool", max_vcpus, cpu, TYPE)


def observed(
    name: str,
    *,
    state: models.InstanceState = RUNNING,
    used: int = 0,
    envs: int = 0,
    cpu: float = 0.0,
    empty_since: float | None = None,
) -> InstanceView:
    return InstanceView(
        id=name,
        state=state,
        vcpus=4,
        memory_mib=8192,
        vcpus_allocated=used,
        memory_allocated_mib=used * 2048,
        environments=envs,
        cpu_utilization=cpu,
        empty_since_s=empty_since,
    )


def demand(count: int, for_minimum: int = 0, ref: models.VersionRef = REF) -> instances.Demand:
    return instances.Demand(ref, count, 1, 2048, for_minimum)


def launches(actions: list[instances.InstanceAction]) -> int:
    return sum(a.count for a in actions if isinstance(a, instances.LaunchInstances))


def test_a_new_provider_launches_three_instances_for_zone_spread() -> None:
    actions = instances.plan_instances(target(), [], [demand(3, 3)], now_s=0, cooldown_s=60)
    assert launches(actions) == 3


def test_demand_is_packed_onto_pending_room_then_new_instances() -> None:
    booting = observed("boot", state=PENDING)
    actions = instances.plan_instances(target(), [booting], [demand(6)], now_s=0, cooldown_s=60)
    assert launches(actions) == 1  # 4 fit on the pending instance, 2 on one new one


def test_average_cpu_above_target_adds_instances() -> None:
    hot = [observed("a", envs=4, used=4, cpu=0.9), observed("b", envs=4, used=4, cpu=0.9)]
    actions = instances.plan_instances(target(cpu=0.5), hot, [], now_s=0, cooldown_s=60)
    assert launches(actions) == 2  # ceil(2 * 0.9 / 0.5) = 4 instances in all


def test_max_vcpu_count_caps_launches_and_fails_an_unreachable_minimum() -> None:
    live = [observed("a", envs=4, used=4)]
    actions = instances.plan_instances(
        target(max_vcpus=8), live, [demand(8, for_minimum=8)], now_s=0, cooldown_s=60
    )
    assert launches(actions) == 1  # 4 + 4 vCPUs is the cap
    assert [a.ref for a in actions if isinstance(a, instances.MinimumUnreachable)] == [REF]


def test_demand_above_the_minimum_is_cut_without_failing_the_version() -> None:
    actions = instances.plan_instances(
        target(max_vcpus=4), [observed("a", envs=4, used=4)], [demand(4)], now_s=0, cooldown_s=60
    )
    assert launches(actions) == 0
    assert not any(isinstance(a, instances.MinimumUnreachable) for a in actions)


def test_an_instance_empty_for_the_cooldown_is_terminated_and_not_before() -> None:
    empty = observed("idle", empty_since=10.0)
    early = instances.plan_instances(target(), [empty], [], now_s=30.0, cooldown_s=60)
    late = instances.plan_instances(target(), [empty], [], now_s=71.0, cooldown_s=60)
    assert early == []
    assert late == [instances.TerminateInstance("idle", "no execution environments")]


def test_without_an_instance_type_nothing_is_launched() -> None:
    no_type = instances.ProviderTarget("pool", 400, 0.5, None)
    assert instances.plan_instances(no_type, [], [demand(3)], now_s=0, cooldown_s=60) == []

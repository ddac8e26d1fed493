"""Known answers, computed by hand from the published prices (LMI_FACTS §5)."""

from __future__ import annotations

import dataclasses
import math

import pytest

from corral.core import errors
from corral.cost import catalog
from corral.cost.calculator import (
    Profile,
    break_even_rps,
    classic_cost,
    curve,
    estimate,
    managed_cost,
)

TYPES = catalog.load().types
MONTH_S = 730 * 3600


def test_three_m6g_large_for_a_month_cost_about_194_usd() -> None:
    # 3 x 730 h x $0.077 = $168.63, plus 15% = $25.2945, no requests.
    idle = Profile.constant(0, 200, architecture="arm64", instance_type="m6g.large")
    cost = managed_cost(idle, TYPES)
    assert (cost.peak_instances, cost.instance_hours) == (3, 2190)
    assert cost.compute_usd == pytest.approx(168.63)
    assert cost.management_fee_usd == pytest.approx(25.2945)
    assert cost.monthly_usd == pytest.approx(193.9245)


def test_an_ec2_discount_applies_to_the_instances_not_to_the_fee() -> None:
    idle = Profile.constant(
        0, 200, architecture="arm64", instance_type="m6g.large", ec2_discount=0.3
    )
    cost = managed_cost(idle, TYPES)
    assert cost.compute_usd == pytest.approx(168.63 * 0.7)
    assert cost.management_fee_usd == pytest.approx(25.2945)


def test_classic_at_100_rps_of_200_ms_at_2_gb() -> None:
    # 100 x 2,628,000 s = 262.8M requests ($52.56); x 0.2 s x 2 GB = 105.12M GB-s.
    x86 = classic_cost(Profile.constant(100, 200, memory_mb=2048))
    assert x86.requests == pytest.approx(262_800_000)
    assert x86.gb_seconds == pytest.approx(105_120_000)
    assert x86.request_usd == pytest.approx(52.56)
    assert x86.duration_usd == pytest.approx(105_120_000 * 0.0000166667)  # $1,752.00
    assert x86.monthly_usd == pytest.approx(1804.5635, abs=0.001)
    arm = classic_cost(Profile.constant(100, 200, memory_mb=2048, architecture="arm64"))
    assert arm.duration_usd == pytest.approx(105_120_000 * 0.0000133334)  # $1,401.61
    free = classic_cost(Profile.constant(100, 200, memory_mb=2048, free_tier=True))
    assert free.request_usd == pytest.approx((262.8 - 1) * 0.20)
    assert free.duration_usd == pytest.approx((105_120_000 - 400_000) * 0.0000166667)
    plan = classic_cost(Profile.constant(100, 200, lambda_savings_plan=0.17))
    assert plan.duration_usd == pytest.approx(x86.duration_usd * 0.83)
    assert plan.request_usd == pytest.approx(52.56)  # plans discount duration only


def test_the_break_even_rate_by_hand() -> None:
    # Classic: per request/s a month $0.5256 + 1,051,200 GB-s x $0.0000133334 = $14.5417.
    # Managed (3 x m6g.large, 6 environments, enough up to 240 rps): $193.9245 + $0.5256/rps.
    profile = Profile.constant(50, 200, architecture="arm64", instance_type="m6g.large")
    expected = 193.9245 / (14.5417 - 0.5256)
    assert break_even_rps(profile, TYPES) == pytest.approx(expected, rel=1e-3)
    result = estimate(profile, TYPES)
    assert result.break_even_rps == pytest.approx(expected, rel=1e-3)
    assert result.classic.monthly_usd > result.managed.monthly_usd  # 50 rps: past it


def test_instances_follow_the_fleets_rules_hour_by_hour() -> None:
    # 12 h at 1,000 rps of 200 ms: 200 in flight, 8 of 16 slots busy per environment at
    # most -> 25 environments, 2 per m6g.large -> 13 instances; 12 h idle -> 3.
    shape = (1000.0,) * 12 + (0.0,) * 12
    profile = Profile(shape, 200, architecture="arm64", instance_type="m6g.large")
    cost = managed_cost(profile, TYPES)
    assert (cost.peak_environments, cost.peak_instances) == (25, 13)
    assert cost.instance_hours == pytest.approx((13 * 12 + 3 * 12) * 730 / 24)
    assert cost.compute_usd == pytest.approx(cost.instance_hours * 0.077)
    assert cost.request_usd == pytest.approx(1000 * 3600 * 12 * 730 / 24 / 1e6 * 0.20)
    # CPU-bound code needs more: 1,000 rps x 150 ms CPU = 150 vCPUs busy, at most half of
    # each 1-vCPU environment -> 300 environments -> 150 instances.
    busy = managed_cost(
        Profile(shape, 200, architecture="arm64", instance_type="m6g.large", cpu_ms=150),
        TYPES,
    )
    assert (busy.peak_environments, busy.peak_instances) == (300, 150)


def test_the_default_type_is_the_cheapest_for_the_profile() -> None:
    profile = Profile.constant(100, 200)
    chosen = managed_cost(profile, TYPES)
    for kind in ("m6i.large", "c6a.large", "m5.xlarge"):
        named = managed_cost(Profile.constant(100, 200, instance_type=kind), TYPES)
        assert chosen.monthly_usd <= named.monthly_usd
    assert catalog.load().get(chosen.instance_type) is not None


def test_the_chart_data_crosses_at_the_break_even_rate() -> None:
    profile = Profile.constant(50, 200, architecture="arm64", instance_type="m6g.large")
    even = break_even_rps(profile, TYPES)
    assert even is not None
    points = curve(profile, TYPES, [even * 0.5, even * 2])
    (_, classic_low, managed_low), (_, classic_high, managed_high) = points
    assert classic_low < managed_low and classic_high > managed_high


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"hourly_rps": (-1.0,) * 24}, "request rates must be finite and 0 or more"),
        ({"hourly_rps": (1.0,) * 23}, "24 hourly rates"),
        ({"hourly_rps": (float("nan"),) * 24}, "finite"),
        ({"duration_ms": 0}, "the duration must be"),
        ({"memory_mb": 64}, "the memory must be"),
        ({"architecture": "sparc"}, "x86_64 or arm64"),
        ({"per_ee_concurrency": 0}, "1 to 1,600"),
        ({"memory_gib_per_vcpu": 3.0}, "2, 4 or 8"),
        ({"ec2_discount": 1.0}, "EC2 discount"),
        ({"lambda_savings_plan": 0.5}, "17%"),
        ({"cpu_ms": 500}, "CPU time"),
    ],
)
def test_bad_profiles_are_refused_clearly(settings: dict[str, object], message: str) -> None:
    base: dict[str, object] = {"hourly_rps": (10.0,) * 24, "duration_ms": 200}
    base.update(settings)
    with pytest.raises(errors.InvalidRequest) as refused:
        estimate(Profile(**base), TYPES)  # type: ignore[arg-type]
    assert message in refused.value.message


def test_unknown_or_mismatched_instance_types_are_refused() -> None:
    with pytest.raises(errors.InvalidRequest, match="Unknown instance type 'm9.huge'"):
        managed_cost(Profile.constant(1, 100, instance_type="m9.huge"), TYPES)
    with pytest.raises(errors.InvalidRequest, match="m6g.large is arm64"):
        managed_cost(Profile.constant(1, 100, instance_type="m6g.large"), TYPES)
    with pytest.raises(errors.InvalidRequest, match="can hold an execution environment"):
        managed_cost(Profile.constant(1, 100, memory_mb=32768, instance_type="c6a.large"), TYPES)


def test_a_small_classic_function_gets_2_gb_environments_on_managed_instances() -> None:
    small = Profile.constant(
        10, 100, memory_mb=128, architecture="arm64", instance_type="m6g.large"
    )
    assert classic_cost(small).gb_seconds == pytest.approx(10 * MONTH_S * 0.1 * 0.125)
    cost = managed_cost(small, TYPES)
    assert cost.environments_per_instance == 2  # 8 GiB / 2 GiB, 2 vCPU / 1
    assert cost.peak_instances == 3


def test_scale_to_zero_pays_for_the_hours_the_fleet_is_up_only() -> None:
    types = catalog.load().types
    always = managed_cost(Profile.constant(0.001, 100, instance_type="c6a.large"), types)
    sleepy_profile = Profile.constant(0.001, 100, instance_type="c6a.large", idle_timeout_s=300)
    sleepy = managed_cost(sleepy_profile, types)
    # Poisson arrivals at 0.001/s keep it up 1 - e^-0.3 of the time, 3 instances then.
    awake = 1 - math.exp(-0.3)
    assert sleepy.instance_hours == pytest.approx(always.instance_hours * awake)
    assert sleepy.cold_starts == pytest.approx(0.001 * 3600 * 730 * math.exp(-0.3))
    assert sleepy.request_usd == always.request_usd
    # No traffic at all: nothing but requests (none).
    idle = managed_cost(Profile.constant(0.0, 100, idle_timeout_s=60), types)
    assert idle.monthly_usd == 0.0 and idle.cold_starts == 0.0
    # Busy all the time: it never sleeps, and costs what it costs on AWS.
    busy = Profile.constant(50, 100, instance_type="c6a.large")
    assert managed_cost(
        dataclasses.replace(busy, idle_timeout_s=60), types
    ).monthly_usd == pytest.approx(managed_cost(busy, types).monthly_usd)
    with pytest.raises(errors.InvalidRequest, match="idle timeout"):
        dataclasses.replace(sleepy_profile, idle_timeout_s=30).check()

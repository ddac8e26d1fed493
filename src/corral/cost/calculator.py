"""Classic Lambda against Managed Instances, per month, for a traffic profile: pure, no I/O.

The formulas are AWS's (LMI_FACTS §5, us-east-1 prices; every assumption is a parameter):

* **classic**: requests x $0.20 per million, plus GB-seconds (requests x duration x memory)
  x $0.0000166667 (x86_64) or $0.0000133334 (arm64); optionally the free tier (1M requests
  and 400,000 GB-s a month) and a Compute Savings Plan (up to 17% off duration).
* **Managed Instances**: instance-hours x the type's on-demand price x (1 - the EC2
  discount), plus the 15% management fee on the *on-demand* price (discounts do not apply to
  it), plus requests x $0.20 per million. No duration charge.

How many instances, hour by hour, follows the fleet's own rules: an execution environment
has ``memory / ratio`` whole vCPUs (``ManagedInstancesConfig.vcpus``) and its slots
(``PerExecutionEnvironmentMaxConcurrency``, by default the runtime's per-vCPU default); the
fleet keeps at most ``TARGET_UTILIZATION`` of the slots busy so traffic can double, and never
fewer than 3 environments (the default minimum), and (``cpu_ms``, for CPU-bound code) at
most the same share of each environment's vCPUs busy; environments are packed on instances by
``slots_per_instance`` and a provider never runs fewer than 3 instances (one per zone). The
concurrency of an hour is its rate x the duration (Little's law). A month is 730 hours; a
daily profile repeats every day.

**Scale to zero** (Corral's provider tag ``corral:idle-timeout-s``, ``idle_timeout_s``): a
version with no invocation for that long has no environment and no instance until the next
one. With requests arriving at random (Poisson) at rate r, the share of an hour the fleet
stays up is ``1 - exp(-r x T)`` (each arrival keeps it up for the timeout T, overlapping),
and each arrival after a gap longer than T is a cold start: ``3600 x r x exp(-r x T)`` an
hour. Asleep, it costs nothing (no floor of environments or instances).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from corral.core import errors, models
from corral.cost.catalog import choose_type, slots_per_instance

__all__ = [
    "TARGET_UTILIZATION",
    "ClassicCost",
    "Estimate",
    "ManagedCost",
    "Prices",
    "Profile",
    "break_even_rps",
    "chart_rates",
    "classic_cost",
    "classic_price",
    "curve",
    "estimate",
    "managed_cost",
    "managed_memory_mb",
    "summary",
]

# Half the slots busy at most: load may double before anything is throttled, the headroom
# AWS's default scaling promises (LMI_FACTS §2.6). The fleet scales by the same target.
TARGET_UTILIZATION = 0.5
HOURS_PER_MONTH = 730.0
# Managed Instances functions have at least 2 GB (LMI_FACTS §1): a smaller classic function
# moved there gets environments of this size.
MANAGED_MIN_MEMORY_MB = 2048
_DAYS_PER_MONTH = HOURS_PER_MONTH / 24


@dataclass(frozen=True)
class Prices:
    """us-east-1 list prices (LMI_FACTS §5: the Lambda pricing page, 2026)."""

    request_usd_per_million: float = 0.20
    gb_second_usd: dict[str, float] = field(
        default_factory=lambda: {"x86_64": 0.0000166667, "arm64": 0.0000133334}
    )
    free_requests: float = 1_000_000
    free_gb_seconds: float = 400_000
    management_fee: float = 0.15


@dataclass(frozen=True)
class Profile:
    """A function's traffic and settings: 24 hourly request rates (a constant rate is 24
    equal ones), the duration of one invocation, and the knobs of both offers."""

    hourly_rps: tuple[float, ...]
    duration_ms: float
    memory_mb: int = 2048
    architecture: str = "x86_64"
    per_ee_concurrency: int | None = None
    memory_gib_per_vcpu: float = 2.0
    instance_type: str | None = None  # None: the cheapest type for this profile
    ec2_discount: float = 0.0  # Savings Plans or Reserved Instances on the instances
    lambda_savings_plan: float = 0.0  # Compute Savings Plan on classic duration (<= 0.17)
    free_tier: bool = False
    min_environments: int = models.ScalingConfig.DEFAULT_MIN
    min_instances: int = 3
    runtime: str = "python3.13"
    # CPU time of one invocation; 0 (the default): I/O-bound, slots alone set the count.
    # The fleet also keeps each environment's CPU at most TARGET_UTILIZATION busy.
    cpu_ms: float = 0.0
    # Corral's scale to zero (corral:idle-timeout-s); None: off, as on AWS.
    idle_timeout_s: float | None = None

    @classmethod
    def constant(cls, rps: float, duration_ms: float, **settings: object) -> Profile:
        return cls((rps,) * 24, duration_ms, **settings)  # type: ignore[arg-type]

    @property
    def mean_rps(self) -> float:
        return sum(self.hourly_rps) / len(self.hourly_rps)

    @property
    def monthly_requests(self) -> float:
        return sum(rps * 3600 for rps in self.hourly_rps) * _DAYS_PER_MONTH

    def scaled(self, factor: float) -> Profile:
        return replace(self, hourly_rps=tuple(r * factor for r in self.hourly_rps))

    def check(self) -> None:
        """Raises errors.InvalidRequest: a value no function could have."""
        problems = []
        if len(self.hourly_rps) != 24:
            problems.append(f"a daily shape has 24 hourly rates, not {len(self.hourly_rps)}")
        if any(not math.isfinite(r) or r < 0 for r in self.hourly_rps):
            problems.append("request rates must be finite and 0 or more")
        if not 0 < self.duration_ms <= 900_000:
            problems.append("the duration must be more than 0 and at most 900,000 ms (15 min)")
        if not 128 <= self.memory_mb <= 32_768:
            problems.append("the memory must be 128 to 32,768 MB")
        if self.architecture not in ("x86_64", "arm64"):
            problems.append(f"the architecture must be x86_64 or arm64, not {self.architecture!r}")
        if self.per_ee_concurrency is not None and not 1 <= self.per_ee_concurrency <= 1600:
            problems.append("the concurrency per environment must be 1 to 1,600")
        if self.memory_gib_per_vcpu not in (2.0, 4.0, 8.0):
            problems.append("the memory per vCPU must be 2, 4 or 8 GiB")
        if not 0 <= self.ec2_discount < 1:
            problems.append("the EC2 discount must be 0 or more and less than 1")
        if not 0 <= self.cpu_ms <= self.duration_ms:
            problems.append("the CPU time must be 0 to the duration")
        if self.idle_timeout_s is not None and not 60 <= self.idle_timeout_s <= 86_400:
            problems.append("the idle timeout (scale to zero) must be 60 to 86,400 seconds")
        if not 0 <= self.lambda_savings_plan <= 0.17:
            problems.append("a Compute Savings Plan takes 0 to 17% off Lambda duration")
        if problems:
            raise errors.InvalidRequest("; ".join(problems))


@dataclass(frozen=True)
class ClassicCost:
    requests: float
    gb_seconds: float
    request_usd: float
    duration_usd: float

    @property
    def monthly_usd(self) -> float:
        return self.request_usd + self.duration_usd


@dataclass(frozen=True)
class ManagedCost:
    instance_type: str
    hourly_price_usd: float
    environment_vcpus: int
    slots_per_environment: int
    environments_per_instance: int
    peak_environments: int
    peak_instances: int
    instance_hours: float
    compute_usd: float  # after the EC2 discount
    management_fee_usd: float  # 15% of the on-demand price, never discounted
    request_usd: float
    # With scale to zero: environments started for a waiting invocation, a month.
    cold_starts: float = 0.0

    @property
    def monthly_usd(self) -> float:
        return self.compute_usd + self.management_fee_usd + self.request_usd


@dataclass(frozen=True)
class Estimate:
    profile: Profile
    classic: ClassicCost
    managed: ManagedCost
    break_even_rps: float | None  # mean rate at which both cost the same (None: never)


def classic_cost(profile: Profile, prices: Prices = Prices()) -> ClassicCost:
    """A month of ``profile`` on classic Lambda."""
    requests = profile.monthly_requests
    gb_seconds = requests * profile.duration_ms / 1000 * profile.memory_mb / 1024
    return classic_price(requests, gb_seconds, profile, prices)


def classic_price(
    requests: float, gb_seconds: float, profile: Profile, prices: Prices = Prices()
) -> ClassicCost:
    """What ``requests`` and ``gb_seconds`` cost on classic Lambda, with the profile's
    architecture, free tier and Savings Plan."""
    billed_requests, billed_gb_s = requests, gb_seconds
    if profile.free_tier:
        billed_requests = max(0.0, requests - prices.free_requests)
        billed_gb_s = max(0.0, gb_seconds - prices.free_gb_seconds)
    duration = billed_gb_s * prices.gb_second_usd[profile.architecture]
    return ClassicCost(
        requests=requests,
        gb_seconds=gb_seconds,
        request_usd=billed_requests / 1e6 * prices.request_usd_per_million,
        duration_usd=duration * (1 - profile.lambda_savings_plan),
    )


def managed_memory_mb(profile: Profile) -> int:
    """The memory of the function's environments on Managed Instances (at least 2 GB)."""
    return max(profile.memory_mb, MANAGED_MIN_MEMORY_MB)


def _shape(profile: Profile) -> models.ManagedInstancesConfig:
    return models.ManagedInstancesConfig(
        capacity_provider_arn="",
        per_environment_max_concurrency=profile.per_ee_concurrency,
        memory_gib_per_vcpu=profile.memory_gib_per_vcpu,
    )


def managed_cost(
    profile: Profile,
    types: Sequence[models.InstanceType],
    prices: Prices = Prices(),
) -> ManagedCost:
    """The month on Managed Instances, on ``profile.instance_type`` or, if none is named,
    on the type that makes it cheapest.

    Raises:
        errors.InvalidRequest: an unknown type, or none that holds one environment.
    """
    config = _shape(profile)
    memory = managed_memory_mb(profile)
    vcpus = config.vcpus(memory)
    candidates = [t for t in types if t.architecture == profile.architecture and t.gpus == 0]
    if profile.instance_type is not None:
        named = [t for t in types if t.name == profile.instance_type]
        if not named:
            raise errors.InvalidRequest(
                f"Unknown instance type {profile.instance_type!r}; `corral cost types` "
                "lists the catalogue"
            )
        if named[0].architecture != profile.architecture:
            raise errors.InvalidRequest(
                f"{profile.instance_type} is {named[0].architecture}, the function "
                f"{profile.architecture}"
            )
        candidates = named
    usable = [t for t in candidates if slots_per_instance(t, vcpus, memory) >= 1]
    if not usable:
        # Says which size does not fit, as the fleet does.
        choose_type(candidates, vcpus, memory)
    costs = [_on(kind, profile, vcpus, prices) for kind in usable]
    return min(costs, key=lambda c: (c.monthly_usd, c.hourly_price_usd, c.instance_type))


def _on(kind: models.InstanceType, profile: Profile, vcpus: int, prices: Prices) -> ManagedCost:
    memory = managed_memory_mb(profile)
    slots = _shape(profile).concurrency(memory, profile.runtime)
    per_instance = slots_per_instance(kind, vcpus, memory)
    instance_hours = cold_starts = 0.0
    peak_environments = peak_instances = 0
    for rps in profile.hourly_rps:
        awake = 1.0
        if profile.idle_timeout_s is not None:
            asleep = math.exp(-rps * profile.idle_timeout_s)
            awake = 1.0 - asleep
            cold_starts += 3600 * rps * asleep * _DAYS_PER_MONTH
            if awake <= 0.0:
                continue
        concurrency = rps * profile.duration_ms / 1000
        busy_vcpus = rps * profile.cpu_ms / 1000
        environments = max(
            profile.min_environments,
            math.ceil(concurrency / (slots * TARGET_UTILIZATION)),
            math.ceil(busy_vcpus / (vcpus * TARGET_UTILIZATION)),
        )
        instances = max(profile.min_instances, math.ceil(environments / per_instance))
        peak_environments = max(peak_environments, environments)
        peak_instances = max(peak_instances, instances)
        instance_hours += instances * awake * _DAYS_PER_MONTH
    on_demand = instance_hours * kind.price_per_hour
    return ManagedCost(
        instance_type=kind.name,
        hourly_price_usd=kind.price_per_hour,
        environment_vcpus=vcpus,
        slots_per_environment=slots,
        environments_per_instance=per_instance,
        peak_environments=peak_environments,
        peak_instances=peak_instances,
        instance_hours=instance_hours,
        compute_usd=on_demand * (1 - profile.ec2_discount),
        management_fee_usd=on_demand * prices.management_fee,
        request_usd=profile.monthly_requests / 1e6 * prices.request_usd_per_million,
        cold_starts=cold_starts,
    )


def _gap(profile: Profile, types: Sequence[models.InstanceType], prices: Prices) -> float:
    return (
        classic_cost(profile, prices).monthly_usd - managed_cost(profile, types, prices).monthly_usd
    )


def break_even_rps(
    profile: Profile,
    types: Sequence[models.InstanceType],
    prices: Prices = Prices(),
    *,
    max_rps: float = 1_000_000.0,
) -> float | None:
    """The lowest mean request rate (same daily shape, same settings) at which classic
    Lambda costs as much as Managed Instances; ``None`` if not below ``max_rps``."""
    base = profile.mean_rps or 1.0
    shape = (
        profile.scaled(1 / base) if profile.mean_rps else replace(profile, hourly_rps=(1.0,) * 24)
    )
    # Managed Instances costs rise in steps, classic in a line: walk up a fine logarithmic
    # grid to the first rate where classic is dearer, then bisect between the two points.
    low, rate = 0.0, 0.001
    while rate <= max_rps:
        if _gap(shape.scaled(rate), types, prices) >= 0:
            high = rate
            for _ in range(40):
                middle = (low + high) / 2
                if _gap(shape.scaled(middle), types, prices) >= 0:
                    high = middle
                else:
                    low = middle
            return high
        low, rate = rate, rate * 1.1
    return None


def estimate(
    profile: Profile, types: Sequence[models.InstanceType], prices: Prices = Prices()
) -> Estimate:
    """Both offers for one profile, and the break-even rate.

    Raises:
        errors.InvalidRequest: a bad profile or an unusable instance type.
    """
    profile.check()
    return Estimate(
        profile=profile,
        classic=classic_cost(profile, prices),
        managed=managed_cost(profile, types, prices),
        break_even_rps=break_even_rps(profile, types, prices),
    )


def curve(
    profile: Profile,
    types: Sequence[models.InstanceType],
    rates: Sequence[float],
    prices: Prices = Prices(),
) -> list[tuple[float, float, float]]:
    """``(mean rps, classic USD, Managed Instances USD)`` a month, at each mean rate, for
    the profile's daily shape: the data of the chart."""
    mean = profile.mean_rps
    points = []
    for rate in rates:
        scaled = profile.scaled(rate / mean) if mean else replace(profile, hourly_rps=(rate,) * 24)
        points.append(
            (
                rate,
                classic_cost(scaled, prices).monthly_usd,
                managed_cost(scaled, types, prices).monthly_usd,
            )
        )
    return points


def chart_rates(result: Estimate, count: int = 41) -> list[float]:
    """Mean rates to draw: from 0 to twice the larger of the break-even and the profile."""
    top = max(2 * (result.break_even_rps or 0.0), 2 * result.profile.mean_rps, 1.0)
    return [top * i / (count - 1) for i in range(count)]


def summary(result: Estimate, points: Sequence[tuple[float, float, float]]) -> dict[str, object]:
    """What ``corral cost estimate --json`` prints and the web console reads."""
    classic, managed, profile = result.classic, result.managed, result.profile
    return {
        "classic": {
            "monthlyUsd": round(classic.monthly_usd, 2),
            "requests": round(classic.requests),
            "gbSeconds": round(classic.gb_seconds, 1),
            "requestUsd": round(classic.request_usd, 2),
            "durationUsd": round(classic.duration_usd, 2),
        },
        "managedInstances": {
            "monthlyUsd": round(managed.monthly_usd, 2),
            "instances": managed.peak_instances,
            "instanceType": managed.instance_type,
            "instanceHours": round(managed.instance_hours, 1),
            "hourlyPriceUsd": managed.hourly_price_usd,
            "computeUsd": round(managed.compute_usd, 2),
            "managementFeeUsd": round(managed.management_fee_usd, 2),
            "requestUsd": round(managed.request_usd, 2),
            "environments": managed.peak_environments,
            "environmentVcpus": managed.environment_vcpus,
            "environmentMemoryMb": managed_memory_mb(profile),
            "slotsPerEnvironment": managed.slots_per_environment,
            "environmentsPerInstance": managed.environments_per_instance,
            "coldStartsPerMonth": round(managed.cold_starts),
        },
        "breakEvenRps": None if result.break_even_rps is None else round(result.break_even_rps, 3),
        "cheaper": "classic" if classic.monthly_usd < managed.monthly_usd else "managedInstances",
        "profile": {
            "meanRps": round(profile.mean_rps, 3),
            "hourlyRps": list(profile.hourly_rps),
            "durationMs": profile.duration_ms,
            "cpuMs": profile.cpu_ms,
            "memoryMb": profile.memory_mb,
            "architecture": profile.architecture,
            "perExecutionEnvironmentMaxConcurrency": managed.slots_per_environment,
            "memoryGiBPerVCpu": profile.memory_gib_per_vcpu,
            "ec2Discount": profile.ec2_discount,
            "lambdaSavingsPlan": profile.lambda_savings_plan,
            "freeTier": profile.free_tier,
            "idleTimeoutS": profile.idle_timeout_s,
        },
        "chart": {
            "rps": [round(p[0], 4) for p in points],
            "classicUsd": [round(p[1], 2) for p in points],
            "managedInstancesUsd": [round(p[2], 2) for p in points],
        },
    }

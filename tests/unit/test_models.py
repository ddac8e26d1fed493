"""``corral.core.models``: derived values of the configuration dataclasses."""

from __future__ import annotations

from corral.core import models
from tests.factories import function_spec

PROVIDER = "arn:aws:lambda:us-east-1:123456789012:capacity-provider:pool-1"


def test_vcpus_are_memory_over_the_ratio_rounded_up_and_at_least_one() -> None:
    two = models.ManagedInstancesConfig(PROVIDER, memory_gib_per_vcpu=2.0)
    four = models.ManagedInstancesConfig(PROVIDER, memory_gib_per_vcpu=4.0)
    assert [two.vcpus(mb) for mb in (128, 2048, 2049, 8192)] == [1, 1, 2, 4]
    assert four.vcpus(8192) == 2


def test_default_concurrency_per_vcpu_is_16_for_python_64_for_node_and_32_otherwise() -> None:
    config = models.ManagedInstancesConfig(PROVIDER)
    assert config.concurrency(4096, "python3.12") == 32
    assert config.concurrency(4096, "nodejs22.x") == 128
    assert config.concurrency(4096, "java21") == 64


def test_a_configured_concurrency_wins_over_the_default() -> None:
    config = models.ManagedInstancesConfig(PROVIDER, per_environment_max_concurrency=5)
    assert config.concurrency(8192, "python3.12") == 5


def test_the_capacity_provider_name_is_the_last_part_of_its_arn() -> None:
    assert models.ManagedInstancesConfig(PROVIDER).capacity_provider_name == "pool-1"


def _spec(managed: models.ManagedInstancesConfig | None) -> models.FunctionSpec:
    return function_spec(memory_size_mb=2048, managed=managed)


def test_a_classic_function_serves_one_invocation_per_environment() -> None:
    spec = _spec(None)
    assert not spec.is_managed
    assert spec.concurrency == 1


def test_a_managed_function_serves_its_configured_concurrency() -> None:
    spec = _spec(models.ManagedInstancesConfig(PROVIDER))
    assert spec.is_managed
    assert spec.concurrency == 16


def test_scaling_config_defaults_to_a_minimum_of_three_and_is_active() -> None:
    config = models.ScalingConfig()
    assert config.effective_min == 3
    assert not config.deactivated
    assert models.ScalingConfig(min_environments=0).effective_min == 0


def test_scaling_config_is_deactivated_only_when_min_and_max_are_zero() -> None:
    assert models.ScalingConfig(0, 0).deactivated
    assert not models.ScalingConfig(0, 5).deactivated
    assert not models.ScalingConfig(None, 0).deactivated


def test_is_published_is_true_for_numbers_and_latest_published() -> None:
    cases = {"1": True, "42": True, "$LATEST.PUBLISHED": True, "$LATEST": False, "live": False}
    assert {v: models.is_published(v) for v in cases} == cases


def test_a_version_ref_prints_as_function_colon_version() -> None:
    assert str(models.VersionRef("orders", "3")) == "orders:3"

"""``corral.store.codec``: the JSON the store keeps for specs and capacity providers."""

from __future__ import annotations

import json

import pytest

from corral.core import models
from corral.store import codec
from tests.factories import function_spec

MANAGED = models.ManagedInstancesConfig(
    capacity_provider_arn="arn:aws:lambda:us-east-1:123456789012:capacity-provider:pool",
    per_environment_max_concurrency=8,
    memory_gib_per_vcpu=4.0,
)


def _spec(managed: models.ManagedInstancesConfig | None) -> models.FunctionSpec:
    return function_spec(
        code_size=1234,
        memory_size_mb=2048,
        timeout_s=60,
        description="orders",
        environment={"STAGE": "prod", "EMPTY": ""},
        architectures=("arm64",),
        ephemeral_storage_mb=1024,
        logging=models.LoggingConfig("JSON", "DEBUG", "WARN", "/aws/lambda/orders"),
        managed=managed,
        tracing_mode="Active",
    )


@pytest.mark.parametrize("managed", [None, MANAGED], ids=["classic", "managed"])
def test_a_function_spec_survives_a_round_trip(
    managed: models.ManagedInstancesConfig | None,
) -> None:
    spec = _spec(managed)
    again = codec.spec_from_json(codec.spec_to_json(spec))
    assert again == spec
    assert again.is_managed is (managed is not None)
    assert isinstance(again.architectures, tuple)


def test_the_spec_encoding_is_stable_json_with_sorted_keys() -> None:
    text = codec.spec_to_json(_spec(MANAGED))
    assert text == codec.spec_to_json(_spec(MANAGED))
    data = json.loads(text)
    assert list(data) == sorted(data)
    assert data["managed"]["per_environment_max_concurrency"] == 8


def test_a_capacity_provider_survives_a_round_trip() -> None:
    provider = models.CapacityProvider(
        name="pool",
        arn="arn:aws:lambda:us-east-1:123456789012:capacity-provider:pool",
        state=models.CapacityProviderState.ACTIVE,
        subnet_ids=("subnet-1", "subnet-2"),
        security_group_ids=("sg-1",),
        operator_role_arn="arn:aws:iam::123456789012:role/op",
        last_modified_s=1_700_000_000.5,
        requirements=models.InstanceRequirements(("arm64",), ("m7g.large",), ()),
        max_vcpu_count=64,
        scaling_mode=models.ScalingMode.MANUAL,
        scaling_policies=(
            models.ScalingPolicy("LambdaCapacityProviderAverageCPUUtilization", 60.0),
        ),
        kms_key_arn="arn:aws:kms:us-east-1:123456789012:key/k",
        propagate_tags_mode="Explicit",
        propagate_explicit_tags={"team": "x"},
        system_log_level="INFO",
        log_group="/aws/lambda/capacity",
    )
    text = codec.provider_to_json(provider)
    # The name, state and modification time live in their own columns.
    assert not {"name", "state", "last_modified_s"} & set(json.loads(text))
    again = codec.provider_from_json("pool", "Active", 1_700_000_000.5, text)
    assert again == provider
    assert again.scaling_mode is models.ScalingMode.MANUAL

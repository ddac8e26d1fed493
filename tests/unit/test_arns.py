"""``corral.core.arns``: FunctionName parsing, qualifiers, capacity provider names, ARNs."""

from __future__ import annotations

import pytest

from corral.core import arns, errors

HOME = arns.Partition(region="us-east-1", account_id="123456789012")
ARN = "arn:aws:lambda:us-east-1:123456789012:function"


def test_names_partial_arns_and_full_arns_split_into_name_and_qualifier() -> None:
    expected = {
        "orders": ("orders", None),
        "orders-v2_beta": ("orders-v2_beta", None),
        "orders:3": ("orders", "3"),
        "orders:live": ("orders", "live"),
        "orders:$LATEST": ("orders", "$LATEST"),
        "orders:$LATEST.PUBLISHED": ("orders", "$LATEST.PUBLISHED"),
        "123456789012:function:orders": ("orders", None),
        "123456789012:function:orders:7": ("orders", "7"),
        f"{ARN}:orders": ("orders", None),
        f"{ARN}:orders:live": ("orders", "live"),
    }
    assert {value: arns.parse_function_name(value, HOME) for value in expected} == expected


def test_a_name_of_exactly_64_characters_is_accepted() -> None:
    name = "a" * 64
    assert arns.parse_function_name(name, HOME) == (name, None)


def test_a_name_over_64_characters_is_refused_with_the_aws_length_message() -> None:
    name = "a" * 65
    with pytest.raises(errors.InvalidRequest) as info:
        arns.parse_function_name(name, HOME)
    assert type(info.value) is errors.InvalidRequest
    assert info.value.message == (
        f"1 validation error detected: Value '{name}' at 'functionName' failed to satisfy "
        "constraint: Member must have length less than or equal to 64"
    )


@pytest.mark.parametrize(
    "value",
    ["", "bad name", "orders:3:4", "arn:aws:s3:::bucket"],
)
def test_values_that_break_the_name_pattern_are_validation_errors(value: str) -> None:
    with pytest.raises(errors.Validation) as info:
        arns.parse_function_name(value, HOME)
    message = info.value.message
    assert message.startswith(f"1 validation error detected: Value '{value}' at 'functionName'")
    assert "Member must satisfy regular expression pattern: " in message


def test_a_huge_bad_value_is_shown_cut_to_256_characters() -> None:
    value = "!" * 1000
    with pytest.raises(errors.Validation) as info:
        arns.parse_function_name(value, HOME)
    assert f"Value '{'!' * 256}...' at 'functionName'" in info.value.message


def test_a_qualifier_is_refused_where_the_operation_takes_none() -> None:
    assert arns.parse_function_name("orders", HOME, allow_qualifier=False) == ("orders", None)
    with pytest.raises(errors.Validation):
        arns.parse_function_name("orders:3", HOME, allow_qualifier=False)


@pytest.mark.parametrize(
    "value",
    [
        "arn:aws:lambda:us-east-1:999999999999:function:orders",
        "999999999999:function:orders",
    ],
)
def test_an_arn_of_another_account_is_access_denied(value: str) -> None:
    with pytest.raises(errors.AccessDenied):
        arns.parse_function_name(value, HOME)


def test_an_arn_of_another_region_is_not_found_and_names_both_regions() -> None:
    with pytest.raises(errors.NotFound) as info:
        arns.parse_function_name("arn:aws:lambda:eu-west-1:123456789012:function:orders", HOME)
    assert "eu-west-1" in info.value.message
    assert "us-east-1" in info.value.message


def test_a_trailing_colon_with_no_qualifier_is_refused() -> None:
    with pytest.raises(errors.Validation):
        arns.parse_function_name("orders:", HOME)


def test_reconcile_qualifier_takes_whichever_is_given() -> None:
    assert arns.reconcile_qualifier(None, None) is None
    assert arns.reconcile_qualifier("3", None) == "3"
    assert arns.reconcile_qualifier(None, "$LATEST") == "$LATEST"
    assert arns.reconcile_qualifier("live", "live") == "live"


def test_reconcile_qualifier_refuses_two_different_qualifiers() -> None:
    with pytest.raises(errors.InvalidRequest) as info:
        arns.reconcile_qualifier("3", "4")
    assert type(info.value) is errors.InvalidRequest
    assert "does not match the specified qualifier" in info.value.message


def test_reconcile_qualifier_refuses_a_malformed_qualifier_parameter() -> None:
    with pytest.raises(errors.Validation) as info:
        arns.reconcile_qualifier(None, "bad qualifier")
    assert "Value 'bad qualifier' at 'qualifier' failed to satisfy constraint" in (
        info.value.message
    )


def test_capacity_provider_name_accepts_a_name_or_an_arn_of_this_partition() -> None:
    assert arns.capacity_provider_name("pool-1", HOME) == "pool-1"
    arn = HOME.capacity_provider_arn("pool-1")
    assert arns.capacity_provider_name(arn, HOME) == "pool-1"


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:lambda:us-east-1:999999999999:capacity-provider:pool-1",
        "arn:aws:lambda:eu-west-1:123456789012:capacity-provider:pool-1",
    ],
)
def test_a_capacity_provider_arn_elsewhere_is_not_found(arn: str) -> None:
    with pytest.raises(errors.NotFound):
        arns.capacity_provider_name(arn, HOME)


def test_a_malformed_capacity_provider_name_is_a_validation_error() -> None:
    with pytest.raises(errors.Validation) as info:
        arns.capacity_provider_name("no spaces allowed", HOME)
    assert "at 'capacityProviderName'" in info.value.message


def test_partition_builds_function_and_capacity_provider_arns() -> None:
    assert HOME.function_arn("orders") == f"{ARN}:orders"
    assert HOME.function_arn("orders", "live") == f"{ARN}:orders:live"
    assert HOME.capacity_provider_arn("pool") == (
        "arn:aws:lambda:us-east-1:123456789012:capacity-provider:pool"
    )
    assert HOME.role_placeholder() == "arn:aws:iam::123456789012:role/corral-function"


def test_a_built_function_arn_parses_back_to_its_name_and_qualifier() -> None:
    assert arns.parse_function_name(HOME.function_arn("orders", "7"), HOME) == ("orders", "7")

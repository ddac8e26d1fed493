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


def test_a_name_over_64_characters_is_refused_only_when_creating() -> None:
    # Recorded (LocalStack's AWS snapshots): test_function_arns / long_function_name_exc, and
    # GetFunction of a 65-character name is simply not found.
    name = "a" * 65
    assert arns.parse_function_name(name, HOME) == (name, None)
    with pytest.raises(errors.InvalidRequest) as info:
        arns.parse_function_name(name, HOME, allow_qualifier=False, creating=True)
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
    assert info.value.message == (
        f"1 validation error detected: Value '{value}' at 'functionName' failed to satisfy "
        f"constraint: Member must satisfy regular expression pattern: {arns.GET_NAME_PATTERN}"
    )


def test_creating_checks_the_narrower_pattern_and_the_length_of_an_arn() -> None:
    value = f"{ARN}:" + "b" * 120 + ".x"
    with pytest.raises(errors.Validation) as info:
        arns.parse_function_name(value, HOME, allow_qualifier=False, creating=True)
    assert info.value.message == (
        f"2 validation errors detected: Value '{value}' at 'functionName' failed to satisfy "
        "constraint: Member must have length less than or equal to 140; "
        f"Value '{value}' at 'functionName' failed to satisfy constraint: Member must satisfy "
        f"regular expression pattern: {arns.NAME_PATTERN}"
    )
    assert arns.parse_function_name("my.fn", HOME) == ("my.fn", None)  # a Get may name it


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
    assert info.value.message == (
        "Functions from 'eu-west-1' are not reachable in this region ('us-east-1')"
    )


def test_a_trailing_colon_with_no_qualifier_is_refused() -> None:
    with pytest.raises(errors.Validation):
        arns.parse_function_name("orders:", HOME)


def test_an_incomplete_arn_names_a_function_called_function() -> None:
    assert arns.parse_function_name(ARN, HOME) == ("function", None)


def test_the_qualifier_comes_from_the_name_or_the_parameter() -> None:
    assert arns.parse_function_name("orders", HOME, qualifier="$LATEST") == (
        "orders",
        "$LATEST",
    )
    assert arns.parse_function_name("orders:live", HOME, qualifier="live") == ("orders", "live")
    assert arns.parse_function_name("orders", HOME, qualifier="$latest") == ("orders", "$latest")


def test_two_different_qualifiers_are_refused() -> None:
    with pytest.raises(errors.InvalidRequest) as info:
        arns.parse_function_name("orders:3", HOME, qualifier="4")
    assert type(info.value) is errors.InvalidRequest
    assert info.value.message == (
        "The derived qualifier from the function name does not match the specified qualifier."
    )


def test_a_bad_qualifier_and_a_bad_name_are_reported_together() -> None:
    with pytest.raises(errors.Validation) as info:
        arns.parse_function_name("bad name", HOME, qualifier="q" * 129)
    message = info.value.message
    assert message.startswith("2 validation errors detected: Value '" + "q" * 129 + "' at ")
    assert "Member must have length less than or equal to 128; Value 'bad name'" in message
    with pytest.raises(errors.Validation) as single:
        arns.parse_function_name("orders", HOME, qualifier="bad qualifier")
    assert single.value.message == (
        "1 validation error detected: Value 'bad qualifier' at 'qualifier' failed to satisfy "
        f"constraint: Member must satisfy regular expression pattern: {arns.QUALIFIER_PATTERN}"
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

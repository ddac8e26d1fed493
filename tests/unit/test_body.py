"""``corral.api.body``: typed field access with AWS's validation wording, and JSON decoding."""

from __future__ import annotations

import json
from typing import Any

import pytest

from corral.api import body
from corral.core import errors


def _message(value: str, field: str, constraint: str) -> str:
    return (
        f"1 validation error detected: Value {value} at '{field}' failed to satisfy "
        f"constraint: {constraint}"
    )


def _refusal(call: Any) -> str:
    with pytest.raises(errors.Validation) as info:
        call()
    return info.value.message


def test_fields_are_read_with_their_types() -> None:
    data = {
        "FunctionName": "orders",
        "MemorySize": 256,
        "TargetValue": 50,
        "Publish": True,
        "Layers": ["a", "b"],
        "Tags": {"team": "x"},
    }
    b = body.Body(data)
    assert b.string("FunctionName") == "orders"
    assert b.integer("MemorySize") == 256
    number = b.number("TargetValue")
    assert number == 50.0 and isinstance(number, float)
    assert b.boolean("Publish") is True
    assert b.string_list("Layers") == ["a", "b"]
    assert b.string_map("Tags") == {"team": "x"}


def test_absent_and_null_optional_fields_read_as_none() -> None:
    b = body.Body({"Description": None})
    assert not b.has("Description")
    assert b.string("Description") is None
    assert b.integer("Timeout") is None
    assert b.number("Target") is None
    assert b.boolean("Publish") is None
    assert b.obj("VpcConfig") is None
    assert b.string_list("Layers") is None
    assert b.string_map("Tags") is None
    assert b.obj_list("Policies") is None


def test_a_missing_required_field_is_reported_as_null() -> None:
    b = body.Body({})
    assert _refusal(lambda: b.string("Role", required=True)) == _message(
        "null", "role", "Member must not be null"
    )
    assert "at 'memorySize'" in _refusal(lambda: b.integer("MemorySize", required=True))
    assert "at 'vpcConfig'" in _refusal(lambda: b.obj("VpcConfig", required=True))


@pytest.mark.parametrize(
    ("method", "value", "constraint", "shown"),
    [
        ("string", 5, "Member must be a string", "'5'"),
        ("integer", "5", "Member must be an integer", "'5'"),
        ("integer", True, "Member must be an integer", "'true'"),
        ("number", "x", "Member must be a number", "'x'"),
        ("boolean", "yes", "Member must be a boolean", "'yes'"),
        ("obj", [1], "Member must be a structure", "'[1]'"),
        ("string_list", ["a", 1], "Member must be a list of strings", "'[\"a\", 1]'"),
        ("string_map", {"a": 1}, "Member must be a map of strings to strings", "'{\"a\": 1}'"),
        ("obj_list", [1], "Member must be a list of structures", "'[1]'"),
    ],
)
def test_a_value_of_the_wrong_type_is_refused_with_the_aws_sentence(
    method: str, value: object, constraint: str, shown: str
) -> None:
    b = body.Body({"SomeField": value})
    message = _refusal(lambda: getattr(b, method)("SomeField"))
    assert message == _message(shown, "someField", constraint)


def test_string_length_pattern_and_enum_constraints_use_aws_wording() -> None:
    b = body.Body({"Handler": "abc"})
    assert _refusal(lambda: b.string("Handler", min_len=5)) == _message(
        "'abc'", "handler", "Member must have length greater than or equal to 5"
    )
    assert _refusal(lambda: b.string("Handler", max_len=2)) == _message(
        "'abc'", "handler", "Member must have length less than or equal to 2"
    )
    assert _refusal(lambda: b.string("Handler", pattern="[0-9]+")) == _message(
        "'abc'", "handler", "Member must satisfy regular expression pattern: [0-9]+"
    )
    assert _refusal(lambda: b.string("Handler", enum=("Zip", "Image"))) == _message(
        "'abc'", "handler", "Member must satisfy enum value set: [Zip, Image]"
    )
    assert b.string("Handler", min_len=3, max_len=3, pattern="[a-c]+", enum=("abc",)) == "abc"


def test_integer_and_number_ranges_are_inclusive_and_worded_like_aws() -> None:
    b = body.Body({"MemorySize": 64, "Timeout": 901, "Target": 0.5})
    assert _refusal(lambda: b.integer("MemorySize", low=128, high=10240)) == _message(
        "'64'", "memorySize", "Member must have value greater than or equal to 128"
    )
    assert _refusal(lambda: b.integer("Timeout", low=1, high=900)) == _message(
        "'901'", "timeout", "Member must have value less than or equal to 900"
    )
    assert _refusal(lambda: b.number("Target", low=1.0)) == _message(
        "'0.5'", "target", "Member must have value greater than or equal to 1"
    )
    assert body.Body({"T": 900}).integer("T", low=1, high=900) == 900
    assert body.Body({"T": 1}).integer("T", low=1, high=900) == 1


def test_a_fractional_bound_is_shown_as_written() -> None:
    b = body.Body({"Ratio": 9})
    assert "less than or equal to 8.5" in _refusal(lambda: b.number("Ratio", high=8.5))


def test_string_list_item_count_and_item_pattern_are_checked() -> None:
    b = body.Body({"SubnetIds": ["a", "b", "c"]})
    assert _refusal(lambda: b.string_list("SubnetIds", max_items=2)) == _message(
        "'[a, b, c]'", "subnetIds", "Member must have length less than or equal to 2"
    )
    assert _refusal(lambda: b.string_list("SubnetIds", min_items=4)) == _message(
        "'[a, b, c]'", "subnetIds", "Member must have length greater than or equal to 4"
    )
    assert _refusal(lambda: b.string_list("SubnetIds", item_pattern="[ab]")) == _message(
        "'[a, b, c]'",
        "subnetIds",
        "Member must satisfy constraint: [Member must satisfy regular expression pattern: [ab]]",
    )


def test_nested_structures_report_dotted_lower_camel_paths() -> None:
    b = body.Body({"VpcConfig": {"SubnetIds": "subnet-1"}})
    vpc = b.obj("VpcConfig")
    assert vpc is not None
    assert vpc.path("SubnetIds") == "vpcConfig.subnetIds"
    assert "at 'vpcConfig.subnetIds'" in _refusal(lambda: vpc.string_list("SubnetIds"))


def test_members_of_a_structure_list_are_numbered_from_one() -> None:
    b = body.Body({"ScalingPolicies": [{"TargetValue": 50}, {"TargetValue": "high"}]})
    policies = b.obj_list("ScalingPolicies", max_items=10)
    assert policies is not None and len(policies) == 2
    assert policies[0].number("TargetValue") == 50.0
    assert "at 'scalingPolicies.2.member.targetValue'" in _refusal(
        lambda: policies[1].number("TargetValue")
    )


def test_structure_list_item_count_is_checked() -> None:
    b = body.Body({"Policies": [{}, {}]})
    assert "Member must have length less than or equal to 1" in _refusal(
        lambda: b.obj_list("Policies", max_items=1)
    )
    assert "Member must have length greater than or equal to 3" in _refusal(
        lambda: b.obj_list("Policies", min_items=3)
    )


def test_a_long_refused_value_is_cut_to_256_characters() -> None:
    b = body.Body({"Description": "x" * 300})
    assert f"Value '{'x' * 256}...' at 'description'" in _refusal(
        lambda: b.string("Description", max_len=256)
    )


def test_camel_lowers_only_the_first_letter() -> None:
    assert body.camel("MemorySize") == "memorySize"
    assert body.camel("VPCConfig") == "vPCConfig"
    assert body.camel("") == ""


@pytest.mark.parametrize("raw", [b"", b"  \n\t "])
def test_an_empty_body_is_an_empty_object(raw: bytes) -> None:
    assert body.parse_json_object(raw) == {}


def test_a_json_object_body_is_decoded() -> None:
    assert body.parse_json_object(b'{"a": [1, {"b": null}]}') == {"a": [1, {"b": None}]}


@pytest.mark.parametrize("raw", [b"[]", b'"text"', b"null"])
def test_a_body_that_is_not_an_object_is_invalid_content(raw: bytes) -> None:
    with pytest.raises(errors.InvalidContent, match="expected an object"):
        body.parse_json_object(raw)


@pytest.mark.parametrize("raw", [b"{", b"not json", b'{"a": 1} trailing'])
def test_a_body_that_is_not_json_is_invalid_content(raw: bytes) -> None:
    with pytest.raises(errors.InvalidContent, match="Could not parse request body into json"):
        body.parse_json_object(raw)


def _nested(containers: int) -> bytes:
    """An object holding lists, ``containers`` levels deep in all."""
    inner: Any = []
    for _ in range(containers - 2):
        inner = [inner]
    return json.dumps({"a": inner}).encode()


def test_nesting_up_to_32_levels_is_accepted() -> None:
    assert body.parse_json_object(_nested(32))["a"]


def test_nesting_deeper_than_32_levels_is_invalid_content() -> None:
    with pytest.raises(errors.InvalidContent, match="nested too deeply"):
        body.parse_json_object(_nested(33))


def test_nesting_deep_enough_to_break_the_parser_is_invalid_content() -> None:
    raw = b'{"a": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"
    with pytest.raises(errors.InvalidContent):
        body.parse_json_object(raw)

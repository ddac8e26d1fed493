"""CloudFormation intrinsics as ``corral deploy`` resolves them (pure functions)."""

from __future__ import annotations

from typing import Any

import pytest

from corral.core import errors
from corral.deploy.intrinsics import Known, Pending, evaluate_conditions, references, resolve

PSEUDO = {"AWS::Region": "us-east-1", "AWS::AccountId": "123456789012", "AWS::StackName": "s"}


def known(**extra: Any) -> Known:
    base: dict[str, Any] = {
        "parameters": {"Stage": "prod", "Sizes": ["a", "b"]},
        "pseudo": PSEUDO,
        "conditions": {"IsProd": True},
        "mappings": {"M": {"prod": {"Memory": 2048}}},
        "refs": {"Fn": "s-Fn"},
        "attributes": {"Fn": {"Arn": "arn:aws:lambda:us-east-1:123456789012:function:s-Fn"}},
        "resources": frozenset({"Fn", "Later"}),
    }
    base.update(extra)
    return Known(**base)


def test_refs_attributes_and_substitutions() -> None:
    k = known()
    assert resolve({"Ref": "Stage"}, k) == "prod"
    assert resolve({"Ref": "AWS::Region"}, k) == "us-east-1"
    assert resolve({"Fn::GetAtt": ["Fn", "Arn"]}, k).endswith(":function:s-Fn")
    assert resolve({"Fn::GetAtt": "Fn.Arn"}, k).endswith(":function:s-Fn")
    assert resolve({"Fn::Sub": "${AWS::StackName}-${Stage}-${Fn}-${!Keep}"}, k) == (
        "s-prod-s-Fn-${Keep}"
    )
    assert resolve({"Fn::Sub": ["${A}/${Fn.Arn}", {"A": {"Ref": "Stage"}}]}, k).startswith(
        "prod/arn:aws:lambda"
    )
    assert resolve({"Fn::Join": ["-", [{"Ref": "Stage"}, "x", 1]]}, k) == "prod-x-1"
    assert resolve({"Fn::Select": [1, {"Ref": "Sizes"}]}, k) == "b"
    assert resolve({"Fn::Split": [",", "a,b"]}, k) == ["a", "b"]
    assert resolve({"Fn::FindInMap": ["M", {"Ref": "Stage"}, "Memory"]}, k) == 2048
    assert resolve({"Fn::Base64": "hi"}, k) == "aGk="


def test_conditions_and_no_value() -> None:
    k = known()
    value = {
        "A": {"Fn::If": ["IsProd", 1, 2]},
        "B": {"Fn::If": ["IsProd", {"Ref": "AWS::NoValue"}, 2]},
        "L": [1, {"Ref": "AWS::NoValue"}, 3],
    }
    assert resolve(value, k) == {"A": 1, "L": [1, 3]}
    decided = evaluate_conditions(
        {
            "IsProd": {"Fn::Equals": [{"Ref": "Stage"}, "prod"]},
            "NotProd": {"Fn::Not": [{"Condition": "IsProd"}]},
            "Both": {"Fn::And": [{"Condition": "IsProd"}, {"Condition": "NotProd"}]},
            "Either": {"Fn::Or": [{"Condition": "NotProd"}, {"Condition": "IsProd"}]},
        },
        k,
    )
    assert decided == {"IsProd": True, "NotProd": False, "Both": False, "Either": True}
    with pytest.raises(errors.TemplateError, match="refers to itself"):
        evaluate_conditions({"Loop": {"Fn::Not": [{"Condition": "Loop"}]}}, k)


def test_what_cannot_be_resolved_yet_or_at_all() -> None:
    k = known()
    with pytest.raises(Pending) as pending:
        resolve({"Fn::GetAtt": ["Later", "Arn"]}, k)
    assert pending.value.logical_id == "Later"
    with pytest.raises(Pending):
        resolve({"Fn::Sub": "${Later}"}, k)
    for bad, message in [
        ({"Ref": "Nobody"}, "no parameter or resource"),
        ({"Fn::ImportValue": "x"}, "not supported by corral deploy"),
        ({"Fn::GetAtt": ["Fn", "Nope"]}, "Corral knows Arn"),
        ({"Fn::If": ["Unknown", 1, 2]}, "not in the template's Conditions"),
        ({"Fn::Select": [5, ["a"]]}, "no item 5"),
        ({"Fn::Join": ["-", [{"a": 1}]]}, "is not a string"),
        ({"Fn::FindInMap": ["M", "dev", "Memory"]}, "Mappings has no M.dev.Memory"),
    ]:
        with pytest.raises(errors.TemplateError, match=message):
            resolve(bad, k)


def test_references_name_what_a_value_depends_on() -> None:
    value = {
        "Role": {"Fn::GetAtt": ["Role", "Arn"]},
        "Name": {"Fn::Sub": ["${Fn}-${X}-${Bucket.Arn}", {"X": {"Ref": "Stage"}}]},
        "List": [{"Ref": "Queue"}],
    }
    assert references(value) == {"Role", "Fn", "Bucket", "Stage", "Queue"}


def test_malformed_intrinsics_say_what_they_take() -> None:
    k = known()
    for bad, message in [
        ({"Ref": ["x"]}, "Ref takes a name"),
        ({"Fn::Join": ["-", "notalist"]}, "takes a list of values"),
        ({"Fn::If": ["IsProd", 1]}, "Fn::If takes"),
        ({"Fn::FindInMap": ["M", "prod"]}, "Fn::FindInMap takes"),
        ({"Fn::Join": "x"}, "takes a list of two values"),
        ({"Fn::GetAtt": ["Fn"]}, "Fn::GetAtt takes"),
        ({"Fn::GetAtt": ["Nobody", "Arn"]}, "no resource has that name"),
        ({"Fn::Sub": ["${A}", ["not", "a", "map"]]}, r"Fn::Sub takes \[text"),
        ({"Fn::Sub": [1, {}]}, "Fn::Sub takes a string"),
        ({"Fn::And": []}, "takes a list of conditions"),
        ({"Fn::Or": ["yes"]}, "takes conditions"),
    ]:
        with pytest.raises(errors.TemplateError, match=message):
            resolve(bad, k)
    assert resolve({"Fn::Join": ["", [True, False]]}, k) == "truefalse"
    assert resolve({"Fn::Not": [{"Condition": "IsProd"}]}, k) is False
    with pytest.raises(errors.TemplateError, match="not in the template's Conditions"):
        evaluate_conditions({"A": {"Condition": "B"}}, k)

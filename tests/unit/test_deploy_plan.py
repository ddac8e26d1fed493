"""What a deploy plans (``corral.deploy.plan``, pure) and how templates are read
(``corral.deploy.template``)."""

from __future__ import annotations

from typing import Any

import pytest

from corral.core import errors
from corral.deploy import template
from corral.deploy.plan import Action, Recorded, desired, order, plan


def cfn(resources: dict[str, Any]) -> dict[str, Any]:
    return {"Resources": resources}


FN = "AWS::Lambda::Function"


def test_resources_come_after_what_they_refer_to_and_deletes_go_dependents_first() -> None:
    resources, skipped = desired(
        cfn(
            {
                "Alias": {
                    "Type": "AWS::Lambda::Alias",
                    "Properties": {
                        "FunctionName": {"Ref": "Fn"},
                        "FunctionVersion": {"Fn::GetAtt": "V.Version"},
                    },
                },
                "V": {
                    "Type": "AWS::Lambda::Version",
                    "Properties": {"FunctionName": {"Ref": "Fn"}},
                    "DeletionPolicy": "Retain",
                },
                "Fn": {"Type": FN, "Properties": {"Role": {"Fn::GetAtt": ["Role", "Arn"]}}},
                "Role": {"Type": "AWS::IAM::Role"},
                "Queue": {"Type": "AWS::SQS::Queue"},
                "Off": {"Type": FN, "Condition": "No"},
                "Later": {"Type": FN, "DependsOn": "Alias"},
            }
        ),
        {"No": False},
    )
    assert skipped == [("Queue", "AWS::SQS::Queue")]
    ids = [r.logical_id for r in order(resources)]
    assert ids.index("Role") < ids.index("Fn") < ids.index("V") < ids.index("Alias")
    assert ids.index("Alias") < ids.index("Later") and "Off" not in ids
    recorded = {
        "Old": Recorded("Old", FN, "s-Old", {}),
        "OldV": Recorded("OldV", "AWS::Lambda::Version", "arn:1", {}, retain=True),
        "Fn": Recorded("Fn", FN, "s-Fn", {}),
    }
    steps = plan(resources, skipped, recorded, {"Fn": False}).steps
    actions = {s.logical_id: s.action for s in steps}
    assert actions["Fn"] is Action.KEEP and actions["Role"] is Action.CREATE
    assert [s.logical_id for s in steps if s.action is Action.DELETE] == ["OldV", "Old"]
    assert "Retain" in next(s.why for s in steps if s.logical_id == "OldV")


def test_what_a_plan_refuses() -> None:
    resources, _ = desired(
        cfn({"A": {"Type": FN, "DependsOn": "B"}, "B": {"Type": FN, "DependsOn": ["A"]}}), {}
    )
    with pytest.raises(errors.TemplateError, match="cycle"):
        order(resources)
    resources, _ = desired(cfn({"A": {"Type": "AWS::Lambda::Alias"}}), {})
    with pytest.raises(errors.TemplateError, match="give the new resource another logical id"):
        plan(resources, [], {"A": Recorded("A", FN, "x", {})}, {})
    with pytest.raises(errors.TemplateError, match="not in Conditions"):
        desired(cfn({"A": {"Type": FN, "Condition": "Missing"}}), {})


def test_templates_and_parameters() -> None:
    text = (
        "Resources:\n  F:\n    Type: X\n    Properties:\n      A: !GetAtt R.Arn\n"
        "      B: !Sub '${X}'\n      C: !Join [',', [a, b]]\n      D: !If [C, {k: 1}, 2]\n"
    )
    data = template.parse(text, "t.yaml")
    props = data["Resources"]["F"]["Properties"]
    assert props["A"] == {"Fn::GetAtt": ["R", "Arn"]} and props["B"] == {"Fn::Sub": "${X}"}
    assert props["C"] == {"Fn::Join": [",", ["a", "b"]]}
    assert props["D"] == {"Fn::If": ["C", {"k": 1}, 2]}
    assert template.parse('{"Resources": {"F": {"Type": "X"}}}', "t.json")["Resources"]
    with pytest.raises(errors.TemplateError, match="has no Type"):
        template.parse("Resources:\n  F: {}\n", "t.yaml")
    assert template.is_sam({"Transform": ["AWS::Serverless-2016-10-31"]})
    declared = {
        "Parameters": {
            "Stage": {"Type": "String", "AllowedValues": ["dev", "prod"], "Default": "dev"},
            "Name": {"Type": "String", "AllowedPattern": "[a-z]+"},
            "Size": {"Type": "Number", "Default": 3},
            "Subnets": {"Type": "CommaDelimitedList", "Default": "a, b"},
        }
    }
    values = template.parameter_values(declared, {"Name": "shop"})
    assert values == {"Stage": "dev", "Name": "shop", "Size": "3", "Subnets": ["a", "b"]}
    for overrides, message in [
        ({}, "has no Default"),
        ({"Name": "Shop"}, "must match"),
        ({"Name": "x", "Stage": "qa"}, "must be one of dev, prod"),
        ({"Name": "x", "Size": "big"}, "must be a number"),
        ({"Name": "x", "Nope": "1"}, "does not declare"),
    ]:
        with pytest.raises(errors.TemplateError, match=message):
            template.parameter_values(declared, overrides)

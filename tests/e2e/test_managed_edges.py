"""Edges of capacity providers and Managed Instances functions: listing and paging, updates of
telemetry and tag propagation, architectures, scaling configuration guards, republishing.

Only one test publishes a version (three environments of one slot); the others stay on
``$LATEST``, which starts nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import unique
from tests.helpers import (
    OPERATOR,
    SUBNETS,
    LambdaClient,
    error_of,
    managed_config,
    wait_version_active,
)

UNCHECKED_CLIENT = True  # botocore's own checks are skipped: Corral's are tested


@pytest.fixture
def make_provider(lam: LambdaClient) -> Iterator[Any]:
    """Create capacity providers; delete them afterwards."""
    created: list[str] = []

    def make(**kwargs: Any) -> dict[str, Any]:
        params: dict[str, Any] = {
            "CapacityProviderName": unique("cp"),
            "VpcConfig": SUBNETS,
            "PermissionsConfig": OPERATOR,
        }
        params.update(kwargs)
        provider: dict[str, Any] = dict(lam.create_capacity_provider(**params)["CapacityProvider"])
        created.append(provider["CapacityProviderArn"])
        return provider

    yield make
    for arn in created:
        try:
            lam.delete_capacity_provider(CapacityProviderName=arn)
        except lam.exceptions.ResourceNotFoundException:
            pass


def managed(make_function: Any, provider_arn: str, **kwargs: Any) -> str:
    name: str = make_function(
        "lmi", MemorySize=2048, CapacityProviderConfig=managed_config(provider_arn, 1), **kwargs
    )
    return name


# Capacity providers --------------------------------------------------------------------------


def test_list_capacity_providers_filters_by_state_and_pages(
    lam: LambdaClient, make_provider: Any
) -> None:
    mine = {make_provider()["CapacityProviderArn"] for _ in range(3)}
    seen: list[str] = []
    marker = None
    while True:
        paging: dict[str, Any] = {"Marker": marker} if marker else {}
        page = lam.list_capacity_providers(State="Active", MaxItems=1, **paging)
        assert len(page["CapacityProviders"]) <= 1
        assert all(p["State"] == "Active" for p in page["CapacityProviders"])
        seen += [p["CapacityProviderArn"] for p in page["CapacityProviders"]]
        marker = page.get("NextMarker")
        if not marker:
            break
    assert mine <= set(seen)
    assert len(seen) == len(set(seen))
    assert lam.list_capacity_providers(State="Deleting")["CapacityProviders"] == []


@pytest.mark.parametrize(
    ("params", "gist"),
    [
        ({"State": "Sleeping"}, "Value 'Sleeping' at 'state' failed to satisfy constraint"),
        ({"MaxItems": 51}, "Member must have value between 1 and 50"),
    ],
    ids=["state", "max-items"],
)
def test_list_capacity_providers_refuses_bad_filters(
    lam: LambdaClient, params: dict[str, Any], gist: str
) -> None:
    code, status, message = error_of(lam.list_capacity_providers, **params)
    assert (code, status) == ("ValidationException", 400)
    assert gist in message


def test_update_capacity_provider_sets_telemetry_and_tag_propagation(
    lam: LambdaClient, make_provider: Any
) -> None:
    provider = make_provider()
    arn = provider["CapacityProviderArn"]
    name = arn.rsplit(":", 1)[-1]
    assert provider["TelemetryConfig"] == {
        "LoggingConfig": {
            "SystemLogLevel": "INFO",
            "LogGroup": f"/aws/lambda/capacity-provider/{name}",
        }
    }
    assert "PropagateTags" not in provider
    updated = lam.update_capacity_provider(
        CapacityProviderName=name,
        TelemetryConfig={"LoggingConfig": {"SystemLogLevel": "DEBUG", "LogGroup": "/corral/pool"}},
        PropagateTags={"Mode": "Explicit", "ExplicitTags": {"team": "infra"}},
    )["CapacityProvider"]
    expected_logging = {"SystemLogLevel": "DEBUG", "LogGroup": "/corral/pool"}
    assert updated["TelemetryConfig"]["LoggingConfig"] == expected_logging
    assert updated["PropagateTags"] == {"Mode": "Explicit", "ExplicitTags": {"team": "infra"}}
    got = lam.get_capacity_provider(CapacityProviderName=arn)["CapacityProvider"]
    assert got["TelemetryConfig"]["LoggingConfig"] == expected_logging
    assert got["PropagateTags"] == updated["PropagateTags"]
    off = lam.update_capacity_provider(CapacityProviderName=name, PropagateTags={"Mode": "None"})
    assert off["CapacityProvider"]["PropagateTags"] == {"Mode": "None"}
    assert off["CapacityProvider"]["TelemetryConfig"]["LoggingConfig"] == expected_logging


@pytest.mark.parametrize(
    ("params", "error", "gist"),
    [
        (
            {
                "PropagateTags": {
                    "Mode": "Explicit",
                    "ExplicitTags": {f"t{i}": "x" for i in range(41)},
                }
            },
            "InvalidParameterValueException",
            "at most 40 tags",
        ),
        ({"PropagateTags": {"Mode": "Always"}}, "ValidationException", "propagateTags.mode"),
        (
            {"TelemetryConfig": {"LoggingConfig": {"SystemLogLevel": "TRACE"}}},
            "ValidationException",
            "loggingConfig.systemLogLevel",
        ),
    ],
    ids=["explicit-tags", "mode", "log-level"],
)
def test_update_capacity_provider_refuses_bad_settings(
    lam: LambdaClient, make_provider: Any, params: dict[str, Any], error: str, gist: str
) -> None:
    arn = make_provider()["CapacityProviderArn"]
    code, status, message = error_of(
        lam.update_capacity_provider, CapacityProviderName=arn, **params
    )
    assert (code, status) == (error, 400)
    assert gist in message


def test_scaling_policies_switch_to_manual_and_auto_clears_them(
    lam: LambdaClient, make_provider: Any
) -> None:
    arn = make_provider()["CapacityProviderArn"]
    policy: Any = {
        "PredefinedMetricType": "LambdaCapacityProviderAverageCPUUtilization",
        "TargetValue": 40.0,
    }
    manual = lam.update_capacity_provider(
        CapacityProviderName=arn, CapacityProviderScalingConfig={"ScalingPolicies": [policy]}
    )["CapacityProvider"]["CapacityProviderScalingConfig"]
    assert manual["ScalingMode"] == "Manual"
    assert manual["ScalingPolicies"] == [policy]
    code, status, message = error_of(
        lam.update_capacity_provider,
        CapacityProviderName=arn,
        CapacityProviderScalingConfig={"ScalingMode": "Auto", "ScalingPolicies": [policy]},
    )
    assert (code, status) == ("InvalidParameterValueException", 400)
    assert "only be given with ScalingMode Manual" in message
    auto = lam.update_capacity_provider(
        CapacityProviderName=arn, CapacityProviderScalingConfig={"ScalingMode": "Auto"}
    )["CapacityProvider"]["CapacityProviderScalingConfig"]
    assert auto["ScalingMode"] == "Auto"
    assert "ScalingPolicies" not in auto


@pytest.mark.parametrize(
    ("params", "error", "gist"),
    [
        (
            {"VpcConfig": {"SecurityGroupIds": []}},
            "ValidationException",
            "Value null at 'vpcConfig.subnetIds'",
        ),
        (
            {"Tags": {f"t{i}": "x" for i in range(51)}},
            "InvalidParameterValueException",
            "Number of tags exceeds resource tag limit.",
        ),
        (
            {"InstanceRequirements": {"Architectures": ["sparc"]}},
            "ValidationException",
            "Value '[sparc]' at 'instanceRequirements.architectures'",
        ),
        (
            {"InstanceRequirements": {"AllowedInstanceTypes": ["m7g large"]}},
            "ValidationException",
            "instanceRequirements.allowedInstanceTypes",
        ),
        (
            {"KmsKeyArn": "not-a-key"},
            "ValidationException",
            "at 'kmsKeyArn'",
        ),
    ],
    ids=["no-subnets", "tags", "architecture", "instance-type", "kms"],
)
def test_create_capacity_provider_refuses_bad_settings(
    lam: LambdaClient, params: dict[str, Any], error: str, gist: str
) -> None:
    request: dict[str, Any] = {
        "CapacityProviderName": unique("badcp"),
        "VpcConfig": SUBNETS,
        "PermissionsConfig": OPERATOR,
    }
    request.update(params)
    code, status, message = error_of(lam.create_capacity_provider, **request)
    assert (code, status) == (error, 400)
    assert gist in message
    names = [p["CapacityProviderArn"] for p in lam.list_capacity_providers()["CapacityProviders"]]
    assert not any(n.endswith(":" + request["CapacityProviderName"]) for n in names)


def test_a_capacity_provider_keeps_its_requirements_key_and_tags(
    lam: LambdaClient, make_provider: Any
) -> None:
    key = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    provider = make_provider(
        InstanceRequirements={"Architectures": ["arm64"], "ExcludedInstanceTypes": ["*.metal"]},
        KmsKeyArn=key,
        Tags={"team": "infra"},
    )
    assert provider["InstanceRequirements"] == {
        "Architectures": ["arm64"],
        "ExcludedInstanceTypes": ["*.metal"],
    }
    assert provider["KmsKeyArn"] == key
    assert lam.list_tags(Resource=provider["CapacityProviderArn"])["Tags"] == {"team": "infra"}
    allowed = make_provider(InstanceRequirements={"AllowedInstanceTypes": ["c7i.*"]})
    assert allowed["InstanceRequirements"] == {
        "Architectures": ["x86_64"],
        "AllowedInstanceTypes": ["c7i.*"],
    }


def test_an_arm64_provider_takes_only_arm64_functions(
    lam: LambdaClient, make_provider: Any, make_function: Any
) -> None:
    arn = make_provider(InstanceRequirements={"Architectures": ["arm64"]})["CapacityProviderArn"]
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as caught:
        managed(make_function, arn)
    assert "The function architecture x86_64 does not match the architecture" in str(caught.value)
    name = managed(make_function, arn, Architectures=["arm64"])
    config = lam.get_function_configuration(FunctionName=name)
    assert config["Architectures"] == ["arm64"]
    assert config["State"] == "ActiveNonInvocable"


def test_function_versions_by_capacity_provider_page(
    lam: LambdaClient, make_provider: Any, make_function: Any
) -> None:
    arn = make_provider()["CapacityProviderArn"]
    names = {managed(make_function, arn) for _ in range(2)}
    first = lam.list_function_versions_by_capacity_provider(CapacityProviderName=arn, MaxItems=1)
    assert first["CapacityProviderArn"] == arn
    assert len(first["FunctionVersions"]) == 1
    rest = lam.list_function_versions_by_capacity_provider(
        CapacityProviderName=arn, MaxItems=1, Marker=first["NextMarker"]
    )
    assert "NextMarker" not in rest
    listed = first["FunctionVersions"] + rest["FunctionVersions"]
    assert {v["FunctionArn"].split(":")[-2] for v in listed} == names
    assert all(v["FunctionArn"].endswith(":$LATEST") for v in listed)


def test_managed_functions_log_in_json_only(
    lam: LambdaClient, make_function: Any, provider_arn: str
) -> None:
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as caught:
        managed(make_function, provider_arn, LoggingConfig={"LogFormat": "Text"})
    assert "only support the JSON log format" in str(caught.value)
    name = managed(
        make_function,
        provider_arn,
        LoggingConfig={"LogFormat": "JSON", "ApplicationLogLevel": "DEBUG"},
    )
    logging = lam.get_function_configuration(FunctionName=name)["LoggingConfig"]
    assert logging["LogFormat"] == "JSON"
    assert (logging["ApplicationLogLevel"], logging["SystemLogLevel"]) == ("DEBUG", "INFO")


def test_a_managed_function_takes_a_log_level_without_naming_the_format(
    lam: LambdaClient, make_function: Any, provider_arn: str
) -> None:
    name = managed(make_function, provider_arn, LoggingConfig={"ApplicationLogLevel": "DEBUG"})
    logging = lam.get_function_configuration(FunctionName=name)["LoggingConfig"]
    assert (logging["LogFormat"], logging["ApplicationLogLevel"]) == ("JSON", "DEBUG")


# Scaling configuration -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("qualifier", "gist"),
    [("$LATEST", "Value '$LATEST' at 'qualifier'"), (None, "Value null at 'qualifier'")],
    ids=["latest", "missing"],
)
def test_scaling_config_needs_a_published_qualifier(
    lam: LambdaClient, make_function: Any, provider_arn: str, qualifier: str | None, gist: str
) -> None:
    name = managed(make_function, provider_arn)
    params: dict[str, Any] = {"FunctionName": name}
    if qualifier is not None:
        params["Qualifier"] = qualifier
    code, status, message = error_of(lam.get_function_scaling_config, **params)
    assert (code, status) == ("ValidationException", 400)
    assert gist in message


def test_scaling_config_of_a_classic_function_is_refused(
    lam: LambdaClient, make_function: Any
) -> None:
    name = make_function("classic")
    lam.publish_version(FunctionName=name)
    code, status, message = error_of(
        lam.get_function_scaling_config, FunctionName=name, Qualifier="1"
    )
    assert (code, status) == ("InvalidParameterValueException", 400)
    assert "only supported for functions with capacity provider configuration" in message


def test_scaling_config_of_an_unpublished_version_is_not_found(
    lam: LambdaClient, make_function: Any, provider_arn: str
) -> None:
    name = managed(make_function, provider_arn)
    for call, extra in (
        (lam.get_function_scaling_config, {}),
        (
            lam.put_function_scaling_config,
            {"FunctionScalingConfig": {"MinExecutionEnvironments": 1}},
        ),
    ):
        code, status, message = error_of(call, FunctionName=name, Qualifier="3", **extra)
        assert (code, status) == ("ResourceNotFoundException", 404)
        assert message.endswith(f":function:{name}:3")


def test_republishing_while_pending_still_activates_and_scaling_is_checked(
    lam: LambdaClient, make_function: Any, provider_arn: str
) -> None:
    name = managed(make_function, provider_arn)
    first = lam.publish_version(FunctionName=name, PublishTo="LATEST_PUBLISHED")
    assert (first["Version"], first["State"]) == ("$LATEST.PUBLISHED", "Pending")
    again = lam.publish_version(FunctionName=name, PublishTo="LATEST_PUBLISHED")
    assert (again["Version"], again["State"]) == ("$LATEST.PUBLISHED", "Pending")
    code, status, message = error_of(
        lam.put_function_scaling_config,
        FunctionName=name,
        Qualifier="$LATEST.PUBLISHED",
        FunctionScalingConfig={"MinExecutionEnvironments": 4, "MaxExecutionEnvironments": 2},
    )
    assert (code, status) == ("InvalidParameterValueException", 400)
    assert message == (
        "MinExecutionEnvironments (4) must not be greater than MaxExecutionEnvironments (2)."
    )
    answer = lam.put_function_scaling_config(FunctionName=name, Qualifier="$LATEST.PUBLISHED")
    assert answer["FunctionState"] in ("Pending", "Active")
    applied = lam.get_function_scaling_config(FunctionName=name, Qualifier="$LATEST.PUBLISHED")
    assert applied["AppliedFunctionScalingConfig"] == {"MinExecutionEnvironments": 3}
    assert applied["FunctionArn"].endswith(f":function:{name}:$LATEST.PUBLISHED")
    config = wait_version_active(lam, name, "$LATEST.PUBLISHED")
    assert config["State"] == "Active"

"""Edges of aliases (weighted routing, revisions, paging) and tags, as AWS answers them.

Every call goes through boto3 with botocore's own checks off, so Corral's are what is tested.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from tests.conftest import unique
from tests.helpers import (
    ROLE,
    LambdaClient,
    Server,
    echo_zip,
    error_of,
    invoke,
    raw,
    returning,
)

ACCOUNT_ARN = "arn:aws:lambda:us-east-1:123456789012"

UNCHECKED_CLIENT = True  # botocore's own checks are skipped: Corral's are tested


# Aliases -------------------------------------------------------------------------------------


@pytest.mark.parametrize("weight", [1.5, -0.1, "half", None])
def test_a_routing_weight_outside_zero_to_one_is_a_validation_error(
    server: Server, two_versions: str, weight: Any
) -> None:
    body = {
        "Name": "live",
        "FunctionVersion": "1",
        "RoutingConfig": {"AdditionalVersionWeights": {"2": weight}},
    }
    status, error, answer = raw(
        server, "POST", f"/2015-03-31/functions/{two_versions}/aliases", json.dumps(body).encode()
    )
    assert (status, error) == (400, "ValidationException")
    message = answer["message"]
    assert "at 'routingConfig.additionalVersionWeights' failed to satisfy constraint" in message
    assert "less than or equal to 1.0" in message


def test_routing_weights_must_be_a_map(server: Server, two_versions: str) -> None:
    body = {
        "Name": "live",
        "FunctionVersion": "1",
        "RoutingConfig": {"AdditionalVersionWeights": ["2"]},
    }
    status, error, answer = raw(
        server, "POST", f"/2015-03-31/functions/{two_versions}/aliases", json.dumps(body).encode()
    )
    assert (status, error) == (400, "ValidationException")
    assert "Member must be a map" in answer["message"]


def test_an_alias_routes_to_at_most_one_additional_version(
    lam: LambdaClient, two_versions: str
) -> None:
    lam.update_function_code(FunctionName=two_versions, ZipFile=returning(3))
    assert lam.publish_version(FunctionName=two_versions)["Version"] == "3"
    code, status, message = error_of(
        lam.create_alias,
        FunctionName=two_versions,
        Name="live",
        FunctionVersion="1",
        RoutingConfig={"AdditionalVersionWeights": {"2": 0.2, "3": 0.2}},
    )
    assert (code, status) == ("InvalidParameterValueException", 400)
    assert message == "Number of items in AdditionalVersionWeights cannot be greater than 1"


def test_an_alias_cannot_route_extra_traffic_to_its_own_version(
    lam: LambdaClient, two_versions: str
) -> None:
    code, status, message = error_of(
        lam.create_alias,
        FunctionName=two_versions,
        Name="live",
        FunctionVersion="1",
        RoutingConfig={"AdditionalVersionWeights": {"1": 0.5}},
    )
    assert (code, status) == ("InvalidParameterValueException", 400)
    assert message == (
        "Invalid function version 1. Function version 1 is already included in routing "
        "configuration."
    )


@pytest.mark.parametrize(
    ("primary", "additional"), [("$LATEST", "1"), ("1", "$LATEST")], ids=["primary", "additional"]
)
def test_latest_cannot_take_part_in_weighted_routing(
    lam: LambdaClient, two_versions: str, primary: str, additional: str
) -> None:
    code, status, message = error_of(
        lam.create_alias,
        FunctionName=two_versions,
        Name="live",
        FunctionVersion=primary,
        RoutingConfig={"AdditionalVersionWeights": {additional: 0.5}},
    )
    assert (code, status) == ("InvalidParameterValueException", 400)
    assert message == "$LATEST is not supported for an alias pointing to more than 1 version"


def test_an_alias_to_a_missing_version_is_not_found(lam: LambdaClient, two_versions: str) -> None:
    code, status, message = error_of(
        lam.create_alias, FunctionName=two_versions, Name="live", FunctionVersion="9"
    )
    assert (code, status) == ("ResourceNotFoundException", 404)
    assert message == f"Function not found: {ACCOUNT_ARN}:function:{two_versions}:9"
    code, status, message = error_of(
        lam.create_alias,
        FunctionName=two_versions,
        Name="live",
        FunctionVersion="1",
        RoutingConfig={"AdditionalVersionWeights": {"9": 0.5}},
    )
    assert (code, status) == ("ResourceNotFoundException", 404)
    assert message.endswith(f":function:{two_versions}:9")


def test_creating_an_alias_twice_is_a_conflict(lam: LambdaClient, two_versions: str) -> None:
    lam.create_alias(FunctionName=two_versions, Name="live", FunctionVersion="1")
    code, status, message = error_of(
        lam.create_alias, FunctionName=two_versions, Name="live", FunctionVersion="2"
    )
    assert (code, status) == ("ResourceConflictException", 409)
    assert message == f"Alias already exists: {ACCOUNT_ARN}:function:{two_versions}:live"


def test_weighted_alias_shows_its_routing_config_and_updates_keep_it(
    lam: LambdaClient, two_versions: str
) -> None:
    created = lam.create_alias(
        FunctionName=two_versions,
        Name="canary",
        FunctionVersion="1",
        Description="ten percent",
        RoutingConfig={"AdditionalVersionWeights": {"2": 0.1}},
    )
    assert created["AliasArn"] == f"{ACCOUNT_ARN}:function:{two_versions}:canary"
    assert created["RoutingConfig"] == {"AdditionalVersionWeights": {"2": 0.1}}
    updated = lam.update_alias(FunctionName=two_versions, Name="canary", Description="renamed")
    assert updated["FunctionVersion"] == "1"
    assert updated["Description"] == "renamed"
    assert updated["RoutingConfig"] == {"AdditionalVersionWeights": {"2": 0.1}}
    assert updated["RevisionId"] != created["RevisionId"]
    cleared = lam.update_alias(
        FunctionName=two_versions, Name="canary", RoutingConfig={"AdditionalVersionWeights": {}}
    )
    assert "RoutingConfig" not in cleared
    assert cleared["Description"] == "renamed"


def test_update_alias_with_a_stale_revision_id_is_precondition_failed(
    lam: LambdaClient, two_versions: str
) -> None:
    created = lam.create_alias(FunctionName=two_versions, Name="live", FunctionVersion="1")
    lam.update_alias(FunctionName=two_versions, Name="live", FunctionVersion="2")
    code, status, message = error_of(
        lam.update_alias,
        FunctionName=two_versions,
        Name="live",
        FunctionVersion="1",
        RevisionId=created["RevisionId"],
    )
    assert (code, status) == ("PreconditionFailedException", 412)
    assert "The Revision Id provided does not match the latest Revision Id" in message
    assert lam.get_alias(FunctionName=two_versions, Name="live")["FunctionVersion"] == "2"


def test_update_alias_of_a_missing_alias_or_version_is_not_found(
    lam: LambdaClient, two_versions: str
) -> None:
    code, status, message = error_of(
        lam.update_alias, FunctionName=two_versions, Name="nosuch", FunctionVersion="1"
    )
    assert (code, status) == ("ResourceNotFoundException", 404)
    assert message == f"Alias not found: {ACCOUNT_ARN}:function:{two_versions}:nosuch"
    lam.create_alias(FunctionName=two_versions, Name="live", FunctionVersion="1")
    code, status, _ = error_of(
        lam.update_alias, FunctionName=two_versions, Name="live", FunctionVersion="7"
    )
    assert (code, status) == ("ResourceNotFoundException", 404)


def test_moving_an_alias_onto_its_additional_version_is_refused(
    lam: LambdaClient, two_versions: str
) -> None:
    lam.create_alias(
        FunctionName=two_versions,
        Name="canary",
        FunctionVersion="1",
        RoutingConfig={"AdditionalVersionWeights": {"2": 0.5}},
    )
    code, status, message = error_of(
        lam.update_alias, FunctionName=two_versions, Name="canary", FunctionVersion="2"
    )
    assert (code, status) == ("InvalidParameterValueException", 400)
    assert "is already included in routing configuration" in message


def test_deleting_a_missing_alias_succeeds_quietly(lam: LambdaClient, two_versions: str) -> None:
    answer = lam.delete_alias(FunctionName=two_versions, Name="nosuch")
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 204
    code, status, _ = error_of(lam.get_alias, FunctionName=two_versions, Name="nosuch")
    assert (code, status) == ("ResourceNotFoundException", 404)
    code, status, _ = error_of(lam.delete_alias, FunctionName=unique("gone"), Name="nosuch")
    assert (code, status) == ("ResourceNotFoundException", 404)


def test_list_aliases_filters_by_version_and_pages(lam: LambdaClient, two_versions: str) -> None:
    for alias, version in (("a-one", "1"), ("b-two", "2"), ("c-one", "1")):
        lam.create_alias(FunctionName=two_versions, Name=alias, FunctionVersion=version)
    on_one = lam.list_aliases(FunctionName=two_versions, FunctionVersion="1")["Aliases"]
    assert [a["Name"] for a in on_one] == ["a-one", "c-one"]
    assert lam.list_aliases(FunctionName=two_versions, FunctionVersion="$LATEST")["Aliases"] == []
    first = lam.list_aliases(FunctionName=two_versions, MaxItems=2)
    assert [a["Name"] for a in first["Aliases"]] == ["a-one", "b-two"]
    rest = lam.list_aliases(FunctionName=two_versions, MaxItems=2, Marker=first["NextMarker"])
    assert [a["Name"] for a in rest["Aliases"]] == ["c-one"]
    assert "NextMarker" not in rest


def test_a_marker_still_works_after_the_item_it_points_at_is_deleted(
    lam: LambdaClient, two_versions: str
) -> None:
    for alias in ("a", "b", "c", "d"):
        lam.create_alias(FunctionName=two_versions, Name=alias, FunctionVersion="1")
    first = lam.list_aliases(FunctionName=two_versions, MaxItems=2)
    assert [a["Name"] for a in first["Aliases"]] == ["a", "b"]
    lam.delete_alias(FunctionName=two_versions, Name="c")
    rest = lam.list_aliases(FunctionName=two_versions, MaxItems=2, Marker=first["NextMarker"])
    assert [a["Name"] for a in rest["Aliases"]] == ["d"]


def test_a_weighted_alias_sends_traffic_to_both_versions(
    lam: LambdaClient, two_versions: str
) -> None:
    lam.create_alias(
        FunctionName=two_versions,
        Name="half",
        FunctionVersion="1",
        RoutingConfig={"AdditionalVersionWeights": {"2": 0.5}},
    )
    seen: Counter[str] = Counter()
    for _ in range(40):
        answer = invoke(lam, two_versions, Qualifier="half")
        assert answer["Body"] == answer["ExecutedVersion"].encode()
        seen[answer["ExecutedVersion"]] += 1
    assert set(seen) == {"1", "2"}, seen
    lam.update_alias(
        FunctionName=two_versions,
        Name="half",
        RoutingConfig={"AdditionalVersionWeights": {"2": 1.0}},
    )
    assert {invoke(lam, two_versions, Qualifier="half")["ExecutedVersion"] for _ in range(5)} == {
        "2"
    }


def test_a_version_an_alias_routes_to_cannot_be_deleted(
    lam: LambdaClient, two_versions: str
) -> None:
    lam.create_alias(
        FunctionName=two_versions,
        Name="canary",
        FunctionVersion="1",
        RoutingConfig={"AdditionalVersionWeights": {"2": 0.1}},
    )
    code, status, message = error_of(lam.delete_function, FunctionName=two_versions, Qualifier="2")
    assert (code, status) == ("ResourceConflictException", 409)
    assert message.endswith("[canary]")


def test_get_function_with_an_alias_shows_the_alias_version(
    lam: LambdaClient, two_versions: str
) -> None:
    lam.create_alias(FunctionName=two_versions, Name="live", FunctionVersion="2")
    got = lam.get_function(FunctionName=two_versions, Qualifier="live")
    assert got["Configuration"]["Version"] == "2"
    config = lam.get_function_configuration(FunctionName=f"{two_versions}:live")
    assert config["Version"] == "2"
    code, status, message = error_of(
        lam.get_function_configuration, FunctionName=two_versions, Qualifier="nosuch"
    )
    assert (code, status) == ("ResourceNotFoundException", 404)
    assert message == f"Function not found: {ACCOUNT_ARN}:function:{two_versions}:nosuch"


def test_delete_function_refuses_latest_and_aliases_and_ignores_missing_versions(
    lam: LambdaClient, two_versions: str
) -> None:
    code, status, message = error_of(
        lam.delete_function, FunctionName=two_versions, Qualifier="$LATEST"
    )
    assert (code, status) == ("InvalidParameterValueException", 400)
    assert message == "$LATEST version cannot be deleted without deleting the function."
    lam.create_alias(FunctionName=two_versions, Name="live", FunctionVersion="1")
    code, status, message = error_of(
        lam.delete_function, FunctionName=two_versions, Qualifier="live"
    )
    assert (code, status) == ("InvalidParameterValueException", 400)
    assert message == "Deletion of aliases is not currently supported."
    answer = lam.delete_function(FunctionName=two_versions, Qualifier="42")
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert lam.get_alias(FunctionName=two_versions, Name="live")["FunctionVersion"] == "1"


# Tags ----------------------------------------------------------------------------------------


def test_a_malformed_resource_arn_is_a_validation_error(lam: LambdaClient) -> None:
    code, status, message = error_of(lam.list_tags, Resource="not-an-arn")
    assert (code, status) == ("ValidationException", 400)
    assert "Value 'not-an-arn' at 'resource' failed to satisfy constraint" in message


@pytest.mark.parametrize("qualifier", ["1", "$LATEST", "live"])
def test_tags_on_a_version_or_alias_arn_are_refused(
    lam: LambdaClient, make_function: Any, qualifier: str
) -> None:
    name = make_function("tagq")
    code, status, message = error_of(
        lam.tag_resource,
        Resource=f"{ACCOUNT_ARN}:function:{name}:{qualifier}",
        Tags={"team": "a"},
    )
    assert (code, status) == ("InvalidParameterValueException", 400)
    assert message.startswith("Tags on function aliases and versions are not supported.")


def test_tags_of_unknown_or_foreign_resources_are_not_found(
    lam: LambdaClient, make_function: Any
) -> None:
    name = make_function("tagx")
    other_region = f"arn:aws:lambda:eu-west-1:123456789012:function:{name}"
    code, status, message = error_of(lam.list_tags, Resource=other_region)
    assert (code, status) == ("ResourceNotFoundException", 404)
    assert message == f"Function not found: {other_region}"
    other_account = f"arn:aws:lambda:us-east-1:210987654321:function:{name}"
    code, status, _ = error_of(lam.tag_resource, Resource=other_account, Tags={"a": "b"})
    assert status in (403, 404) and code in ("ResourceNotFoundException", "AccessDeniedException")
    missing = f"{ACCOUNT_ARN}:function:{unique('nosuch')}"
    assert error_of(lam.list_tags, Resource=missing)[:2] == ("ResourceNotFoundException", 404)
    provider = f"{ACCOUNT_ARN}:capacity-provider:{unique('nosuch')}"
    code, status, message = error_of(lam.tag_resource, Resource=provider, Tags={"a": "b"})
    assert (code, status) == ("ResourceNotFoundException", 404)
    assert message == f"Capacity provider not found: {provider}"


def test_tag_resource_checks_the_tags(lam: LambdaClient, make_function: Any) -> None:
    name = make_function("tagcheck", Tags={"keep": "me"})
    arn = f"{ACCOUNT_ARN}:function:{name}"
    assert error_of(lam.tag_resource, Resource=arn, Tags={})[:2] == (
        "InvalidParameterValueException",
        400,
    )
    for bad in ({"aws:owner": "x"}, {"k" * 129: "x"}, {"k": "v" * 257}, {"": "x"}):
        code, status, message = error_of(lam.tag_resource, Resource=arn, Tags=bad)
        assert (code, status) == ("InvalidParameterValueException", 400), bad
        assert message.startswith("Tag key or value is not valid")
    fifty = {f"t{i}": "x" for i in range(50)}
    code, status, message = error_of(lam.tag_resource, Resource=arn, Tags=fifty)
    assert (code, status) == ("InvalidParameterValueException", 400)
    assert message == "Number of tags exceeds resource tag limit."
    assert lam.list_tags(Resource=arn)["Tags"] == {"keep": "me"}
    code, status, _ = error_of(lam.untag_resource, Resource=arn, TagKeys=[])
    assert (code, status) == ("ValidationException", 400)


def test_a_function_is_created_with_at_most_fifty_tags(lam: LambdaClient) -> None:
    code, status, message = error_of(
        lam.create_function,
        FunctionName=unique("manytags"),
        Runtime="python3.11",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": echo_zip()},
        Tags={f"t{i}": "x" for i in range(51)},
    )
    assert (code, status) == ("InvalidParameterValueException", 400)
    assert message == "Number of tags exceeds resource tag limit."


def test_capacity_providers_are_tagged_like_functions(lam: LambdaClient, provider_arn: str) -> None:
    lam.tag_resource(Resource=provider_arn, Tags={"team": "infra", "env": "dev"})
    assert lam.list_tags(Resource=provider_arn)["Tags"] == {"team": "infra", "env": "dev"}
    lam.untag_resource(Resource=provider_arn, TagKeys=["env"])
    assert lam.list_tags(Resource=provider_arn)["Tags"] == {"team": "infra"}

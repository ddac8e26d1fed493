"""Edges of the Lambda API that a careful user runs into: aliases with weighted routing, tags,
function settings, publishing guards, reserved concurrency and the invoke headers.

Every call goes through boto3 (with botocore's own checks off, so Corral's are what is
tested) or raw HTTP, and every answer is checked for the error name, status and message
that AWS gives.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import unique
from tests.helpers import ROLE, LambdaClient, Server, echo_zip, error_of, invoke, wait_for, zip_code

ACCOUNT_ARN = "arn:aws:lambda:us-east-1:123456789012"


UNCHECKED_CLIENT = True  # botocore's own checks are skipped: Corral's are tested


def returning(value: int) -> bytes:
    return zip_code({"app.py": f"def handler(event, context):\n    return {value}\n"})


@pytest.fixture
def two_versions(lam: LambdaClient, make_function: Any) -> str:
    """A classic function with versions 1 (returns 1) and 2 (returns 2)."""
    name: str = make_function("alias", code=returning(1))
    assert lam.publish_version(FunctionName=name)["Version"] == "1"
    lam.update_function_code(FunctionName=name, ZipFile=returning(2))
    assert lam.publish_version(FunctionName=name)["Version"] == "2"
    return name


def raw(
    server: Server,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, str, dict[str, Any]]:
    """``(status, x-amzn-ErrorType, JSON body)`` of a raw HTTP request."""
    request = urllib.request.Request(
        server.url + path, data=body, method=method, headers=headers or {}
    )
    try:
        with urllib.request.urlopen(request) as response:
            data = response.read()
            return response.status, "", json.loads(data) if data else {}
    except urllib.error.HTTPError as exc:
        data = exc.read()
        return exc.code, exc.headers.get("x-amzn-ErrorType", ""), json.loads(data) if data else {}


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


# Function settings ---------------------------------------------------------------------------


def test_update_configuration_applies_storage_tracing_and_architecture(
    lam: LambdaClient, make_function: Any
) -> None:
    name = make_function("settings")
    updated = lam.update_function_configuration(
        FunctionName=name,
        EphemeralStorage={"Size": 1024},
        TracingConfig={"Mode": "Active"},
        LoggingConfig={"LogFormat": "JSON"},
        SnapStart={"ApplyOn": "None"},
    )
    assert updated["EphemeralStorage"] == {"Size": 1024}
    assert updated["TracingConfig"] == {"Mode": "Active"}
    assert updated["LoggingConfig"] == {
        "LogFormat": "JSON",
        "ApplicationLogLevel": "INFO",
        "SystemLogLevel": "INFO",
        "LogGroup": f"/aws/lambda/{name}",
    }
    got = lam.get_function_configuration(FunctionName=name)
    assert (got["EphemeralStorage"], got["TracingConfig"]["Mode"]) == ({"Size": 1024}, "Active")
    text = lam.update_function_configuration(FunctionName=name, LoggingConfig={"LogFormat": "Text"})
    assert text["LoggingConfig"] == {"LogFormat": "Text", "LogGroup": f"/aws/lambda/{name}"}


@pytest.mark.parametrize(
    ("settings", "error", "gist"),
    [
        ({"Environment": {"Variables": {"1ABC": "x"}}}, "ValidationException", "[a-zA-Z]"),
        ({"EphemeralStorage": {"Size": 100}}, "ValidationException", "ephemeralStorage.size"),
        ({"TracingConfig": {"Mode": "Loud"}}, "ValidationException", "tracingConfig.mode"),
        (
            {"SnapStart": {"ApplyOn": "PublishedVersions"}},
            "InvalidParameterValueException",
            "SnapStart is not supported",
        ),
        (
            {"LoggingConfig": {"LogFormat": "Text", "SystemLogLevel": "WARN"}},
            "InvalidParameterValueException",
            'LogLevel is not supported when LogFormat is set to "Text"',
        ),
        ({"MemorySize": 10241}, "ValidationException", "less than or equal to 10240"),
        ({"Timeout": 901}, "ValidationException", "less than or equal to 900"),
        ({"RevisionId": "not-the-revision"}, "PreconditionFailedException", "Revision Id"),
    ],
    ids=[
        "env-key",
        "storage",
        "tracing",
        "snapstart",
        "text-with-level",
        "memory",
        "timeout",
        "revision",
    ],
)
def test_update_configuration_refuses_bad_settings(
    lam: LambdaClient, make_function: Any, settings: dict[str, Any], error: str, gist: str
) -> None:
    name = make_function("badset")
    code, status, message = error_of(
        lam.update_function_configuration, FunctionName=name, **settings
    )
    assert code == error
    assert status == (412 if error == "PreconditionFailedException" else 400)
    assert gist in message
    assert lam.get_function_configuration(FunctionName=name)["MemorySize"] == 128


def test_update_code_can_switch_the_architecture(lam: LambdaClient, make_function: Any) -> None:
    name = make_function("arch")
    updated = lam.update_function_code(
        FunctionName=name, ZipFile=echo_zip(), Architectures=["arm64"]
    )
    assert updated["Architectures"] == ["arm64"]
    assert lam.get_function_configuration(FunctionName=name)["Architectures"] == ["arm64"]


@pytest.mark.parametrize(
    ("architectures", "gist"),
    [
        ("x86_64", "Member must be a list of strings"),
        (["x86_64", "arm64"], "Member must have length less than or equal to 1"),
        ([], "Member must have length greater than or equal to 1"),
    ],
    ids=["string", "two", "none"],
)
def test_a_function_has_exactly_one_architecture(
    server: Server, architectures: Any, gist: str
) -> None:
    body = {
        "FunctionName": unique("arch"),
        "Runtime": "python3.11",
        "Role": ROLE,
        "Handler": "app.handler",
        "Code": {"ZipFile": base64.b64encode(echo_zip()).decode()},
        "Architectures": architectures,
    }
    status, error, answer = raw(server, "POST", "/2015-03-31/functions", json.dumps(body).encode())
    assert (status, error) == (400, "ValidationException")
    assert "at 'architectures' failed to satisfy constraint" in answer["message"]
    assert gist in answer["message"]


@pytest.mark.parametrize(
    ("code", "gist"),
    [
        ({"S3Bucket": "bucket", "S3Key": "code.zip"}, "S3Bucket is not supported"),
        ({"ImageUri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/x:1"}, "ImageUri"),
        ({}, "Code.ZipFile is required"),
    ],
    ids=["s3", "image", "nothing"],
)
def test_code_comes_as_a_zip_file_only(lam: LambdaClient, code: dict[str, str], gist: str) -> None:
    name, status, message = error_of(
        lam.create_function,
        FunctionName=unique("s3"),
        Runtime="python3.11",
        Role=ROLE,
        Handler="app.handler",
        Code=code,
    )
    assert (name, status) == ("InvalidParameterValueException", 400)
    assert gist in message


def test_update_code_from_s3_is_refused(lam: LambdaClient, make_function: Any) -> None:
    name = make_function("s3upd")
    code, status, message = error_of(
        lam.update_function_code, FunctionName=name, S3Bucket="b", S3Key="k"
    )
    assert (code, status) == ("InvalidParameterValueException", 400)
    assert "S3Bucket is not supported" in message


def test_zip_file_that_is_not_base64_is_refused(server: Server, make_function: Any) -> None:
    name = make_function("b64")
    status, error, body = raw(
        server,
        "PUT",
        f"/2015-03-31/functions/{name}/code",
        json.dumps({"ZipFile": "not base64 at all!"}).encode(),
    )
    assert (status, error) == (400, "InvalidParameterValueException")
    assert body["message"] == "Code.ZipFile is not valid base64."


def test_image_functions_and_missing_runtime_are_refused(lam: LambdaClient) -> None:
    base: dict[str, Any] = {
        "FunctionName": unique("img"),
        "Role": ROLE,
        "Code": {"ZipFile": echo_zip()},
    }
    code, status, message = error_of(lam.create_function, PackageType="Image", **base)
    assert (code, status) == ("InvalidParameterValueException", 400)
    assert "PackageType Image" in message
    code, status, message = error_of(lam.create_function, Handler="app.handler", **base)
    assert (code, status) == ("InvalidParameterValueException", 400)
    assert message == (
        "Runtime and Handler are mandatory parameters for functions created with Zip package type."
    )


def test_update_code_dry_run_validates_without_changing_the_function(
    lam: LambdaClient, make_function: Any
) -> None:
    name = make_function("dry", code=returning(1))
    before = lam.get_function_configuration(FunctionName=name)
    new_code = returning(2)
    checked = lam.update_function_code(FunctionName=name, ZipFile=new_code, DryRun=True)
    assert checked["CodeSha256"] == base64.b64encode(hashlib.sha256(new_code).digest()).decode()
    after = lam.get_function_configuration(FunctionName=name)
    assert after["CodeSha256"] == before["CodeSha256"]
    assert after["RevisionId"] == before["RevisionId"]
    assert invoke(lam, name)["Body"] == b"1"


def test_update_code_with_publish_returns_the_new_version(
    lam: LambdaClient, make_function: Any
) -> None:
    name = make_function("codepub", code=returning(1))
    published = lam.update_function_code(FunctionName=name, ZipFile=returning(2), Publish=True)
    assert published["Version"] == "1"
    assert invoke(lam, name, Qualifier="1")["Body"] == b"2"


def _all_functions(lam: LambdaClient, **params: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for page in lam.get_paginator("list_functions").paginate(**params):
        found += [dict(f) for f in page["Functions"]]
    return found


def test_list_functions_with_all_versions(lam: LambdaClient, two_versions: str) -> None:
    latest_only = [f["Version"] for f in _all_functions(lam) if f["FunctionName"] == two_versions]
    assert latest_only == ["$LATEST"]
    every = [
        f["Version"]
        for f in _all_functions(lam, FunctionVersion="ALL")
        if f["FunctionName"] == two_versions
    ]
    assert every == ["$LATEST", "1", "2"]
    here = _all_functions(lam, MasterRegion="us-east-1", FunctionVersion="ALL")
    assert any(f["FunctionName"] == two_versions for f in here)


def test_list_functions_refuses_unknown_version_filters_and_regions(lam: LambdaClient) -> None:
    code, status, message = error_of(lam.list_functions, FunctionVersion="LATEST")
    assert (code, status) == ("ValidationException", 400)
    assert "Member must satisfy enum value set: [ALL]" in message
    code, status, message = error_of(
        lam.list_functions, MasterRegion="eu-west-1", FunctionVersion="ALL"
    )
    assert (code, status) == ("InvalidParameterValueException", 400)
    assert "eu-west-1" in message


def test_list_versions_pages(lam: LambdaClient, two_versions: str) -> None:
    first = lam.list_versions_by_function(FunctionName=two_versions, MaxItems=2)
    assert [v["Version"] for v in first["Versions"]] == ["$LATEST", "1"]
    rest = lam.list_versions_by_function(
        FunctionName=two_versions, MaxItems=2, Marker=first["NextMarker"]
    )
    assert [v["Version"] for v in rest["Versions"]] == ["2"]


# Publishing ----------------------------------------------------------------------------------


def test_publish_checks_the_code_sha256_and_revision_id(
    lam: LambdaClient, make_function: Any
) -> None:
    name = make_function("pubcheck")
    latest = lam.get_function_configuration(FunctionName=name)
    wrong_sha = base64.b64encode(b"\0" * 32).decode()
    code, status, message = error_of(lam.publish_version, FunctionName=name, CodeSha256=wrong_sha)
    assert (code, status) == ("InvalidParameterValueException", 400)
    assert message.startswith(f"CodeSHA256 ({wrong_sha}) is different from current CodeSHA256")
    code, status, message = error_of(
        lam.publish_version, FunctionName=name, RevisionId="stale-revision"
    )
    assert (code, status) == ("PreconditionFailedException", 412)
    assert "Revision Id" in message
    published = lam.publish_version(
        FunctionName=name, CodeSha256=latest["CodeSha256"], RevisionId=latest["RevisionId"]
    )
    assert published["Version"] == "1"


def test_publish_to_latest_published_needs_a_capacity_provider(
    lam: LambdaClient, make_function: Any
) -> None:
    name = make_function("pubto")
    code, status, message = error_of(
        lam.publish_version, FunctionName=name, PublishTo="LATEST_PUBLISHED"
    )
    assert (code, status) == ("InvalidParameterValueException", 400)
    assert "only supported for functions with capacity provider configuration" in message
    versions = lam.list_versions_by_function(FunctionName=name)["Versions"]
    assert [v["Version"] for v in versions] == ["$LATEST"]


# Concurrency ---------------------------------------------------------------------------------


def test_reserved_concurrency_leaves_at_least_100_unreserved(
    lam: LambdaClient, make_function: Any
) -> None:
    name = make_function("reserve")
    assert "ReservedConcurrentExecutions" not in lam.get_function_concurrency(FunctionName=name)
    code, status, message = error_of(
        lam.put_function_concurrency, FunctionName=name, ReservedConcurrentExecutions=901
    )
    assert (code, status) == ("InvalidParameterValueException", 400)
    assert "below its minimum value of [100]" in message
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=900)
    limits = lam.get_account_settings()["AccountLimit"]
    assert (limits["ConcurrentExecutions"], limits["UnreservedConcurrentExecutions"]) == (
        1000,
        100,
    )
    got = lam.get_function(FunctionName=name)
    assert got["Concurrency"] == {"ReservedConcurrentExecutions": 900}
    lam.delete_function_concurrency(FunctionName=name)
    limits = lam.get_account_settings()["AccountLimit"]
    assert limits["UnreservedConcurrentExecutions"] == 1000


def test_account_settings_report_limits_and_usage(lam: LambdaClient, make_function: Any) -> None:
    before = lam.get_account_settings()["AccountUsage"]
    make_function("usage")
    settings = lam.get_account_settings()
    assert settings["AccountLimit"]["CodeSizeZipped"] == 52428800
    assert settings["AccountLimit"]["CodeSizeUnzipped"] == 262144000
    assert settings["AccountLimit"]["TotalCodeSize"] == 80530636800
    usage = settings["AccountUsage"]
    assert usage["FunctionCount"] == before["FunctionCount"] + 1
    assert usage["TotalCodeSize"] == before["TotalCodeSize"] + len(echo_zip())


# Invoke --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "value", "field"),
    [
        ("X-Amz-Invocation-Type", "Sometimes", "invocationType"),
        ("X-Amz-Log-Type", "Head", "logType"),
    ],
)
def test_unknown_invocation_or_log_types_are_validation_errors(
    server: Server, make_function: Any, header: str, value: str, field: str
) -> None:
    name = make_function("hdr")
    status, error, body = raw(
        server, "POST", f"/2015-03-31/functions/{name}/invocations", b"{}", {header: value}
    )
    assert (status, error) == (400, "ValidationException")
    assert f"Value '{value}' at '{field}' failed to satisfy constraint" in body["message"]


@pytest.mark.parametrize(
    "context",
    [
        "not base64!",
        base64.b64encode(b"not json").decode(),
        base64.b64encode(b"[1, 2]").decode(),
        base64.b64encode(json.dumps({"custom": {"k": "v" * 3000}}).encode()).decode(),
    ],
    ids=["not-base64", "not-json", "not-an-object", "too-long"],
)
def test_a_bad_client_context_is_refused(
    lam: LambdaClient, make_function: Any, context: str
) -> None:
    name = make_function("ctx")
    code, status, message = error_of(lam.invoke, FunctionName=name, ClientContext=context)
    assert (code, status) == ("InvalidParameterValueException", 400)
    assert "Client context must be" in message


def test_an_event_over_1_mb_is_request_too_large(
    lam: LambdaClient, server: Server, make_function: Any
) -> None:
    name = make_function("bigevent")
    payload = json.dumps("x" * (1024 * 1024 + 10)).encode()
    code, status, message = error_of(
        lam.invoke, FunctionName=name, InvocationType="Event", Payload=payload
    )
    assert (code, status) == ("RequestTooLargeException", 413)
    assert "too large for the Event invocation type (limit 1048576 bytes)" in message
    # Sent in chunks without a Content-Length, the size is found while reading.
    url = urllib.parse.urlsplit(server.url)
    connection = http.client.HTTPConnection(url.hostname or "", url.port, timeout=60)

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(payload), 64 * 1024):
            yield payload[start : start + 64 * 1024]

    try:
        connection.request(
            "POST",
            f"/2015-03-31/functions/{name}/invocations",
            body=chunks(),
            headers={"X-Amz-Invocation-Type": "Event"},
            encode_chunked=True,
        )
        response = connection.getresponse()
        assert response.status == 413
        assert response.getheader("x-amzn-ErrorType") == "RequestTooLargeException"
        response.read()
    finally:
        connection.close()


def test_an_event_of_1_mb_or_less_is_accepted(lam: LambdaClient, make_function: Any) -> None:
    name = make_function("okevent")
    payload = json.dumps("x" * (1024 * 1024 - 100)).encode()
    answer = lam.invoke(FunctionName=name, InvocationType="Event", Payload=payload)
    assert answer["StatusCode"] == 202


def test_a_qualifier_in_the_arn_and_the_query_must_agree(
    lam: LambdaClient, two_versions: str
) -> None:
    code, status, message = error_of(
        lam.invoke, FunctionName=f"{two_versions}:1", Qualifier="2", Payload=b"{}"
    )
    assert (code, status) == ("InvalidParameterValueException", 400)
    assert message == (
        "The derived qualifier from the function name does not match the specified qualifier."
    )
    same = invoke(lam, f"{two_versions}:2", Qualifier="2")
    assert (same["ExecutedVersion"], same["Body"]) == ("2", b"2")


def test_a_function_created_with_publish_answers_with_version_1(lam: LambdaClient) -> None:
    name = unique("createpub")
    created = lam.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": returning(7)},
        Publish=True,
    )
    try:
        assert created["Version"] == "1"
        assert created["FunctionArn"].endswith(f":function:{name}:1")
        assert invoke(lam, name, Qualifier="1")["Body"] == b"7"
    finally:
        lam.delete_function(FunctionName=name)


def state_of(server: Server) -> dict[str, Any]:
    status, _, body = raw(server, "GET", "/corral/v1/state")
    assert status == 200
    return body


@pytest.mark.parametrize(
    ("files", "handler", "error_type"),
    [
        ({"app.py": "import no_such_module\n"}, "app.handler", "Runtime.ImportModuleError"),
        ({"app.py": "x = 1\n"}, "app.handler", "Runtime.HandlerNotFound"),
    ],
    ids=["import-error", "no-handler"],
)
def test_a_classic_function_that_cannot_start_answers_its_init_error(
    lam: LambdaClient, make_function: Any, files: dict[str, str], handler: str, error_type: str
) -> None:
    name = make_function("initfail", code=zip_code(files), Handler=handler)
    answer = invoke(lam, name)
    assert answer["StatusCode"] == 200
    assert answer["FunctionError"] == "Unhandled"
    body = json.loads(answer["Body"])
    assert body["errorType"] == error_type
    assert body["errorMessage"]


def test_an_event_throttled_by_reserved_concurrency_runs_once_it_is_lifted(
    lam: LambdaClient, make_function: Any, tmp: Path
) -> None:
    name = make_function("evthrottle")
    marker = tmp / "ran"
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    answer = lam.invoke(
        FunctionName=name, InvocationType="Event", Payload=json.dumps({"touch": str(marker)})
    )
    assert answer["StatusCode"] == 202
    lam.delete_function_concurrency(FunctionName=name)
    wait_for(marker.exists, timeout_s=20)
    assert len(marker.read_text().split()) == 1


def test_a_queued_event_for_a_deleted_function_is_dropped(
    server: Server, lam: LambdaClient
) -> None:
    name = unique("evgone")
    lam.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": echo_zip()},
    )
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    lam.invoke(FunctionName=name, InvocationType="Event", Payload=b"{}")
    assert state_of(server)["asyncQueue"] >= 1
    lam.delete_function(FunctionName=name)
    wait_for(lambda: state_of(server)["asyncQueue"] == 0, timeout_s=20)


def test_health_reports_ok_and_the_sandbox(server: Server) -> None:
    assert raw(server, "GET", "/health") == (200, "", {"status": "ok", "sandbox": "process"})


@pytest.mark.parametrize("digest", ["not-a-digest", "0" * 64], ids=["malformed", "unknown"])
def test_downloading_unknown_code_is_not_found(server: Server, digest: str) -> None:
    status, error, _ = raw(server, "GET", f"/corral/v1/code/{digest}.zip")
    assert (status, error) == (404, "ResourceNotFoundException")


def test_a_control_request_over_1_mb_is_request_too_large(
    server: Server, lam: LambdaClient, make_function: Any
) -> None:
    name = make_function("bigctl")
    code, status, message = error_of(
        lam.update_function_configuration, FunctionName=name, Description="x" * (1024 * 1024)
    )
    assert (code, status) == ("RequestTooLargeException", 413)
    assert message == (
        "Request must be smaller than 1048576 bytes for the UpdateFunctionConfiguration operation"
    )
    # Sent in chunks without a Content-Length, the size is found while reading; the last
    # chunk crosses the limit, so the whole body is on the wire before the answer.
    body = json.dumps({"Description": "x" * (1024 * 1024)}).encode()
    url = urllib.parse.urlsplit(server.url)
    connection = http.client.HTTPConnection(url.hostname or "", url.port, timeout=60)
    try:
        connection.request(
            "PUT",
            f"/2015-03-31/functions/{name}/configuration",
            body=iter([body[: 1024 * 1000], body[1024 * 1000 :]]),
            encode_chunked=True,
        )
        response = connection.getresponse()
        assert response.status == 413
        assert response.getheader("x-amzn-ErrorType") == "RequestTooLargeException"
        response.read()
    finally:
        connection.close()
    assert lam.get_function_configuration(FunctionName=name)["Description"] == ""

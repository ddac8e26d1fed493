"""Corral answers as AWS answers: versions, ARNs, absent fields, states, validation (#12).

Every expectation here comes from a recorded AWS answer or AWS's documentation; the source
is named beside each test. "Recorded" means LocalStack's AWS-validated snapshots
(``localstack/localstack``, ``tests/aws/services/lambda_/test_lambda_api.snapshot.json`` and
``test_lambda.snapshot.json``, recorded against AWS in November 2025 - January 2026),
named as ``Class::test / entry``.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import unique
from tests.helpers import (
    ROLE,
    LambdaClient,
    Server,
    error_of,
    invoke,
    managed_config,
    returning,
    run_aws,
    wait_version_active,
    zip_code,
)

ACCOUNT = "123456789012"
ARN = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:"

# What AWS prints for a malformed function name on GetFunction, Invoke and DeleteFunction
# (recorded: TestLambdaFunction::test_function_name_and_qualifier_validation).
GET_PATTERN = (
    r"(arn:(aws[a-zA-Z-]*)?:lambda:)?((eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:)?"
    r"(\d{12}:)?(function:)?([a-zA-Z0-9-_\.]+)(:(\$LATEST(\.PUBLISHED)?|[a-zA-Z0-9-_]+))?"
)
CREATE_PATTERN = (
    r"(arn:(aws[a-zA-Z-]*)?:lambda:)?((eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:)?"
    r"(\d{12}:)?(function:)?([a-zA-Z0-9-_]+)(:(\$LATEST|[a-zA-Z0-9-_]+))?"
)
QUALIFIER_PATTERN = r"\$(LATEST(\.PUBLISHED)?)|[a-zA-Z0-9-_$]+"


@pytest.fixture(scope="module")
def loose(server: Server) -> LambdaClient:
    """A client that skips botocore's own checks, so the server's are what is tested."""
    return server.client(parameter_validation=False)


def pattern_error(value: str, field: str, pattern: str) -> str:
    return (
        f"1 validation error detected: Value '{value}' at '{field}' failed to satisfy "
        f"constraint: Member must satisfy regular expression pattern: {pattern}"
    )


# 1. PublishVersion ---------------------------------------------------------------------------
# Recorded: TestLambdaVersions::test_version_lifecycle; PublishVersion API reference ("Lambda
# doesn't publish a version if the function's configuration and code haven't changed").


def test_a_description_change_alone_publishes_a_new_version(
    lam: LambdaClient, make_function: Any
) -> None:
    name = make_function("pubdesc", Description="first")
    assert lam.publish_version(FunctionName=name)["Version"] == "1"
    lam.update_function_configuration(FunctionName=name, Description="second")
    published = lam.publish_version(FunctionName=name)
    assert published["Version"] == "2"
    assert published["Description"] == "second"


@pytest.mark.parametrize(
    "change",
    [
        {"MemorySize": 256},
        {"Timeout": 7},
        {"Handler": "app.other"},
        {"Environment": {"Variables": {"MY_FLAG": "on"}}},
    ],
    ids=["memory", "timeout", "handler", "environment"],
)
def test_a_configuration_change_publishes_a_version_that_carries_it(
    lam: LambdaClient, make_function: Any, change: dict[str, Any]
) -> None:
    name = make_function("pubconf")
    lam.publish_version(FunctionName=name)
    lam.update_function_configuration(FunctionName=name, **change)
    published = lam.publish_version(FunctionName=name)
    assert published["Version"] == "2"
    shown = lam.get_function_configuration(FunctionName=name, Qualifier="2")
    for key, value in change.items():
        assert shown[key] == value  # type: ignore[literal-required]


def test_publishing_nothing_new_returns_the_last_version_unchanged_with_201(
    lam: LambdaClient, make_function: Any
) -> None:
    name = make_function("pubsame", Description="kept")
    first = lam.publish_version(FunctionName=name, Description="the first one")
    again = lam.publish_version(FunctionName=name, Description="ignored: nothing changed")
    assert again["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert again["Version"] == first["Version"] == "1"
    assert again["Description"] == "the first one"
    assert again["RevisionId"] == first["RevisionId"]
    latest = lam.get_function_configuration(FunctionName=name)
    assert latest["Description"] == "kept"  # PublishVersion's description is the version's


def test_publishing_changes_the_revision_of_latest(lam: LambdaClient, make_function: Any) -> None:
    # Recorded: TestLambdaRevisions::test_function_revisions_version_and_alias.
    name = make_function("pubrev")
    before = lam.get_function_configuration(FunctionName=name)["RevisionId"]
    lam.publish_version(FunctionName=name)
    assert lam.get_function_configuration(FunctionName=name)["RevisionId"] != before


# 2. ARNs in answers --------------------------------------------------------------------------
# Recorded: test_publish_version_on_create, test_list_functions, TestLambdaAlias::
# test_alias_lifecycle / get_function_alias_1_1.


def test_latest_in_version_listings_carries_the_latest_qualifier(
    lam: LambdaClient, make_function: Any
) -> None:
    name = make_function("arnlist")
    lam.publish_version(FunctionName=name)
    versions = lam.list_versions_by_function(FunctionName=name)["Versions"]
    assert [(v["Version"], v["FunctionArn"]) for v in versions] == [
        ("$LATEST", f"{ARN}{name}:$LATEST"),
        ("1", f"{ARN}{name}:1"),
    ]
    listed = [
        f
        for page in lam.get_paginator("list_functions").paginate(FunctionVersion="ALL")
        for f in page["Functions"]
        if f["FunctionName"] == name
    ]
    assert [f["FunctionArn"] for f in listed] == [f"{ARN}{name}:$LATEST", f"{ARN}{name}:1"]
    default = [
        f["FunctionArn"]
        for page in lam.get_paginator("list_functions").paginate()
        for f in page["Functions"]
        if f["FunctionName"] == name
    ]
    assert default == [f"{ARN}{name}"]


def test_get_function_by_qualifier_names_the_arn_it_was_asked_for(
    lam: LambdaClient, make_function: Any
) -> None:
    name = make_function("arnget")
    version = lam.publish_version(FunctionName=name)
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    by_alias = lam.get_function(FunctionName=name, Qualifier="live")["Configuration"]
    assert by_alias["FunctionArn"] == f"{ARN}{name}:live"
    assert by_alias["Version"] == "1"
    assert by_alias["RevisionId"] == version["RevisionId"]  # the version's, not the alias's
    by_arn = lam.get_function_configuration(FunctionName=f"{ARN}{name}:live")
    assert by_arn["FunctionArn"] == f"{ARN}{name}:live"
    latest = lam.get_function_configuration(FunctionName=name, Qualifier="$LATEST")
    assert latest["FunctionArn"] == f"{ARN}{name}:$LATEST"
    plain = lam.get_function_configuration(FunctionName=name)
    assert plain["FunctionArn"] == f"{ARN}{name}"


def test_create_with_publish_answers_version_1_under_the_unqualified_arn(
    lam: LambdaClient, make_function: Any
) -> None:
    name = make_function("arnpub", Publish=True)
    created = lam.get_function_configuration(FunctionName=name, Qualifier="1")
    assert created["Version"] == "1"
    # The answer of CreateFunction itself (make_function discards it): created again.
    other = unique("arnpub2")
    answer = lam.create_function(
        FunctionName=other,
        Runtime="python3.11",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": returning(1)},
        Publish=True,
    )
    try:
        assert answer["Version"] == "1"
        assert answer["FunctionArn"] == f"{ARN}{other}"
    finally:
        lam.delete_function(FunctionName=other)


@pytest.mark.parametrize(
    ("call", "kwargs", "suffix"),
    [
        ("get_function", {}, ""),
        ("get_function_configuration", {}, ""),
        ("delete_function", {}, ""),
        ("get_function", {"Qualifier": "7"}, ""),
        ("invoke", {}, ":$LATEST"),
        ("put_function_concurrency", {"ReservedConcurrentExecutions": 1}, ":$LATEST"),
        ("list_tags", None, ""),
    ],
    ids=["get", "get-configuration", "delete", "get-version", "invoke", "concurrency", "tags"],
)
def test_a_missing_function_is_named_as_aws_names_it(
    lam: LambdaClient, call: str, kwargs: dict[str, Any] | None, suffix: str
) -> None:
    # Recorded: test_ops_on_nonexisting_fn, test_invoke_exceptions (the :$LATEST of Invoke is
    # from 2025; AWS answered without it in 2023), test_function_concurrency_exceptions.
    name = unique("missing")
    if kwargs is None:
        code, status, message = error_of(getattr(lam, call), Resource=f"{ARN}{name}")
    else:
        code, status, message = error_of(getattr(lam, call), FunctionName=name, **kwargs)
    assert (code, status) == ("ResourceNotFoundException", 404)
    assert message == f"Function not found: {ARN}{name}{suffix}"


def test_missing_versions_and_aliases_are_named_with_their_qualifier(
    lam: LambdaClient, make_function: Any
) -> None:
    # Recorded: test_ops_on_nonexisting_version, get_function_alias_notfound_exc,
    # test_lambda_alias_moving / invocation_exc_not_existent.
    name = make_function("missingq")
    assert error_of(lam.get_function, FunctionName=name, Qualifier="1221")[2] == (
        f"Function not found: {ARN}{name}:1221"
    )
    assert error_of(lam.get_function, FunctionName=name, Qualifier="nosuchalias")[2] == (
        f"Function not found: {ARN}{name}:nosuchalias"
    )
    assert error_of(lam.invoke, FunctionName=name, Qualifier="nosuchalias")[2] == (
        f"Function not found: {ARN}{name}:nosuchalias"
    )


def test_alias_errors_use_each_operations_own_words(lam: LambdaClient, make_function: Any) -> None:
    # Recorded: test_notfound_and_invalid_routingconfigs, test_non_existent_alias_update,
    # test_non_existent_alias_deletion.
    name = make_function("aliaserr")
    lam.publish_version(FunctionName=name)
    assert error_of(lam.get_alias, FunctionName=name, Name="nope") == (
        "ResourceNotFoundException",
        404,
        f"Cannot find alias arn: {ARN}{name}:nope",
    )
    assert error_of(lam.update_alias, FunctionName=name, Name="nope", FunctionVersion="1") == (
        "ResourceNotFoundException",
        404,
        f"Alias not found: {ARN}{name}:nope",
    )
    gone = lam.delete_alias(FunctionName=name, Name="nope")
    assert gone["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert error_of(lam.create_alias, FunctionName=name, Name="a", FunctionVersion="10") == (
        "ResourceNotFoundException",
        404,
        f"Function not found: {ARN}{name}:10",
    )
    lam.create_alias(FunctionName=name, Name="custom", FunctionVersion="1")
    assert error_of(lam.create_alias, FunctionName=name, Name="custom", FunctionVersion="1") == (
        "ResourceConflictException",
        409,
        f"Alias already exists: {ARN}{name}:custom",
    )


# 3. Absent, not empty ------------------------------------------------------------------------
# Recorded: TestLambdaTags::test_tag_lifecycle / get_fn_response_postuntagall, list_tag_lambda_
# empty; test_version_lifecycle (key sets); test_function_lifecycle (Environment).


def test_tags_are_left_out_of_get_function_when_there_are_none(
    lam: LambdaClient, make_function: Any
) -> None:
    name = make_function("tagsgone", Tags={"team": "a"})
    assert lam.get_function(FunctionName=name)["Tags"] == {"team": "a"}
    lam.untag_resource(Resource=f"{ARN}{name}", TagKeys=["team"])
    assert "Tags" not in lam.get_function(FunctionName=name)
    assert lam.list_tags(Resource=f"{ARN}{name}")["Tags"] == {}
    untagged = make_function("tagsnone")
    assert "Tags" not in lam.get_function(FunctionName=untagged)
    assert "Concurrency" not in lam.get_function(FunctionName=untagged)


def test_environment_is_absent_until_given_and_empty_when_given_empty(
    lam: LambdaClient, make_function: Any
) -> None:
    never = make_function("envnever")
    assert "Environment" not in lam.get_function_configuration(FunctionName=never)
    empty = make_function("envempty", Environment={"Variables": {}})
    assert lam.get_function_configuration(FunctionName=empty)["Environment"] == {"Variables": {}}
    cleared = make_function("envcleared", Environment={"Variables": {"MY_A": "1"}})
    lam.update_function_configuration(FunctionName=cleared, Environment={"Variables": {}})
    shown = lam.get_function_configuration(FunctionName=cleared)
    assert shown["Environment"] == {"Variables": {}}
    assert invoke(lam, cleared)["StatusCode"] == 200


def test_list_entries_carry_no_state_update_status_or_runtime_version(
    lam: LambdaClient, make_function: Any
) -> None:
    name = make_function("listkeys")
    entry = lam.list_versions_by_function(FunctionName=name)["Versions"][0]
    absent = {"State", "StateReason", "LastUpdateStatus", "RuntimeVersionConfig"}
    assert absent.isdisjoint(entry)
    listed = next(
        f
        for page in lam.get_paginator("list_functions").paginate()
        for f in page["Functions"]
        if f["FunctionName"] == name
    )
    assert absent.isdisjoint(listed)
    full = lam.get_function_configuration(FunctionName=name)
    assert {"State", "LastUpdateStatus", "RuntimeVersionConfig"} <= set(full)


def test_an_alias_without_weights_has_no_routing_config(
    lam: LambdaClient, two_versions: str
) -> None:
    name = two_versions
    created = lam.create_alias(
        FunctionName=name,
        Name="plain",
        FunctionVersion="1",
        RoutingConfig={"AdditionalVersionWeights": {}},
    )
    assert "RoutingConfig" not in created and created["Description"] == ""
    lam.update_alias(
        FunctionName=name, Name="plain", RoutingConfig={"AdditionalVersionWeights": {"2": 0.5}}
    )
    weighted = lam.get_alias(FunctionName=name, Name="plain")
    assert weighted["RoutingConfig"] == {"AdditionalVersionWeights": {"2": 0.5}}
    updated = lam.update_alias(
        FunctionName=name, Name="plain", RoutingConfig={"AdditionalVersionWeights": {}}
    )
    assert "RoutingConfig" not in updated
    assert "RoutingConfig" not in lam.get_alias(FunctionName=name, Name="plain")


# 4. States in motion -------------------------------------------------------------------------
# Recorded: every CreateFunction answer (147 recordings, 2022-2026), update_func_conf_response,
# test_lambda_code_location_zipfile; functions-states in AWS's Developer Guide.


def test_create_answers_pending_then_the_function_is_active_with_a_new_revision(
    lam: LambdaClient,
) -> None:
    name = unique("pending")
    answer = lam.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": returning(1)},
    )
    try:
        assert answer["State"] == "Pending"
        assert answer["StateReason"] == "The function is being created."
        assert answer["StateReasonCode"] == "Creating"
        assert "LastUpdateStatus" not in answer
        lam.get_waiter("function_active_v2").wait(
            FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
        )
        active = lam.get_function_configuration(FunctionName=name)
        assert active["State"] == "Active" and active["LastUpdateStatus"] == "Successful"
        assert "StateReason" not in active and "LastUpdateStatusReason" not in active
        assert active["RevisionId"] != answer["RevisionId"]
        assert invoke(lam, name)["Body"] == b"1"
    finally:
        lam.delete_function(FunctionName=name)


@pytest.mark.parametrize("operation", ["configuration", "code"])
def test_an_update_answers_in_progress_then_successful_with_a_new_revision(
    lam: LambdaClient, make_function: Any, operation: str
) -> None:
    name = make_function("updating")
    if operation == "configuration":
        answer = lam.update_function_configuration(FunctionName=name, Timeout=9)
    else:
        answer = lam.update_function_code(FunctionName=name, ZipFile=returning(2))
    assert answer["State"] == "Active"
    assert answer["LastUpdateStatus"] == "InProgress"
    # Yes, "being created" for an update: all 41 recorded InProgress answers say so.
    assert answer["LastUpdateStatusReason"] == "The function is being created."
    # (botocore's enum of reason codes lacks "Creating", but AWS sends it.)
    assert dict(answer).get("LastUpdateStatusReasonCode") == "Creating"
    lam.get_waiter("function_updated_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
    )
    settled = lam.get_function_configuration(FunctionName=name)
    assert settled["LastUpdateStatus"] == "Successful"
    assert "LastUpdateStatusReason" not in settled
    assert settled["RevisionId"] != answer["RevisionId"]


def test_update_code_with_publish_answers_the_new_version(
    lam: LambdaClient, make_function: Any
) -> None:
    # Recorded: test_publish_with_update / update_function_code_result (HTTP 200).
    name = make_function("codepub")
    answer = lam.update_function_code(FunctionName=name, ZipFile=returning(5), Publish=True)
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert answer["Version"] == "1"
    assert answer["FunctionArn"] == f"{ARN}{name}:1"
    assert answer["State"] == "Pending" and answer["StateReasonCode"] == "Creating"
    assert "LastUpdateStatus" not in answer
    assert wait_version_active(lam, name, "1")["State"] == "Active"
    assert invoke(lam, name, Qualifier="1")["Body"] == b"5"


def test_a_published_managed_version_that_is_pending_refuses_invocations_as_aws_does(
    lam: LambdaClient, make_function: Any, provider_arn: str
) -> None:
    # Developer Guide, functions-states and troubleshooting-invocation: "ResourceConflict
    # Exception: The operation cannot be performed at this time. The function is currently
    # in the following state: Pending".
    slow = "import time\ntime.sleep(4)\n\ndef handler(event, context):\n    return 1\n"
    name = make_function(
        "lmipending",
        code=zip_code({"app.py": slow}),
        MemorySize=2048,
        CapacityProviderConfig=managed_config(provider_arn),
    )
    published = lam.publish_version(FunctionName=name)
    assert published["State"] == "Pending"
    code, status, message = error_of(lam.invoke, FunctionName=name, Qualifier="1")
    assert (code, status) == ("ResourceConflictException", 409)
    assert message == (
        "The operation cannot be performed at this time. The function is currently in the "
        "following state: Pending"
    )
    wait_version_active(lam, name, "1")
    assert invoke(lam, name, Qualifier="1")["Body"] == b"1"


# 5. Validation as AWS validates ------------------------------------------------------------
# Recorded: TestLambdaFunction::test_function_name_and_qualifier_validation[*],
# test_function_arns, TestRuntimeValidation, TestLambdaSizeLimits.


@pytest.mark.parametrize(
    "value",
    [
        "my-function!",
        "*",
        "invalid-account:function:my-function",
        "arn:aws:lambda:invalid-region:123456789012:function:my-function",
        "arn:aws:ec2:us-east-1:123456789012:instance:i-1234567890abcdef0",
        "arn:aws:lambda:us-east-1:123456789012:function:my-function:1:2",
        "function:my-function:$LATEST:extra",
        "arn:aws:lambda::123456789012:function:my-function",
        "arn:aws:lambda:us-east-1::function:my-function",
        "arn:aws:lambda:us-east-1:123456789012:function:my-function:$LATES",
    ],
)
def test_malformed_names_are_validation_errors_with_aws_server_pattern(
    loose: LambdaClient, value: str
) -> None:
    for call, pattern in (
        (loose.get_function, GET_PATTERN),
        (loose.invoke, GET_PATTERN),
        (loose.delete_function, GET_PATTERN),
    ):
        assert error_of(call, FunctionName=value) == (
            "ValidationException",
            400,
            pattern_error(value, "functionName", pattern),
        )
    code, status, message = error_of(
        loose.create_function,
        FunctionName=value,
        Runtime="python3.11",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": returning(1)},
    )
    assert (code, status) == ("ValidationException", 400)
    assert pattern_error(value, "functionName", CREATE_PATTERN) in message


def test_a_long_name_is_simply_not_found_except_when_creating(loose: LambdaClient) -> None:
    name = "a" * 65
    assert error_of(loose.get_function, FunctionName=name) == (
        "ResourceNotFoundException",
        404,
        f"Function not found: {ARN}{name}",
    )
    assert (
        error_of(loose.invoke, FunctionName=name)[2] == f"Function not found: {ARN}{name}:$LATEST"
    )
    assert error_of(
        loose.create_function,
        FunctionName=name,
        Runtime="python3.11",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": returning(1)},
    ) == (
        "InvalidParameterValueException",
        400,
        f"1 validation error detected: Value '{name}' at 'functionName' failed to satisfy "
        "constraint: Member must have length less than or equal to 64",
    )
    dotted = "my.function"  # allowed by the pattern of Get, not of Create
    assert error_of(loose.get_function, FunctionName=dotted)[0] == "ResourceNotFoundException"


def test_qualifiers_are_checked_with_aws_server_pattern(
    loose: LambdaClient, make_function: Any
) -> None:
    name = make_function("qual")
    assert error_of(loose.get_function, FunctionName=name, Qualifier="invalid!") == (
        "ValidationException",
        400,
        pattern_error("invalid!", "qualifier", QUALIFIER_PATTERN),
    )
    assert error_of(loose.get_function, FunctionName=name, Qualifier="a" * 129) == (
        "ValidationException",
        400,
        f"1 validation error detected: Value '{'a' * 129}' at 'qualifier' failed to satisfy "
        "constraint: Member must have length less than or equal to 128",
    )
    # $latest passes the pattern and names no version.
    assert error_of(loose.get_function, FunctionName=name, Qualifier="$latest") == (
        "ResourceNotFoundException",
        404,
        f"Function not found: {ARN}{name}:$latest",
    )
    assert error_of(loose.invoke, FunctionName=name, Qualifier="$latest")[2] == (
        f"Function not found: {ARN}{name}:$latest"
    )
    assert error_of(loose.get_function, FunctionName=f"{ARN}{name}:$LATEST", Qualifier="1") == (
        "InvalidParameterValueException",
        400,
        "The derived qualifier from the function name does not match the specified qualifier.",
    )


def test_latest_cannot_be_deleted_alone_even_of_a_missing_function(loose: LambdaClient) -> None:
    message = "$LATEST version cannot be deleted without deleting the function."
    missing = unique("gone")
    for kwargs in (
        {"FunctionName": missing, "Qualifier": "$LATEST"},
        {"FunctionName": f"{ARN}{missing}:$LATEST"},
    ):
        assert error_of(loose.delete_function, **kwargs) == (
            "InvalidParameterValueException",
            400,
            message,
        )
    assert error_of(loose.delete_function, FunctionName=missing, Qualifier="$latest") == (
        "ResourceNotFoundException",
        404,
        f"Function not found: {ARN}{missing}",
    )


def test_deleting_a_missing_version_of_an_existing_function_succeeds(
    lam: LambdaClient, make_function: Any
) -> None:
    name = make_function("delver")
    for _ in range(2):  # idempotent
        answer = lam.delete_function(FunctionName=name, Qualifier="1233")
        assert answer["ResponseMetadata"]["HTTPStatusCode"] == 204


@pytest.mark.parametrize("runtime", ["python3.7", "nodejs12.x", "java8", "go1.x", "python2.7"])
def test_a_deprecated_runtime_is_refused_in_aws_words(loose: LambdaClient, runtime: str) -> None:
    assert error_of(
        loose.create_function,
        FunctionName=unique("old"),
        Runtime=runtime,
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": returning(1)},
    ) == (
        "InvalidParameterValueException",
        400,
        f"The runtime parameter of {runtime} is no longer supported for creating or updating "
        "AWS Lambda functions. We recommend you use a supported runtime while creating or "
        "updating functions.",
    )


def test_an_unknown_runtime_lists_aws_runtimes(loose: LambdaClient, make_function: Any) -> None:
    name = make_function("rtupdate")
    for runtime in ("non-existent-runtime", "PYTHON3.9"):
        code, status, message = error_of(
            loose.update_function_configuration, FunctionName=name, Runtime=runtime
        )
        assert (code, status) == ("InvalidParameterValueException", 400)
        assert message.startswith(
            f"Value {runtime} at 'runtime' failed to satisfy constraint: Member must satisfy "
            "enum value set: [nodejs20.x, python3.14, provided.al2023, "
        )
        assert message.endswith("] or be a valid ARN")


def test_environment_over_4_kb_is_refused_with_the_string_measured(
    loose: LambdaClient,
) -> None:
    variables = {"SMALL_VAR": "ok", "LARGE_VAR": "x" * 4096}
    code, status, message = error_of(
        loose.create_function,
        FunctionName=unique("bigenv"),
        Runtime="python3.11",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": returning(1)},
        Environment={"Variables": variables},
    )
    assert (code, status) == ("InvalidParameterValueException", 400)
    assert message == (
        "Lambda was unable to configure your environment variables because the environment "
        "variables you have provided exceeded the 4KB limit. String measured: "
        + json.dumps(variables, separators=(",", ":"))
    )


def test_a_zip_over_50_mb_is_request_entity_too_large(loose: LambdaClient) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("app.py", "def handler(e, c):\n    return 1\n")
        archive.writestr("noise.bin", os.urandom(50 * 1024 * 1024 + 1))
    assert error_of(
        loose.create_function,
        FunctionName=unique("bigzip"),
        Runtime="python3.11",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": buffer.getvalue()},
    ) == ("RequestEntityTooLargeException", 413, "Zipped size must be smaller than 52428800 bytes")


def test_tags_on_a_qualified_arn_and_empty_tag_requests_are_refused(
    loose: LambdaClient, make_function: Any
) -> None:
    # Recorded: TestLambdaTag::test_tag_exceptions.
    name = make_function("tagerr")
    assert error_of(loose.tag_resource, Resource=f"{ARN}{name}:$LATEST", Tags={"a": "b"}) == (
        "InvalidParameterValueException",
        400,
        "Tags on function aliases and versions are not supported. Please specify a function ARN.",
    )
    assert error_of(loose.tag_resource, Resource=f"{ARN}{name}", Tags={}) == (
        "InvalidParameterValueException",
        400,
        "An error occurred and the request cannot be processed.",
    )


def test_tagging_changes_the_function_revision(lam: LambdaClient, make_function: Any) -> None:
    # Recorded: TestLambdaTags::test_tag_lifecycle (get_fn_response_* revisions).
    name = make_function("tagrev")
    before = lam.get_function(FunctionName=name)["Configuration"]["RevisionId"]
    lam.tag_resource(Resource=f"{ARN}{name}", Tags={"a": "b"})
    tagged = lam.get_function(FunctionName=name)["Configuration"]["RevisionId"]
    lam.untag_resource(Resource=f"{ARN}{name}", TagKeys=["a"])
    untagged = lam.get_function(FunctionName=name)["Configuration"]["RevisionId"]
    assert len({before, tagged, untagged}) == 3


def test_update_alias_gives_a_new_revision_even_without_a_change(
    lam: LambdaClient, make_function: Any
) -> None:
    # Recorded: test_alias_lifecycle / update_alias_1_2.
    name = make_function("aliasrev")
    lam.publish_version(FunctionName=name)
    created = lam.create_alias(FunctionName=name, Name="same", FunctionVersion="1")
    updated = lam.update_alias(FunctionName=name, Name="same")
    assert updated["RevisionId"] != created["RevisionId"]


# The same with the AWS CLI ----------------------------------------------------------------


def test_the_aws_cli_sees_the_same_states_absences_and_errors(server: Server, tmp: Path) -> None:
    code = tmp / "code.zip"
    code.write_bytes(returning(3))
    name = unique("cli")
    created = run_aws(
        server,
        "create-function",
        "--function-name",
        name,
        "--runtime",
        "python3.11",
        "--role",
        ROLE,
        "--handler",
        "app.handler",
        "--zip-file",
        f"fileb://{code}",
    )
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["State"] == "Pending"
    waited = run_aws(server, "wait", "function-active-v2", "--function-name", name)
    assert waited.returncode == 0, waited.stderr
    shown = json.loads(run_aws(server, "get-function", "--function-name", name).stdout)
    assert shown["Configuration"]["State"] == "Active" and "Tags" not in shown
    refused = run_aws(server, "delete-function", "--function-name", name, "--qualifier", "$LATEST")
    assert refused.returncode != 0
    assert "InvalidParameterValueException" in refused.stderr
    assert "$LATEST version cannot be deleted without deleting the function." in refused.stderr
    listed = json.loads(
        run_aws(server, "list-versions-by-function", "--function-name", name).stdout
    )
    assert listed["Versions"][0]["FunctionArn"].endswith(f":{name}:$LATEST")
    assert run_aws(server, "delete-function", "--function-name", name).returncode == 0

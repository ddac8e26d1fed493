"""Edges of function settings, code, listing, publishing and reserved concurrency.

Every call goes through boto3 (with botocore's own checks off, so Corral's are what is
tested) or raw HTTP, and every answer is checked for the error name, status and message
that AWS gives.
"""

from __future__ import annotations

import base64
import hashlib
import json
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

UNCHECKED_CLIENT = True  # botocore's own checks are skipped: Corral's are tested


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

"""Bad input gets the error AWS would give: right name, right status, never a 500."""

from __future__ import annotations

import io
import json
import stat
import urllib.error
import urllib.request
import zipfile
from typing import Any

import pytest

from tests.conftest import unique
from tests.helpers import ROLE, LambdaClient, echo_zip, error_of, managed_config

UNCHECKED_CLIENT = True  # botocore's own checks are skipped: Corral's are tested


def create(lam: LambdaClient, **overrides: Any) -> Any:
    params: dict[str, Any] = {
        "FunctionName": unique("bad"),
        "Runtime": "python3.11",
        "Role": ROLE,
        "Handler": "app.handler",
        "Code": {"ZipFile": echo_zip()},
    }
    params.update(overrides)
    return lam.create_function(**params)


def zip_with(entries: list[tuple[zipfile.ZipInfo | str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for info, data in entries:
            archive.writestr(info, data)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (b"this is not a zip", "Could not unzip uploaded file"),
        (b"PK\x03\x04" + b"\x00" * 40, "Could not unzip uploaded file"),
        (zip_with([("../escape.py", b"x=1")]), "escapes the code directory"),
        (zip_with([("/abs.py", b"x=1")]), "escapes the code directory"),
    ],
    ids=["not-a-zip", "truncated", "zip-slip", "absolute-path"],
)
def test_malformed_or_escaping_zips_are_refused(
    lam: LambdaClient, code: bytes, expected: str
) -> None:
    name, status, message = error_of(create, lam=lam, Code={"ZipFile": code})
    assert (name, status) == ("InvalidParameterValueException", 400)
    assert expected in message


def test_a_symlink_out_of_the_code_root_is_refused(lam: LambdaClient) -> None:
    link = zipfile.ZipInfo("evil")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    name, status, message = error_of(
        create, lam=lam, Code={"ZipFile": zip_with([(link, b"/etc/passwd")])}
    )
    assert (name, status) == ("InvalidParameterValueException", 400)
    assert "points outside" in message


def test_a_zip_bomb_over_the_unzipped_limit_is_refused(lam: LambdaClient) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("big.bin", b"\0" * (263 * 1024 * 1024))
    name, status, message = error_of(create, lam=lam, Code={"ZipFile": buffer.getvalue()})
    assert (name, status) == ("InvalidParameterValueException", 400)
    assert "Unzipped size must be smaller than 262144000 bytes" in message


def test_an_unknown_runtime_lists_what_is_available(lam: LambdaClient) -> None:
    name, status, message = error_of(create, lam=lam, Runtime="cobol85")
    assert (name, status) == ("InvalidParameterValueException", 400)
    assert "Value cobol85 at 'runtime' failed to satisfy constraint" in message
    # A runtime Lambda knows that Corral does not run says what Corral runs.
    name, status, message = error_of(create, lam=lam, Runtime="java21")
    assert (name, status) == ("InvalidParameterValueException", 400)
    assert "The runtime java21 is not available on this Corral server" in message
    assert "nodejs22.x, nodejs24.x, python3.11" in message


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("MemorySize", 64, "ValidationException"),
        ("MemorySize", 20000, "ValidationException"),
        ("Timeout", 0, "ValidationException"),
        ("Timeout", 901, "ValidationException"),
        ("Role", "not-a-role", "ValidationException"),
        ("Handler", "has space", "ValidationException"),
        ("Architectures", ["sparc"], "ValidationException"),
        ("Environment", {"Variables": {"AWS_REGION": "x"}}, "InvalidParameterValueException"),
        ("Environment", {"Variables": {"BIG": "x" * 5000}}, "InvalidParameterValueException"),
        (
            "LoggingConfig",
            {"LogFormat": "Text", "ApplicationLogLevel": "INFO"},
            "InvalidParameterValueException",
        ),
        (
            "Layers",
            ["arn:aws:lambda:us-east-1:123456789012:layer:l:1"],
            "InvalidParameterValueException",
        ),
    ],
)
def test_invalid_settings_are_refused(
    lam: LambdaClient, field: str, value: Any, error: str
) -> None:
    name, status, _ = error_of(create, lam=lam, **{field: value})
    assert (name, status) == (error, 400)


@pytest.mark.parametrize(
    "name",
    ["has space", "x" * 65, "arn:aws:lambda:us-east-1:123456789012:function:a:b:c", "bad/slash"],
)
def test_invalid_function_names_are_refused(lam: LambdaClient, name: str) -> None:
    code, status, _ = error_of(create, lam=lam, FunctionName=name)
    assert status == 400 and code in ("ValidationException", "InvalidParameterValueException")


def test_unknown_function_version_and_alias_are_not_found(
    lam: LambdaClient, make_function: Any
) -> None:
    missing = unique("missing")
    assert error_of(lam.get_function, FunctionName=missing)[:2] == (
        "ResourceNotFoundException",
        404,
    )
    assert error_of(lam.invoke, FunctionName=missing)[:2] == ("ResourceNotFoundException", 404)
    name = make_function("exists")
    assert error_of(lam.get_function, FunctionName=name, Qualifier="7")[:2] == (
        "ResourceNotFoundException",
        404,
    )
    assert error_of(lam.invoke, FunctionName=name, Qualifier="nosuch")[:2] == (
        "ResourceNotFoundException",
        404,
    )
    code, status, message = error_of(lam.get_alias, FunctionName=name, Name="nosuch")
    assert (code, status) == ("ResourceNotFoundException", 404)
    assert message.startswith("Cannot find alias arn:")
    other_region = f"arn:aws:lambda:eu-west-1:123456789012:function:{name}"
    assert error_of(lam.get_function, FunctionName=other_region)[:2] == (
        "ResourceNotFoundException",
        404,
    )


def test_duplicate_create_is_a_conflict(lam: LambdaClient, make_function: Any) -> None:
    name = make_function("dup")
    code, status, message = error_of(create, lam=lam, FunctionName=name)
    assert (code, status) == ("ResourceConflictException", 409)
    assert message == f"Function already exist: {name}"


def test_invalid_json_payload_is_invalid_request_content(
    lam: LambdaClient, make_function: Any
) -> None:
    name = make_function("json")
    code, status, message = error_of(lam.invoke, FunctionName=name, Payload=b"{not json")
    assert (code, status) == ("InvalidRequestContentException", 400)
    assert message.startswith("Could not parse request body into json")


def test_a_payload_over_6_mb_is_request_too_large(lam: LambdaClient, make_function: Any) -> None:
    name = make_function("big")
    payload = json.dumps("x" * (6 * 1024 * 1024)).encode()
    code, status, message = error_of(lam.invoke, FunctionName=name, Payload=payload)
    assert (code, status) == ("RequestTooLargeException", 413)
    assert "6291456 bytes" in message


def test_a_response_over_6_mb_is_a_function_error(lam: LambdaClient, make_function: Any) -> None:
    name = make_function("bigout", MemorySize=512)
    response = lam.invoke(FunctionName=name, Payload=json.dumps({"big": 7 * 1024 * 1024}))
    assert response["FunctionError"] == "Unhandled"
    assert json.loads(response["Payload"].read())["errorType"] == "Function.ResponseSizeTooLarge"


def test_managed_instances_rules_are_enforced(lam: LambdaClient, provider_arn: str) -> None:
    config = managed_config(provider_arn)
    assert error_of(create, lam=lam, MemorySize=1024, CapacityProviderConfig=config)[:2] == (
        "InvalidParameterValueException",
        400,
    )
    assert error_of(create, lam=lam, MemorySize=3072, CapacityProviderConfig=config)[:2] == (
        "InvalidParameterValueException",
        400,
    )
    odd_ratio = {
        "LambdaManagedInstancesCapacityProviderConfig": {
            "CapacityProviderArn": provider_arn,
            "ExecutionEnvironmentMemoryGiBPerVCpu": 3.0,
        }
    }
    assert error_of(create, lam=lam, MemorySize=6144, CapacityProviderConfig=odd_ratio)[0] == (
        "InvalidParameterValueException"
    )
    too_many = managed_config(provider_arn, 1601)
    assert error_of(create, lam=lam, MemorySize=2048, CapacityProviderConfig=too_many)[:2] == (
        "ValidationException",
        400,
    )
    unknown = managed_config(provider_arn.replace(provider_arn.rsplit(":", 1)[-1], "nope"))
    assert error_of(create, lam=lam, MemorySize=2048, CapacityProviderConfig=unknown)[:2] == (
        "ResourceNotFoundException",
        404,
    )


def test_capacity_config_cannot_be_added_to_a_classic_function(
    lam: LambdaClient, make_function: Any, provider_arn: str
) -> None:
    name = make_function("classic")
    code, status, message = error_of(
        lam.update_function_configuration,
        FunctionName=name,
        CapacityProviderConfig=managed_config(provider_arn),
        MemorySize=2048,
    )
    assert (code, status) == ("InvalidParameterValueException", 400)
    assert message == "CapacityProviderConfig isn't supported for Lambda Default functions."


def test_capacity_provider_input_errors(lam: LambdaClient) -> None:
    from tests.helpers import OPERATOR, SUBNETS

    assert error_of(lam.get_capacity_provider, CapacityProviderName="nope")[:2] == (
        "ResourceNotFoundException",
        404,
    )
    assert error_of(
        lam.create_capacity_provider,
        CapacityProviderName="x",
        VpcConfig=SUBNETS,
        PermissionsConfig=OPERATOR,
        CapacityProviderScalingConfig={"MaxVCpuCount": 1},
    )[:2] == ("ValidationException", 400)
    assert error_of(
        lam.create_capacity_provider,
        CapacityProviderName="x",
        VpcConfig=SUBNETS,
        PermissionsConfig=OPERATOR,
        CapacityProviderScalingConfig={"ScalingMode": "Manual"},
    )[:2] == ("InvalidParameterValueException", 400)
    assert error_of(
        lam.create_capacity_provider,
        CapacityProviderName="x",
        VpcConfig=SUBNETS,
        PermissionsConfig=OPERATOR,
        InstanceRequirements={
            "AllowedInstanceTypes": ["m7g.*"],
            "ExcludedInstanceTypes": ["c7g.*"],
        },
    )[:2] == ("InvalidParameterValueException", 400)
    lam.create_capacity_provider(
        CapacityProviderName="dup-cp", VpcConfig=SUBNETS, PermissionsConfig=OPERATOR
    )
    assert error_of(
        lam.create_capacity_provider,
        CapacityProviderName="dup-cp",
        VpcConfig=SUBNETS,
        PermissionsConfig=OPERATOR,
    )[:2] == ("ResourceConflictException", 409)
    lam.delete_capacity_provider(CapacityProviderName="dup-cp")


def test_raw_http_garbage_gets_lambda_errors_not_500(server: Any, make_function: Any) -> None:
    name = make_function("raw")
    cases = [
        ("POST", "/2015-03-31/functions", b"{not json", 400),
        ("POST", "/2015-03-31/functions", b"[1, 2]", 400),
        ("POST", "/2015-03-31/functions", b'{"FunctionName": 5}', 400),
        ("POST", "/2015-03-31/functions", b"[" * 100000, 400),
        ("PUT", f"/2015-03-31/functions/{name}/configuration", b'{"MemorySize": "big"}', 400),
        ("PUT", f"/2015-03-31/functions/{name}/configuration", b'{"Timeout": true}', 400),
        (
            "POST",
            f"/2015-03-31/functions/{name}/invocations",
            '"\udc80"'.encode("utf-8", "surrogatepass"),
            400,
        ),
        ("GET", "/2015-03-31/functions/x/nothing-here", b"", 404),
        ("GET", "/2015-03-31/functions?MaxItems=abc", b"", 400),
        ("GET", "/2015-03-31/functions?Marker=%%%", b"", 400),
    ]
    for method, path, body, expected in cases:
        request = urllib.request.Request(
            server.url + path,
            data=body or None,
            method=method,
            headers=server.signed(method, path, body),
        )
        try:
            with urllib.request.urlopen(request) as response:
                status, error_type = response.status, ""
        except urllib.error.HTTPError as exc:
            status, error_type = exc.code, exc.headers.get("x-amzn-ErrorType", "")
            json.loads(exc.read() or b"{}")
        assert status == expected, (method, path, status, error_type)
        assert error_type, (method, path)

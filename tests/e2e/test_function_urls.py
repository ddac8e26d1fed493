"""Function URLs as Lambda users meet them: configured with boto3 and the AWS CLI, called
with curl and httpx like any HTTP endpoint.

Real server, real functions. The function echoes the event it got (AWS's payload format
2.0) so the tests check it field by field; answers are checked as the caller sees them.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.conftest import unique
from tests.helpers import Server, corral_cli, error_of, run_aws, zip_code

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient

APP = """
import base64, json

def handler(event, context):
    path = event["rawPath"]
    print("serving", path)
    if path == "/bare":
        return {"hello": "world"}
    if path == "/text":
        return "just text"
    if path == "/binary":
        return {"statusCode": 201, "headers": {"content-type": "application/octet-stream"},
                "body": base64.b64encode(bytes(range(256))).decode(), "isBase64Encoded": True}
    if path == "/fail":
        raise RuntimeError("broken")
    if path == "/bad-status":
        return {"statusCode": "teapot"}
    return {"statusCode": 200,
            "headers": {"content-type": "application/json", "x-custom": "yes",
                        "access-control-allow-origin": "https://other.example"},
            "cookies": ["a=1; Path=/", "b=2"],
            "body": json.dumps(event)}
"""


@pytest.fixture
def app_fn(make_function: Any) -> str:
    name: str = make_function("web", code=zip_code({"app.py": APP}))
    return name


def curl(*args: str) -> tuple[int, dict[str, list[str]], bytes]:
    """``curl -i ARGS``: status, headers (lower-cased names), body."""
    done = subprocess.run(["curl", "-sS", "-i", *args], capture_output=True, timeout=60, check=True)
    head, _, body = done.stdout.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers: dict[str, list[str]] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    return int(lines[0].split()[1]), headers, body


def signed(
    url: str, key: tuple[str, str], method: str = "GET", body: bytes = b""
) -> httpx.Response:
    """An HTTP request to a function URL signed with SigV4 for ``lambda``, as AWS's docs
    describe for AWS_IAM URLs (a body is sent as JSON)."""
    headers = {"content-type": "application/json"} if body else {}
    request = AWSRequest(method=method, url=url, data=body, headers=headers)
    SigV4Auth(Credentials(*key), "lambda", "us-east-1").add_auth(request)
    return httpx.request(method, url, content=body, headers=dict(request.headers.items()))


def test_url_configs_are_kept_as_aws_keeps_them(
    lam: LambdaClient, server: Server, app_fn: str
) -> None:
    made = lam.create_function_url_config(FunctionName=app_fn, AuthType="NONE")
    assert made["ResponseMetadata"]["HTTPStatusCode"] == 201
    url = made["FunctionUrl"]
    assert url.startswith(f"{server.url}/lambda-url/") and url.endswith("/")
    url_id = url.rstrip("/").rsplit("/", 1)[1]
    assert len(url_id) == 32 and url_id.isalnum() and url_id.islower()
    assert made["FunctionArn"] == f"arn:aws:lambda:us-east-1:123456789012:function:{app_fn}"
    # InvokeMode is in Create's answer only when given; times have microseconds.
    assert made["AuthType"] == "NONE" and "InvokeMode" not in made and "Cors" not in made
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", made["CreationTime"])
    assert lam.get_function_url_config(FunctionName=app_fn)["InvokeMode"] == "BUFFERED"
    error, status, message = error_of(
        lam.create_function_url_config, FunctionName=app_fn, AuthType="NONE"
    )
    assert (error, status) == ("ResourceConflictException", 409)
    assert "FunctionUrlConfig exists for this Lambda function" in message
    cors = {"AllowOrigins": ["https://app.example"], "MaxAge": 600}
    updated = lam.update_function_url_config(FunctionName=app_fn, AuthType="AWS_IAM", Cors=cors)
    assert updated["FunctionUrl"] == url and updated["AuthType"] == "AWS_IAM"
    assert updated["Cors"] == cors and "LastModifiedTime" in updated
    assert lam.get_function_url_config(FunctionName=app_fn)["Cors"] == cors
    # An alias gets its own URL; a version number cannot have one.
    lam.publish_version(FunctionName=app_fn)
    lam.create_alias(FunctionName=app_fn, Name="live", FunctionVersion="1")
    live = lam.create_function_url_config(
        FunctionName=app_fn, Qualifier="live", AuthType="NONE", InvokeMode="RESPONSE_STREAM"
    )
    assert live["FunctionArn"].endswith(f"{app_fn}:live") and live["FunctionUrl"] != url
    listed = lam.list_function_url_configs(FunctionName=app_fn)["FunctionUrlConfigs"]
    assert sorted(c["FunctionUrl"] for c in listed) == sorted([url, live["FunctionUrl"]])
    page = lam.list_function_url_configs(FunctionName=app_fn, MaxItems=1)
    assert len(page["FunctionUrlConfigs"]) == 1 and "NextMarker" in page
    error, status, _ = error_of(
        lam.create_function_url_config, FunctionName=app_fn, Qualifier="1", AuthType="NONE"
    )
    assert (error, status) == ("ValidationException", 400)
    error, status, message = error_of(
        lam.create_function_url_config, FunctionName=app_fn, Qualifier="nope", AuthType="NONE"
    )
    assert (error, status, message) == ("ResourceNotFoundException", 404, "Function does not exist")
    error, status, message = error_of(
        lam.create_function_url_config, FunctionName=unique("ghost"), AuthType="NONE"
    )
    assert (error, status, message) == ("ResourceNotFoundException", 404, "Function does not exist")
    error, status, message = error_of(
        lam.update_function_url_config, FunctionName=app_fn, Cors={"AllowMethods": ["OPTIONS"]}
    )
    # OPTIONS is longer than a Method may be (6): preflights are the URL's to answer.
    assert (error, status) == ("ValidationException", 400) and "allowMethods" in message
    raw = server.client(parameter_validation=False)
    for bad in (
        {"AuthType": "OPEN"},
        {"AuthType": "NONE", "InvokeMode": "FAST"},
        {"AuthType": "NONE", "Cors": {"MaxAge": 100000}},
        {"AuthType": "NONE", "Cors": {"AllowMethods": ["GET"] * 7}},
    ):
        error, status, _ = error_of(raw.update_function_url_config, FunctionName=app_fn, **bad)
        assert (error, status) == ("ValidationException", 400), bad
    error, status, _ = error_of(raw.create_function_url_config, FunctionName=app_fn)
    assert (error, status) == ("ValidationException", 400)  # AuthType is required
    # An update naming nothing changes nothing.
    same = raw.update_function_url_config(FunctionName=app_fn)
    assert same["AuthType"] == "AWS_IAM" and same["Cors"] == cors
    # The AWS CLI reads the same; the alias' URL goes with the alias.
    done = run_aws(server, "get-function-url-config", "--function-name", app_fn)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["FunctionUrl"] == url
    lam.delete_alias(FunctionName=app_fn, Name="live")
    assert [
        c["FunctionUrl"]
        for c in lam.list_function_url_configs(FunctionName=app_fn)["FunctionUrlConfigs"]
    ] == [url]
    lam.delete_function_url_config(FunctionName=app_fn)
    error, status, message = error_of(lam.get_function_url_config, FunctionName=app_fn)
    assert (error, status) == ("ResourceNotFoundException", 404)
    assert message == "The resource you requested does not exist."
    # A URL that is gone answers as AWS answers an unknown URL id.
    status, headers, body = curl(url)
    assert (status, json.loads(body)) == (403, {"Message": None})
    assert headers["x-amzn-errortype"] == ["AccessDeniedException"]


def test_a_public_url_turns_http_into_payload_format_2(
    lam: LambdaClient, server: Server, app_fn: str
) -> None:
    url = lam.create_function_url_config(FunctionName=app_fn, AuthType="NONE")["FunctionUrl"]
    status, headers, body = curl(
        f"{url}echo/deep?x=1&x=2&y=",
        "-H",
        "Cookie: session=abc; theme=dark",
        "-H",
        "X-Many: one",
        "-H",
        "X-Many: two",
        "-A",
        "tester/1.0",
    )
    assert status == 200
    assert headers["x-custom"] == ["yes"] and headers["set-cookie"] == ["a=1; Path=/", "b=2"]
    event = json.loads(body)
    assert event["version"] == "2.0" and event["routeKey"] == "$default"
    assert event["rawPath"] == "/echo/deep"
    assert event["rawQueryString"] == "x=1&x=2&y="
    assert event["queryStringParameters"] == {"x": "1,2", "y": ""}
    assert event["cookies"] == ["session=abc", "theme=dark"]
    assert event["headers"]["cookie"] == "session=abc; theme=dark"  # kept, as AWS does
    assert event["headers"]["x-many"] == "one,two"
    assert event["headers"]["user-agent"] == "tester/1.0"
    assert event["isBase64Encoded"] is False and "body" not in event
    context = event["requestContext"]
    assert context["http"] == {
        "method": "GET",
        "path": "/echo/deep",
        "protocol": "HTTP/1.1",
        "sourceIp": "127.0.0.1",
        "userAgent": "tester/1.0",
    }
    assert context["apiId"] == url.rstrip("/").rsplit("/", 1)[1]
    assert context["accountId"] == "anonymous" and "authorizer" not in context
    assert context["requestId"] == headers["x-amzn-requestid"][0]
    assert context["stage"] == "$default" and isinstance(context["timeEpoch"], int)
    # Text bodies come as text, binary ones base64-encoded.
    event = httpx.post(f"{url}echo", json={"a": 1}).json()
    assert event["body"] == '{"a":1}' and event["isBase64Encoded"] is False
    assert event["requestContext"]["http"]["method"] == "POST"
    blob = bytes(range(256)) * 4
    event = httpx.post(
        f"{url}echo", content=blob, headers={"content-type": "application/octet-stream"}
    ).json()
    assert event["isBase64Encoded"] is True and base64.b64decode(event["body"]) == blob
    # Answers: binary, a bare value, a string, a function error, a malformed answer.
    answer = httpx.get(f"{url}binary")
    assert answer.status_code == 201 and answer.content == bytes(range(256))
    assert answer.headers["content-type"] == "application/octet-stream"
    # A bare value: re-serialized compactly; a string: its text (as recorded on AWS).
    answer = httpx.get(f"{url}bare")
    assert answer.status_code == 200 and answer.content == b'{"hello":"world"}'
    assert answer.headers["content-type"] == "application/json"
    answer = httpx.get(f"{url}text")
    assert answer.status_code == 200 and answer.text == "just text"
    answer = httpx.get(f"{url}fail")
    assert answer.status_code == 502 and answer.text == "Internal Server Error"
    assert httpx.get(f"{url}bad-status").status_code == 502
    # Over 6 MB: refused before the function runs.
    answer = httpx.post(f"{url}echo", content=b"x" * (6 * 1024 * 1024 + 1))
    assert answer.status_code == 413
    # A throttle is a 429.
    lam.put_function_concurrency(FunctionName=app_fn, ReservedConcurrentExecutions=0)
    answer = httpx.get(f"{url}echo")
    assert answer.status_code == 429 and answer.json() == {"Message": "Rate Exceeded."}
    lam.delete_function_concurrency(FunctionName=app_fn)
    # AWS's form of address: a Host name per URL, the whole path the function's.
    url_id = url.rstrip("/").rsplit("/", 1)[1]
    host = f"{url_id}.lambda-url.us-east-1.localhost"
    event = httpx.get(f"{server.url}/by-host?q=1", headers={"host": host}).json()
    assert event["rawPath"] == "/by-host" and event["requestContext"]["domainName"] == host
    assert event["requestContext"]["domainPrefix"] == url_id
    # `corral status` says the URL is public.
    done = corral_cli(server, "status")
    assert done.exit_code == 0 and url in done.stdout and "public" in done.stdout


def test_an_aws_iam_url_takes_only_signed_requests_by_keys_that_may_invoke(
    lam: LambdaClient, server: Server, app_fn: str
) -> None:
    url = lam.create_function_url_config(FunctionName=app_fn, AuthType="AWS_IAM")["FunctionUrl"]
    answer = httpx.get(f"{url}echo")
    assert answer.status_code == 403 and answer.json()["Message"].startswith("Forbidden.")
    assert answer.headers["x-amzn-errortype"] == "AccessDeniedException"
    event = signed(f"{url}echo", server.admin_key).json()
    assert "authorization" not in event["headers"]  # the signature stays with Corral
    iam = event["requestContext"]["authorizer"]["iam"]
    assert iam["accessKey"] == server.admin_key[0]
    assert event["requestContext"]["accountId"] == "123456789012"
    # A signed POST: the body is part of the signature.
    event = signed(f"{url}echo", server.admin_key, "POST", b'{"n": 1}').json()
    assert event["body"] == '{"n": 1}'
    # Keys that may invoke only other functions are refused; a wrong secret too.
    other = corral_cli(server, "keys", "create", "--function-pattern", "other-*", "--json")
    mine = corral_cli(server, "keys", "create", "--function-pattern", f"{app_fn}*", "--json")
    other_key = json.loads(other.stdout)
    mine_key = json.loads(mine.stdout)
    assert (
        signed(f"{url}echo", (other_key["AccessKeyId"], other_key["SecretAccessKey"])).status_code
        == 403
    )
    assert signed(f"{url}echo", (server.admin_key[0], "wrong")).status_code == 403
    answer = signed(f"{url}echo", (mine_key["AccessKeyId"], mine_key["SecretAccessKey"]))
    assert answer.status_code == 200
    # curl signs too (--aws-sigv4), as the README shows.
    status, _, body = curl(
        f"{url}echo",
        "--aws-sigv4",
        "aws:amz:us-east-1:lambda",
        "--user",
        f"{mine_key['AccessKeyId']}:{mine_key['SecretAccessKey']}",
    )
    assert status == 200 and json.loads(body)["rawPath"] == "/echo"
    done = corral_cli(server, "status")
    assert url in done.stdout and "AWS_IAM" in done.stdout


def test_cors_preflights_are_answered_from_the_config(
    lam: LambdaClient, server: Server, app_fn: str
) -> None:
    url = lam.create_function_url_config(
        FunctionName=app_fn,
        AuthType="NONE",
        Cors={
            "AllowOrigins": ["https://app.example"],
            "AllowMethods": ["GET", "POST"],
            "AllowHeaders": ["x-token"],
            "ExposeHeaders": ["x-custom"],
            "MaxAge": 600,
            "AllowCredentials": True,
        },
    )["FunctionUrl"]
    served_before = [m for m in server.log_messages(app_fn) if m.startswith("serving")]
    status, headers, _ = curl(
        "-X",
        "OPTIONS",
        f"{url}echo",
        "-H",
        "Origin: https://app.example",
        "-H",
        "Access-Control-Request-Method: POST",
        "-H",
        "Access-Control-Request-Headers: x-token",
    )
    assert status == 200
    assert headers["access-control-allow-origin"] == ["https://app.example"]
    assert headers["access-control-allow-methods"] == ["GET,POST"]
    assert headers["access-control-allow-headers"] == ["x-token"]
    assert headers["access-control-max-age"] == ["600"]
    assert headers["access-control-allow-credentials"] == ["true"]
    # The function never saw the preflight.
    assert [m for m in server.log_messages(app_fn) if m.startswith("serving")] == served_before
    # An allowed origin gets the URL's headers; as on AWS, the function's own stay too.
    answer = httpx.get(f"{url}echo", headers={"origin": "https://app.example"})
    assert answer.headers.get_list("access-control-allow-origin") == [
        "https://other.example",
        "https://app.example",
    ]
    assert answer.headers["access-control-expose-headers"] == "x-custom"
    # Another origin gets none of the URL's.
    answer = httpx.get(f"{url}echo", headers={"origin": "https://evil.example"})
    assert answer.headers.get_list("access-control-allow-origin") == ["https://other.example"]
    assert "access-control-expose-headers" not in answer.headers

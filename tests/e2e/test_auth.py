"""Authentication and authorisation as a user meets them: SigV4 with the keys ``corral
serve`` creates, invoke-only keys, and AWS's errors for everything else."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import stat
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from unittest import mock

import boto3
import botocore
import botocore.exceptions
import httpx
import pytest
from botocore.config import Config

from tests.helpers import (
    LambdaClient,
    Server,
    echo_zip,
    error_of,
    raw,
    sign,
    start_server,
    zip_code,
)
from tests.helpers import (
    corral_cli as corral,
)


def create_key(server: Server, *args: str) -> dict[str, Any]:
    done = corral(server, "keys", "create", *args, "--json")
    assert done.exit_code == 0, done.output
    key: dict[str, Any] = json.loads(done.stdout)
    return key


def keyed(server: Server, key: dict[str, Any], **config: Any) -> LambdaClient:
    return server.client((key["AccessKeyId"], key["SecretAccessKey"]), **config)


def test_the_first_serve_writes_an_admin_key_the_aws_tools_use_as_they_are(
    server: Server, tmp: Path
) -> None:
    credentials = server.credentials_path
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    for private in ("corral.db", "logs.db"):
        assert stat.S_IMODE((server.data_dir / private).stat().st_mode) == 0o600
    text = credentials.read_text()
    assert text.startswith("[corral]\n") and "aws_secret_access_key = " in text
    # The banner tells how to use it, without printing the secret.
    log = server.log()
    assert f"export AWS_SHARED_CREDENTIALS_FILE={credentials.resolve()}" in log.replace("\n", "")
    assert "export AWS_PROFILE=corral" in log
    # boto3 with nothing but those variables (a fresh session reads them).
    env = {"AWS_SHARED_CREDENTIALS_FILE": str(credentials), "AWS_PROFILE": "corral"}
    with mock.patch.dict(os.environ, env):
        lam = boto3.Session().client("lambda", endpoint_url=server.url, region_name="us-east-1")
        assert lam.list_functions()["Functions"] is not None
        lam.close()
    # The AWS CLI, likewise.
    done = subprocess.run(
        [sys.executable, "-m", "awscli", "lambda", "list-functions", "--endpoint-url", server.url],
        capture_output=True,
        text=True,
        env={**os.environ, **env, "AWS_DEFAULT_REGION": "us-east-1"},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "Functions" in json.loads(done.stdout)


def test_unsigned_requests_get_a_missing_token(server: Server) -> None:
    status, error, body = raw(server, "GET", "/2015-03-31/functions/", signed=False)
    assert (status, error, body) == (
        403,
        "MissingAuthenticationTokenException",
        {"message": "Missing Authentication Token"},
    )
    unsigned = boto3.client(
        "lambda",
        endpoint_url=server.url,
        region_name="us-east-1",
        config=Config(signature_version=botocore.UNSIGNED),
    )
    try:
        assert error_of(unsigned.list_functions)[:2] == ("MissingAuthenticationTokenException", 403)
        code, status, _ = error_of(unsigned.invoke, FunctionName="anything", Payload=b"{}")
        assert (code, status) == ("MissingAuthenticationTokenException", 403)
    finally:
        unsigned.close()
    # Health checks need no key and say nothing else.
    health = httpx.get(f"{server.url}/health", timeout=10)
    assert health.status_code == 200 and health.json()["status"] == "ok"


def test_a_wrong_secret_an_unknown_key_a_wrong_region_and_an_old_signature_are_refused(
    server: Server,
) -> None:
    key_id, secret = server.admin_key
    wrong = server.client((key_id, secret[:-1] + ("A" if secret[-1] != "A" else "B")))
    code, status, message = error_of(wrong.list_functions)
    assert (code, status) == ("InvalidSignatureException", 403)
    assert message.startswith("The request signature we calculated does not match")
    unknown = server.client(("AKIAIOSFODNN7EXAMPLE", secret))
    assert error_of(unknown.list_functions) == (
        "UnrecognizedClientException",
        403,
        "The security token included in the request is invalid.",
    )
    elsewhere = boto3.client(
        "lambda",
        endpoint_url=server.url,
        region_name="eu-west-3",
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
    )
    try:
        code, status, message = error_of(elsewhere.list_functions)
        assert (code, status) == ("InvalidSignatureException", 403)
        assert "scoped to a valid region, not 'eu-west-3'" in message
    finally:
        elsewhere.close()
    # Signed ten minutes ago (a replayed or delayed request): expired.
    past = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(minutes=10)
    with mock.patch("botocore.auth.get_current_datetime", return_value=past):
        headers = server.signed("GET", "/2015-03-31/functions/")
    status, error, body = raw(
        server, "GET", "/2015-03-31/functions/", headers=headers, signed=False
    )
    assert (status, error) == (403, "InvalidSignatureException")
    assert body["message"].startswith("Signature expired: ") and "- 5 min." in body["message"]


def test_an_invoke_key_invokes_its_functions_and_nothing_else(
    server: Server, lam: LambdaClient, make_function: Any
) -> None:
    mine = make_function("orders")
    other = make_function("billing")
    key = create_key(server, "--role", "invoke", "--function-pattern", "orders-*")
    assert key["Role"] == "invoke" and key["FunctionPatterns"] == ["orders-*"]
    assert key["AccessKeyId"].startswith("AKCR") and len(key["SecretAccessKey"]) == 40
    invoker = keyed(server, key)
    answer = invoker.invoke(FunctionName=mine, Payload=b'{"n": 1}')
    assert json.loads(answer["Payload"].read())["event"] == {"n": 1}
    arn = f"arn:aws:lambda:us-east-1:123456789012:function:{mine}"
    assert invoker.invoke(FunctionName=arn, InvocationType="Event")["StatusCode"] == 202
    code, status, message = error_of(invoker.invoke, FunctionName=other, Payload=b"{}")
    assert (code, status) == ("AccessDeniedException", 403)
    assert message.startswith(
        f"User: arn:aws:iam::123456789012:user/{key['Name']} is not authorized to perform: "
        f"lambda:InvokeFunction on resource: arn:aws:lambda:us-east-1:123456789012:function:{other}"
    )
    refused = [
        (invoker.list_functions, {}),
        (invoker.get_function, {"FunctionName": mine}),
        (invoker.update_function_code, {"FunctionName": mine, "ZipFile": echo_zip()}),
        (invoker.delete_function, {"FunctionName": mine}),
        (invoker.publish_version, {"FunctionName": mine}),
        (
            invoker.create_function,
            {
                "FunctionName": "orders-new",
                "Runtime": "python3.11",
                "Role": "arn:aws:iam::123456789012:role/r",
                "Handler": "app.handler",
                "Code": {"ZipFile": echo_zip()},
            },
        ),
    ]
    for call, kwargs in refused:
        assert error_of(call, **kwargs)[:2] == ("AccessDeniedException", 403), call
    # Nothing was changed by the refused calls.
    assert lam.get_function(FunctionName=mine)["Configuration"]["FunctionName"] == mine
    assert error_of(lam.get_function, FunctionName="orders-new")[0] == "ResourceNotFoundException"
    # Nor may it read Corral's own endpoints or manage keys.
    key_pair = (key["AccessKeyId"], key["SecretAccessKey"])
    for path in ("/corral/v1/state", "/corral/v1/keys", "/metrics"):
        headers = server.signed("GET", path, key=key_pair)
        status, error, _ = raw(server, "GET", path, headers=headers, signed=False)
        assert (status, error) == (403, "AccessDeniedException"), path


def test_keys_are_listed_without_secrets_deleted_at_once_and_kept_across_restarts(
    tmp: Path,
) -> None:
    server = start_server(tmp / "data")
    try:
        key = create_key(server, "--role", "invoke", "--function-pattern", "*", "--name", "ci")
        listed = corral(server, "keys", "list", "--json")
        assert listed.exit_code == 0, listed.output
        rows = json.loads(listed.stdout)
        assert {r["Name"] for r in rows} == {"admin", "ci"}
        assert all("SecretAccessKey" not in r for r in rows)
        assert key["SecretAccessKey"] not in listed.stdout
        table = corral(server, "keys", "list")
        assert "ci" in table.stdout and key["AccessKeyId"] in table.stdout
        # Bad requests get clear errors.
        bad_role = corral(server, "keys", "create", "--role", "root")
        assert bad_role.exit_code == 1 and "ValidationException" in bad_role.output
        no_pattern = corral(server, "keys", "create", "--role", "invoke")
        assert no_pattern.exit_code == 1 and "needs at least one function-name pattern" in (
            no_pattern.output
        )
        duplicate = corral(server, "keys", "create", "--name", "ci", "--function-pattern", "x")
        assert duplicate.exit_code == 1 and "ResourceConflictException" in duplicate.output
        admin_id = server.admin_key[0]
        last = corral(server, "keys", "delete", admin_id)
        assert last.exit_code == 1 and "last admin key" in last.output
        # With another admin key, the first may go: the credentials file gets the other one.
        ops = create_key(server, "--role", "admin", "--name", "ops")
        assert corral(server, "keys", "delete", admin_id).exit_code == 0
        assert server.admin_key == (ops["AccessKeyId"], ops["SecretAccessKey"])
        assert corral(server, "keys", "list", "--json").exit_code == 0
        assert key["SecretAccessKey"] not in server.log()
    finally:
        assert server.stop() == 0
    server = start_server(tmp / "data")
    try:
        lam = keyed(server, key)
        assert error_of(lam.invoke, FunctionName="missing")[0] == "ResourceNotFoundException"
        deleted = corral(server, "keys", "delete", key["AccessKeyId"])
        assert deleted.exit_code == 0, deleted.output
        assert error_of(lam.invoke, FunctionName="missing")[:2] == (
            "UnrecognizedClientException",
            403,
        )
        gone = corral(server, "keys", "delete", key["AccessKeyId"])
        assert gone.exit_code == 1 and "ResourceNotFoundException" in gone.output
        secret = key["SecretAccessKey"]
        admin_secret = server.admin_key[1]
        logged = server.log() + (server.data_dir / "server.json").read_text()
        assert secret not in logged and admin_secret not in logged
    finally:
        assert server.stop() == 0


def test_the_code_location_is_a_presigned_url_any_http_client_can_fetch(
    server: Server, lam: LambdaClient, make_function: Any
) -> None:
    name = make_function("location")
    location = lam.get_function(FunctionName=name)["Code"]["Location"]
    assert "X-Amz-Signature=" in location and "X-Amz-Expires=600" in location
    with urllib.request.urlopen(location) as response:
        assert response.read()[:2] == b"PK"
    tampered = location.replace("X-Amz-Expires=600", "X-Amz-Expires=6000")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(tampered)
    with refused.value as answer:
        assert answer.code == 403
        assert answer.headers["x-amzn-ErrorType"] == "InvalidSignatureException"


def test_metrics_take_basic_authentication_for_prometheus(server: Server) -> None:
    key_id, secret = server.admin_key
    token = base64.b64encode(f"{key_id}:{secret}".encode()).decode()
    scraped = httpx.get(f"{server.url}/metrics", headers={"Authorization": f"Basic {token}"})
    assert scraped.status_code == 200 and "corral_invocations_total" in scraped.text
    wrong = base64.b64encode(f"{key_id}:nope".encode()).decode()
    refused = httpx.get(f"{server.url}/metrics", headers={"Authorization": f"Basic {wrong}"})
    assert refused.status_code == 403
    assert refused.headers["x-amzn-ErrorType"] == "UnrecognizedClientException"
    elsewhere = httpx.get(
        f"{server.url}/corral/v1/state", headers={"Authorization": f"Basic {token}"}
    )
    assert elsewhere.status_code == 403
    assert elsewhere.headers["x-amzn-ErrorType"] == "IncompleteSignatureException"


def test_the_api_does_not_serve_the_runtime_api_even_to_an_admin(server: Server) -> None:
    for method, path in (
        ("GET", "/2018-06-01/runtime/invocation/next"),
        ("POST", "/2018-06-01/runtime/init/error"),
    ):
        status, error, _ = raw(server, method, path, b"")
        assert (status, error) == (404, "UnknownOperationException")
        status, error, _ = raw(server, method, path, b"", signed=False)
        assert (status, error) == (403, "MissingAuthenticationTokenException")


def test_a_function_gets_no_key_and_cannot_reach_the_api(
    server: Server, lam: LambdaClient, make_function: Any
) -> None:
    probe = (
        "import os, socket\n"
        "def handler(event, context):\n"
        "    env = {k: v for k, v in os.environ.items() if k.startswith('AWS_') and 'KEY' in k}\n"
        "    try:\n"
        f"        socket.create_connection(('127.0.0.1', {httpx.URL(server.url).port}), 2)\n"
        "        reached = True\n"
        "    except OSError:\n"
        "        reached = False\n"
        "    return {'env': env, 'reached': reached}\n"
    )
    name = make_function("probe", code=zip_code({"app.py": probe}))
    answer = json.loads(lam.invoke(FunctionName=name)["Payload"].read())
    assert answer == {"env": {}, "reached": False}


def test_auth_none_serves_unsigned_calls_on_loopback_only(tmp: Path) -> None:
    server = start_server(tmp / "open", CORRAL_AUTH="none")
    try:
        status, _, body = raw(server, "GET", "/2015-03-31/functions/", signed=False)
        assert status == 200 and body["Functions"] == []
        assert "auth: none" in server.log()
    finally:
        assert server.stop() == 0
    done = subprocess.run(
        [sys.executable, "-m", "corral", "serve", "--host", "0.0.0.0", "--auth", "none"],
        capture_output=True,
        text=True,
        env={**os.environ, "CORRAL_DATA_DIR": str(tmp / "refused")},
        timeout=60,
    )
    assert done.returncode == 2 and "with --auth none" in done.stderr
    bad = subprocess.run(
        [sys.executable, "-m", "corral", "serve", "--auth", "maybe"],
        capture_output=True,
        text=True,
        env={**os.environ, "CORRAL_DATA_DIR": str(tmp / "bad")},
        timeout=60,
    )
    assert bad.returncode == 2 and "use sigv4 (default) or none" in bad.stderr


def test_with_authentication_on_any_address_may_be_served(tmp: Path) -> None:
    server = start_server(tmp / "wide", CORRAL_HOST="0.0.0.0")
    try:
        assert "plain HTTP" in server.log()
        local = server.url.replace("0.0.0.0", "127.0.0.1")
        headers = sign("GET", local + "/2015-03-31/functions/", b"", {}, server.admin_key)
        answer = httpx.get(local + "/2015-03-31/functions/", headers=headers, timeout=10)
        assert answer.status_code == 200
        assert httpx.get(local + "/2015-03-31/functions/", timeout=10).status_code == 403
    finally:
        assert server.stop() == 0

"""Edges of Invoke: headers, payload limits, qualifiers, events, and Corral's own endpoints."""

from __future__ import annotations

import base64
import http.client
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
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
    wait_for,
    zip_code,
)

UNCHECKED_CLIENT = True  # botocore's own checks are skipped: Corral's are tested


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
        path = f"/2015-03-31/functions/{name}/invocations"
        connection.request(
            "POST",
            path,
            body=chunks(),
            headers=server.signed("POST", path, payload, {"X-Amz-Invocation-Type": "Event"}),
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
        # Under the unqualified ARN, as AWS answers (test_fidelity).
        assert created["FunctionArn"].endswith(f":function:{name}")
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
    lam: LambdaClient, make_function: Any, server: Server
) -> None:
    name = make_function("evthrottle")
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    answer = lam.invoke(
        FunctionName=name, InvocationType="Event", Payload=json.dumps({"mark": "lifted"})
    )
    assert answer["StatusCode"] == 202
    lam.delete_function_concurrency(FunctionName=name)
    # Delivered, hence out of the queue: it ran exactly once.
    delivered = f'corral_async_events_delivered_total{{function="{name}"}} 1.0'
    wait_for(lambda: delivered in server.get("/metrics").text, timeout_s=30)
    assert len(server.marks(name, "lifted")) == 1


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
    assert raw(server, "GET", "/health") == (200, "", {"status": "ok", "sandbox": "container"})


@pytest.mark.parametrize("digest", ["not-a-digest", "0" * 64], ids=["malformed", "unknown"])
def test_downloading_unknown_code_is_not_found(server: Server, digest: str) -> None:
    status, error, _ = raw(server, "GET", f"/corral/v1/code/{digest}.zip")
    assert (status, error) == (404, "ResourceNotFoundException")


def test_a_control_request_over_1_mb_is_request_entity_too_large(
    server: Server, lam: LambdaClient, make_function: Any
) -> None:
    name = make_function("bigctl")
    code, status, message = error_of(
        lam.update_function_configuration, FunctionName=name, Description="x" * (1024 * 1024)
    )
    # Recorded (AWS): test_oversized_request_create_lambda answers this name for a control
    # operation; RequestTooLargeException is Invoke's.
    assert (code, status) == ("RequestEntityTooLargeException", 413)
    assert message == (
        "Request must be smaller than 1048576 bytes for the UpdateFunctionConfiguration operation"
    )
    # Sent in chunks without a Content-Length, the size is found while reading; the last
    # chunk crosses the limit, so the whole body is on the wire before the answer.
    body = json.dumps({"Description": "x" * (1024 * 1024)}).encode()
    url = urllib.parse.urlsplit(server.url)
    connection = http.client.HTTPConnection(url.hostname or "", url.port, timeout=60)
    try:
        path = f"/2015-03-31/functions/{name}/configuration"
        connection.request(
            "PUT",
            path,
            body=iter([body[: 1024 * 1000], body[1024 * 1000 :]]),
            headers=server.signed("PUT", path, body),
            encode_chunked=True,
        )
        response = connection.getresponse()
        assert response.status == 413
        assert response.getheader("x-amzn-ErrorType") == "RequestEntityTooLargeException"
        response.read()
    finally:
        connection.close()
    assert lam.get_function_configuration(FunctionName=name)["Description"] == ""

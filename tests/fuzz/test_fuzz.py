"""Inputs that cannot hurt: every Lambda operation, fed generated and hostile requests.

Every answer must be a success or a well-formed Lambda error (``x-amzn-ErrorType`` and a
JSON message); never a 500, never a hang. Afterwards the server's state must be consistent,
and the same after a restart.

Budget: ``CORRAL_FUZZ_EXAMPLES`` inputs in all (default 2,000, about a minute), spread over the
operations; ``scripts/fuzz`` runs a longer budget on demand.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings

from tests.fuzz import tally
from tests.fuzz.model import (
    MODEL,
    OPERATIONS,
    SEED_ALIAS,
    SEED_FUNCTION,
    SEED_PROVIDER,
    SERVED,
    FuzzRequest,
    requests_for,
)
from tests.helpers import (
    OPERATOR,
    ROLE,
    SUBNETS,
    LambdaClient,
    Server,
    echo_zip,
    sign,
    start_server,
)

BUDGET = int(os.environ.get("CORRAL_FUZZ_EXAMPLES", "2000"))
# Operations Corral does not serve answer UnknownOperationException whatever comes: a few
# inputs each; the rest of the budget goes to the ones it serves.
UNSERVED_EXAMPLES = 2
PER_SERVED = max(3, (BUDGET - UNSERVED_EXAMPLES * (len(OPERATIONS) - len(SERVED))) // len(SERVED))
TIMEOUT_S = 60.0
# Lambda's own 5xx errors are answers, not failures; ServiceException (500) is a bug.
SERVER_ERRORS_ALLOWED = {
    shape.name
    for shape in MODEL.error_shapes
    if (shape.metadata.get("error") or {}).get("httpStatusCode", 400) >= 500
} - {"ServiceException"}

SERVER_ENV = {"CORRAL_LOG_LEVEL": "warning"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("fuzz"), **SERVER_ENV)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def seeded(server: Server) -> LambdaClient:
    """A function with version 1 and an alias, and a capacity provider, for calls to reach."""
    lam = server.client()
    lam.create_function(
        FunctionName=SEED_FUNCTION,
        Runtime="python3.11",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": echo_zip()},
    )
    lam.get_waiter("function_active_v2").wait(FunctionName=SEED_FUNCTION)
    lam.publish_version(FunctionName=SEED_FUNCTION)
    lam.create_alias(FunctionName=SEED_FUNCTION, Name=SEED_ALIAS, FunctionVersion="1")
    lam.create_capacity_provider(
        CapacityProviderName=SEED_PROVIDER, VpcConfig=SUBNETS, PermissionsConfig=OPERATOR
    )
    return lam


@pytest.fixture(scope="module")
def steady(server: Server) -> str:
    """A function the fuzzer does not know (it may delete the seeded one)."""
    lam = server.client()
    lam.create_function(
        FunctionName="steady",
        Runtime="python3.11",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": echo_zip()},
    )
    lam.get_waiter("function_active_v2").wait(FunctionName="steady")
    return "steady"


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=TIMEOUT_S) as client:
        yield client


def send(server: Server, http: httpx.Client, request: FuzzRequest, label: str) -> httpx.Response:
    url = server.url + request.url_path()
    if len(url) > 60_000:  # longer than HTTP clients send (httpx refuses): cut the URL
        url = url[:60_000]
    headers = sign(request.method, url, request.body, dict(request.headers), server.admin_key)
    raw_headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    tally.SENT[label] += 1
    try:
        response = http.request(request.method, url, content=request.body, headers=raw_headers)
    except httpx.TimeoutException:
        pytest.fail(f"no answer in {TIMEOUT_S:.0f} s: {request.method} {request.url_path()[:300]}")
    check_answer(response, f"{request.method} {request.url_path()[:300]}")
    return response


def check_answer(response: httpx.Response, what: str) -> None:
    status = response.status_code
    error = response.headers.get("x-amzn-ErrorType", "")
    tally.ANSWERS[f"{status // 100}xx" if status < 400 else f"{status} {error}"] += 1
    assert not 300 <= status < 400, f"{what}: a redirect ({status}) is not a Lambda answer"
    if status < 400:
        if response.content and "json" in response.headers.get("content-type", ""):
            json.loads(response.content)
        return
    assert error, f"{what}: {status} without x-amzn-ErrorType: {response.text[:300]}"
    assert status < 500 or error in SERVER_ERRORS_ALLOWED, (
        f"{what}: {status} {error}: {response.text[:500]}"
    )
    body = json.loads(response.content)
    assert isinstance(body, dict) and ("message" in body or "Message" in body), response.text


@pytest.mark.parametrize("operation", OPERATIONS)
def test_every_operation_answers_every_input_with_a_lambda_answer(
    operation: str, server: Server, seeded: LambdaClient, http: httpx.Client
) -> None:
    @settings(
        max_examples=PER_SERVED if operation in SERVED else UNSERVED_EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(request=requests_for(operation))
    def run(request: FuzzRequest) -> None:
        send(server, http, request, operation)

    run()


def test_forged_and_broken_signatures_are_refused_never_crash(
    server: Server, http: httpx.Client
) -> None:
    url = server.url + "/2015-03-31/functions/"
    cases: list[dict[str, str]] = [
        {"Authorization": ""},
        {"Authorization": "AWS4-HMAC-SHA256"},
        {"Authorization": "AWS4-HMAC-SHA256 Credential=/////, SignedHeaders=, Signature="},
        {"Authorization": "AWS4-HMAC-SHA256 " + "Credential=" + "a/" * 5000},
        {"Authorization": "AWS4-HMAC-SHA256 Credential=a/b/c/d/e, SignedHeaders=host, Signature=x"},
        {"Authorization": "Basic " + "A" * 1000},
        {"Authorization": "AWS4-HMAC-SHA256 Credential=k/2026/us-east-1/lambda/aws4_request, "
         "SignedHeaders=host, Signature=ab", "X-Amz-Date": "\u00e9" * 10},
    ]  # fmt: skip
    for query in ("X-Amz-Algorithm=AWS4-HMAC-SHA256", "X-Amz-Algorithm=x&X-Amz-Expires=-1"):
        response = http.get(f"{url}?{query}")
        tally.SENT["signatures"] += 1
        check_answer(response, query)
        assert response.status_code == 403
    for headers in cases:
        encoded = [(k.encode(), v.encode("utf-8")) for k, v in headers.items()]
        response = http.get(url, headers=encoded)
        tally.SENT["signatures"] += 1
        check_answer(response, str(headers)[:200])
        assert response.status_code == 403, headers


def test_bodies_over_the_limits_are_refused_without_reading_them_all(
    server: Server, steady: str
) -> None:
    # Each request declares a body over its operation's limit and sends none of it: the
    # answer must come anyway (a server that read the body first would wait for it, and
    # the socket's timeout would fail the test).
    cases = [
        (
            f"/2015-03-31/functions/{steady}/invocations",
            7 * 1024 * 1024,
            "RequestTooLargeException",
        ),
        ("/2015-03-31/functions", 999_999_999, "RequestEntityTooLargeException"),
    ]
    for path, declared, error in cases:
        with socket.create_connection(
            ("127.0.0.1", httpx.URL(server.url).port), timeout=10
        ) as sock:
            sock.sendall(
                f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {declared}\r\n".encode()
                + _auth_lines(server, path)
                + b"\r\n"
            )
            answer = sock.recv(4096)
        tally.SENT["limits"] += 1
        assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
        assert error.encode() in answer, answer[:400]


def _auth_lines(server: Server, path: str = "/2015-03-31/functions") -> bytes:
    headers = sign("POST", server.url + path, b"", {}, server.admin_key)
    return b"".join(
        f"{k}: {v}\r\n".encode() for k, v in headers.items() if k.lower() != "content-length"
    )


def test_slow_clients_and_abrupt_disconnects_do_not_stop_others(
    server: Server, steady: str, http: httpx.Client
) -> None:
    port = httpx.URL(server.url).port
    assert port is not None
    stop = threading.Event()

    def trickle() -> None:
        """A client that sends its request a byte at a time, never finishing."""
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            head = b"POST /2015-03-31/functions HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n"
            for byte in head:
                if stop.is_set():
                    return
                sock.sendall(bytes([byte]))
                time.sleep(0.02)
            while not stop.is_set():
                sock.sendall(b"{")
                time.sleep(0.05)

    slow = [threading.Thread(target=trickle, daemon=True) for _ in range(20)]
    for thread in slow:
        thread.start()
    try:
        # Meanwhile others are served promptly.
        for _ in range(20):
            started = time.monotonic()
            path = "/2015-03-31/functions/"
            response = http.get(
                server.url + path, headers=sign("GET", server.url + path, b"", {}, server.admin_key)
            )
            tally.SENT["slow clients"] += 1
            assert response.status_code == 200
            assert time.monotonic() - started < 2.0
        # Clients that go away in the middle of their request, invocations included.
        for index in range(60):
            path = (
                f"/2015-03-31/functions/{steady}/invocations"
                if index % 2
                else "/2015-03-31/functions"
            )
            body = b'{"sleep": 0.2, "pad": "' + b"x" * 5000 + b'"}'
            headers = sign("POST", server.url + path, body, {}, server.admin_key)
            with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
                head = f"POST {path} HTTP/1.1\r\n" + "".join(
                    f"{k}: {v}\r\n" for k, v in headers.items()
                )
                sock.sendall(head.encode() + b"\r\n" + body[: (index * 97) % len(body)])
                if index % 3 == 0:  # some wait for the body to be sent in full, then leave
                    sock.sendall(body[(index * 97) % len(body) :])
                sock.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
                )
            tally.SENT["disconnects"] += 1
    finally:
        stop.set()
        for thread in slow:
            thread.join(timeout=5)
    answer = server.client().invoke(FunctionName=steady, Payload=b'{"after": 1}')
    assert json.loads(answer["Payload"].read())["event"] == {"after": 1}


def test_oversized_headers_are_refused_and_the_server_stays_up(
    server: Server, http: httpx.Client
) -> None:
    for size in (8_000, 70_000, 1_000_000):
        try:
            response = http.get(
                server.url + "/2015-03-31/functions/", headers={"X-Big": "y" * size}
            )
        except httpx.HTTPError:
            pass  # the server may close the connection: an answer too
        else:
            assert response.status_code < 500
        tally.SENT["big headers"] += 1
    assert httpx.get(server.url + "/health", timeout=10).status_code == 200


def test_the_fuzzer_reached_every_operation() -> None:
    missed = [op for op in OPERATIONS if tally.SENT[op] == 0]
    assert not missed


def test_after_the_run_the_state_is_consistent_and_survives_a_restart(
    server: Server, seeded: LambdaClient, tmp_path: Path
) -> None:
    """Runs last in this module (pytest keeps file order)."""
    lam = server.client()
    before = snapshot(lam)
    log = server.log()
    assert "Traceback" not in log and "unexpected error" not in log, log[-3000:]
    server.stop()
    again = start_server(server.data_dir, **SERVER_ENV)
    try:
        after = snapshot(again.client())
        assert after == before
    finally:
        again.stop()


def snapshot(lam: LambdaClient) -> dict[str, Any]:
    """Every function, version, alias and capacity provider, read back in full; every
    alias points at a version that exists."""
    functions: dict[str, Any] = {}
    for page in lam.get_paginator("list_functions").paginate():
        for function in page["Functions"]:
            name = function["FunctionName"]
            versions = [
                v["Version"]
                for p in lam.get_paginator("list_versions_by_function").paginate(FunctionName=name)
                for v in p["Versions"]
            ]
            aliases = {
                a["Name"]: a["FunctionVersion"]
                for p in lam.get_paginator("list_aliases").paginate(FunctionName=name)
                for a in p["Aliases"]
            }
            for alias, version in aliases.items():
                assert version in versions, (name, alias, version, versions)
            config = lam.get_function(FunctionName=name)["Configuration"]
            functions[name] = {
                "versions": versions,
                "aliases": aliases,
                "sha": config["CodeSha256"],
                "memory": config["MemorySize"],
            }
    providers = sorted(
        p["CapacityProviderArn"] for p in lam.list_capacity_providers()["CapacityProviders"]
    )
    return {"functions": functions, "providers": providers}

"""Function logs as a user reads them: ``corral logs`` and ``GET /corral/v1/logs``.

Concurrent invocations in one execution environment interleave in its one stream, and every
line, ``print()`` included, carries the request it came from; ``--request-id`` returns
exactly one request's lines; levels filter; logs outlive the server.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from corral.cli import main
from tests.helpers import (
    OPERATOR,
    ROLE,
    SUBNETS,
    LambdaClient,
    Server,
    managed_config,
    raw,
    start_server,
    wait_for,
    wait_version_active,
    zip_code,
)

CHATTY = r"""
import json, logging, sys, time

logger = logging.getLogger()

def handler(event, context):
    rid = context.aws_request_id
    for step in range(event.get("steps", 3)):
        print(f"step {step} of {rid}")
        time.sleep(event.get("pause", 0))
    print(f"to stderr of {rid}", file=sys.stderr)
    logger.warning("warned in %s", rid)
    print(json.dumps({"level": "DEBUG", "message": f"debug of {rid}"}))
    return rid
"""


def cli(*args: str) -> Any:
    return CliRunner().invoke(main.app, list(args))


def test_concurrent_requests_interleave_in_one_stream_and_every_line_knows_its_request(
    lam: LambdaClient, server: Server, provider_arn: str
) -> None:
    lam.create_function(
        FunctionName="chatty",
        Runtime="python3.12",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": zip_code({"app.py": CHATTY})},
        MemorySize=2048,
        CapacityProviderConfig=managed_config(provider_arn, 4),
        LoggingConfig={"LogFormat": "JSON", "ApplicationLogLevel": "INFO"},
    )
    lam.publish_version(FunctionName="chatty")
    lam.put_function_scaling_config(
        FunctionName="chatty",
        Qualifier="1",
        FunctionScalingConfig={"MinExecutionEnvironments": 1, "MaxExecutionEnvironments": 1},
    )
    wait_version_active(lam, "chatty", "1")
    with ThreadPoolExecutor(4) as pool:
        calls = [
            pool.submit(
                lam.invoke,
                FunctionName="chatty",
                Qualifier="1",
                Payload=json.dumps({"steps": 5, "pause": 0.05}),
            )
            for _ in range(4)
        ]
        request_ids = [json.loads(c.result()["Payload"].read()) for c in calls]
    events = wait_for(
        lambda: (
            [e for e in server.log_events("chatty") if "report" in e["message"]][3:4]
            and server.log_events("chatty")
        ),
        timeout_s=10,
    )
    mine = [e for e in events if e["requestId"] in request_ids]
    assert len({e["logStreamName"] for e in mine}) == 1  # one environment, one stream
    assert mine[0]["logStreamName"].startswith(time.strftime("%Y/%m/%d/[1]", time.gmtime()))
    # The lines of the four requests are interleaved, not grouped.
    order = [e["requestId"] for e in mine if e["message"].startswith("step ")]
    switches = sum(1 for a, b in zip(order, order[1:], strict=False) if a != b)
    assert switches > 3, order
    for event in mine:
        message = event["message"]
        if " of " in message:
            assert message.rsplit(" ", 1)[1].strip('"}') == event["requestId"], event
    per_request = Counter(e["requestId"] for e in mine if e["message"].startswith("step "))
    assert per_request == {rid: 5 for rid in request_ids}
    stderr_lines = [e for e in mine if e["message"].startswith("to stderr of ")]
    assert len(stderr_lines) == 4
    warnings = [json.loads(e["message"]) for e in mine if '"WARNING"' in e["message"]]
    assert {w["requestId"] for w in warnings} == set(request_ids)
    # ApplicationLogLevel INFO drops the DEBUG lines; platform records carry each request.
    assert not [e for e in mine if "debug of" in e["message"]]
    types = Counter(
        json.loads(e["message"]).get("type") for e in mine if '"platform.' in e["message"]
    )
    assert types == {"platform.start": 4, "platform.report": 4}


def test_corral_logs_request_id_returns_exactly_that_requests_lines(
    lam: LambdaClient, server: Server, make_function: Any
) -> None:
    name = make_function("textlogs", code=zip_code({"app.py": CHATTY}))
    first = lam.invoke(FunctionName=name, Payload=b'{"steps": 2}')
    second = lam.invoke(FunctionName=name, Payload=b'{"steps": 2}')
    wanted = json.loads(first["Payload"].read())
    other = json.loads(second["Payload"].read())
    done = cli("logs", name, "--request-id", wanted, "--json", "--endpoint-url", server.url)
    assert done.exit_code == 0, done.output
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert {line["requestId"] for line in lines} == {wanted}
    messages = [line["message"] for line in lines]
    assert messages[0] == f"START RequestId: {wanted} Version: $LATEST"
    assert f"step 0 of {wanted}" in messages and f"step 1 of {wanted}" in messages
    assert f"to stderr of {wanted}" in messages
    assert messages[-2] == f"END RequestId: {wanted}"
    assert messages[-1].startswith(f"REPORT RequestId: {wanted}\tDuration: ")
    assert "Init Duration" in messages[-1] and "Max Memory Used" in messages[-1]
    assert not any(other in m for m in messages)
    # Text format: no level filtering, the DEBUG JSON line stays.
    assert any(m.startswith('{"level": "DEBUG"') for m in messages)
    table = cli("logs", name, "--endpoint-url", server.url)
    assert table.exit_code == 0 and f"step 1 of {other}" in table.stdout
    assert wanted[-8:] in table.stdout and other[-8:] in table.stdout


def test_corral_logs_follow_prints_new_records_as_they_come(
    lam: LambdaClient, server: Server, make_function: Any
) -> None:
    name = make_function("follow")
    follower = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "corral",
            "logs",
            name,
            "--follow",
            "--json",
            "--endpoint-url",
            server.url,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(1.5)  # it is following an empty log now
        request_id = lam.invoke(FunctionName=name, Payload=b'{"mark": "live"}')["ResponseMetadata"][
            "RequestId"
        ]
        assert follower.stdout is not None
        deadline = time.monotonic() + 15
        seen: list[dict[str, Any]] = []
        while time.monotonic() < deadline and not any(
            e["message"].startswith("REPORT") for e in seen
        ):
            seen.append(json.loads(follower.stdout.readline()))
        assert any(e["message"] == f"MARK live {request_id}" for e in seen), [
            (e["requestId"], e["message"][:80]) for e in seen
        ]
    finally:
        follower.terminate()
        follower.wait(timeout=10)
        if follower.stdout is not None:
            follower.stdout.close()


def test_windows_paging_and_bad_queries(
    lam: LambdaClient, server: Server, make_function: Any
) -> None:
    name = make_function("windows")
    for _ in range(3):
        lam.invoke(FunctionName=name, Payload=b"{}")
    every = server.log_events(name)
    assert len(every) >= 12  # START, handling, END, REPORT per invoke
    first = server.log_events(name, limit="5")
    rest = server.log_events(name, nextToken=str(first[-1]["id"]))
    assert [e["id"] for e in first + rest] == [e["id"] for e in every]
    assert server.log_events(name, since="1h") == every
    assert server.log_events(name, until=str(every[0]["timestamp"] - 1)) == []
    assert server.log_events(name, qualifier="$LATEST") == every
    assert raw(server, "GET", "/corral/v1/logs?function=" + name + "&since=yesterday")[0] == 400
    assert raw(server, "GET", "/corral/v1/logs?function=" + name + "&limit=0")[0] == 400
    assert raw(server, "GET", "/corral/v1/logs")[0] == 400
    status, kind, _ = raw(server, "GET", f"/corral/v1/logs?function={name}&qualifier=nosuch")
    assert (status, kind) == (404, "ResourceNotFoundException")
    missing = raw(server, "GET", "/corral/v1/logs?capacityProvider=nosuch")
    assert missing[:2] == (404, "ResourceNotFoundException")
    failed = cli("logs", name, "--since", "yesterday", "--endpoint-url", server.url)
    assert failed.exit_code == 1
    assert "neither epoch milliseconds nor a duration" in " ".join(failed.output.split())
    assert cli("logs", "--endpoint-url", server.url).exit_code == 1


def test_a_capacity_providers_system_log_tells_its_instances_lifecycle(
    lam: LambdaClient, server: Server, make_function: Any
) -> None:
    arn = lam.create_capacity_provider(
        CapacityProviderName="syslog", VpcConfig=SUBNETS, PermissionsConfig=OPERATOR
    )["CapacityProvider"]["CapacityProviderArn"]
    name = make_function("onsyslog", MemorySize=2048, CapacityProviderConfig=managed_config(arn))
    lam.publish_version(FunctionName=name)
    wait_version_active(lam, name, "1")
    done = cli("logs", "--capacity-provider", "syslog", "--json", "--endpoint-url", server.url)
    assert done.exit_code == 0, done.output
    events = [json.loads(json.loads(line)["message"]) for line in done.stdout.splitlines()]
    launched = [e for e in events if e["metadata"]["event"] == "Launched"]
    assert len(launched) == 3  # the first three instances
    assert all(e["metadata"]["capacityProviderArn"] == arn for e in events)
    table = cli("logs", "--capacity-provider", "syslog", "--endpoint-url", server.url)
    assert table.exit_code == 0 and table.stdout.count(" instances ") == len(events)
    both = cli("logs", name, "--capacity-provider", "syslog", "--endpoint-url", server.url)
    assert both.exit_code == 1 and "name a function, or a capacity provider" in both.output


def test_logs_outlive_the_server_and_the_function(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = start_server(data)
    try:
        lam = first.client()
        lam.create_function(
            FunctionName="gone",
            Runtime="python3.11",
            Role=ROLE,
            Handler="app.handler",
            Code={"ZipFile": zip_code({"app.py": CHATTY})},
        )
        request_id = json.loads(lam.invoke(FunctionName="gone")["Payload"].read())
        lam.delete_function(FunctionName="gone")
    finally:
        assert first.stop() == 0
    second = start_server(data)
    try:
        kept = second.log_events("gone", requestId=request_id)
        assert f"step 0 of {request_id}" in [e["message"] for e in kept]
    finally:
        second.stop()

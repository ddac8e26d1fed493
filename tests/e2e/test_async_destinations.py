"""Asynchronous invocation as Lambda users configure it: event invoke configs (retries, age,
destinations) and what happens to events that are given up.

Real server, real functions: a recorder function is the destination and prints every record
it gets; the tests read its log. Each check cites ``LMI_FACTS.md`` (Asynchronous invocation)
or botocore's model of the API.
"""

from __future__ import annotations

import json
import re
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.conftest import unique
from tests.helpers import (
    ROLE,
    Server,
    corral_cli,
    error_of,
    metric,
    run_aws,
    start_server,
    wait_for,
    zip_code,
)

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient

# A destination function that cannot be found is tried 3 times here (1 s, then 2 s apart).
SERVER_ENV = {"CORRAL_ASYNC_DESTINATION_ATTEMPTS": "3"}

RECORDER = """
import json

def handler(event, context):
    print("RECORD " + json.dumps(event))
    return "kept"
"""
WORKER = """
def handler(event, context):
    print("attempt of", context.aws_request_id)
    if event.get("fail"):
        raise ValueError(event["fail"])
    return {"done": event.get("n")}
"""
FIXED = "def handler(e, c):\n    print('attempt of', c.aws_request_id)\n    return 'fixed'\n"
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def records(server: Server, recorder: str) -> list[dict[str, Any]]:
    """The records ``recorder`` received, oldest first."""
    return [
        json.loads(m[len("RECORD ") :])
        for m in server.log_messages(recorder)
        if m.startswith("RECORD ")
    ]


def event_id(answer: Any) -> str:
    assert answer["StatusCode"] == 202
    answer["Payload"].read()
    request_id: str = answer["ResponseMetadata"]["RequestId"]
    return request_id


@pytest.fixture
def recorder(make_function: Any) -> str:
    name: str = make_function("recorder", code=zip_code({"app.py": RECORDER}))
    return name


@pytest.fixture
def worker(make_function: Any) -> str:
    name: str = make_function("worker", code=zip_code({"app.py": WORKER}))
    return name


def test_event_invoke_configs_are_kept_as_aws_keeps_them(
    lam: LambdaClient, server: Server, worker: str, recorder: str
) -> None:
    arn = lam.get_function(FunctionName=recorder)["Configuration"]["FunctionArn"]
    put = lam.put_function_event_invoke_config(FunctionName=worker, MaximumRetryAttempts=0)
    assert put["FunctionArn"].endswith(f":function:{worker}:$LATEST")
    assert put["MaximumRetryAttempts"] == 0 and "MaximumEventAgeInSeconds" not in put
    assert put["DestinationConfig"] == {"OnSuccess": {}, "OnFailure": {}}
    assert abs(put["LastModified"].timestamp() - time.time()) < 60
    # Update changes only what it names.
    updated = lam.update_function_event_invoke_config(
        FunctionName=worker,
        MaximumEventAgeInSeconds=120,
        DestinationConfig={"OnFailure": {"Destination": arn}},
    )
    assert updated["MaximumRetryAttempts"] == 0 and updated["MaximumEventAgeInSeconds"] == 120
    assert updated["DestinationConfig"] == {"OnSuccess": {}, "OnFailure": {"Destination": arn}}
    got = lam.get_function_event_invoke_config(FunctionName=worker)
    assert got["DestinationConfig"]["OnFailure"] == {"Destination": arn}
    # Put replaces the whole configuration.
    replaced = lam.put_function_event_invoke_config(
        FunctionName=worker, MaximumEventAgeInSeconds=3600
    )
    assert "MaximumRetryAttempts" not in replaced
    assert replaced["DestinationConfig"] == {"OnSuccess": {}, "OnFailure": {}}
    # Versions and aliases have their own; the list has them all, a page at a time.
    lam.publish_version(FunctionName=worker)
    lam.create_alias(FunctionName=worker, Name="live", FunctionVersion="1")
    lam.put_function_event_invoke_config(FunctionName=worker, Qualifier="1", MaximumRetryAttempts=1)
    lam.put_function_event_invoke_config(FunctionName=f"{worker}:live", MaximumRetryAttempts=2)
    listed = lam.list_function_event_invoke_configs(FunctionName=worker)
    assert sorted(
        c["FunctionArn"].rsplit(":", 1)[1] for c in listed["FunctionEventInvokeConfigs"]
    ) == [
        "$LATEST",
        "1",
        "live",
    ]
    first = lam.list_function_event_invoke_configs(FunctionName=worker, MaxItems=2)
    second = lam.list_function_event_invoke_configs(FunctionName=worker, Marker=first["NextMarker"])
    assert len(first["FunctionEventInvokeConfigs"]) == 2
    assert len(second["FunctionEventInvokeConfigs"]) == 1 and "NextMarker" not in second
    # The AWS CLI reads the same.
    done = run_aws(
        server, "get-function-event-invoke-config", "--function-name", worker, "--qualifier", "live"
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["MaximumRetryAttempts"] == 2
    # Deleting the alias takes its configuration with it; Delete removes one.
    lam.delete_alias(FunctionName=worker, Name="live")
    lam.delete_function_event_invoke_config(FunctionName=worker, Qualifier="1")
    left = lam.list_function_event_invoke_configs(FunctionName=worker)["FunctionEventInvokeConfigs"]
    assert [c["FunctionArn"].rsplit(":", 1)[1] for c in left] == ["$LATEST"]


def test_bad_event_invoke_configs_get_the_errors_aws_gives(
    server: Server, lam: LambdaClient, worker: str
) -> None:
    raw = server.client(parameter_validation=False)
    # Ranges from botocore's model, checked by the server.
    error, status, message = error_of(
        raw.put_function_event_invoke_config, FunctionName=worker, MaximumRetryAttempts=3
    )
    assert (error, status) == ("ValidationException", 400)
    assert (
        "Value '3' at 'maximumRetryAttempts' failed to satisfy constraint: "
        "Member must have value less than or equal to 2" in message
    )
    error, status, message = error_of(
        raw.put_function_event_invoke_config, FunctionName=worker, MaximumEventAgeInSeconds=30
    )
    assert (error, status) == ("ValidationException", 400)
    assert "greater than or equal to 60" in message
    # Destinations other than Lambda functions are refused, saying what Corral supports.
    for arn, what in [
        ("arn:aws:sqs:us-east-1:123456789012:dlq", "SQS queue"),
        ("arn:aws:sns:us-east-1:123456789012:topic", "SNS topic"),
        ("arn:aws:events:us-east-1:123456789012:event-bus/default", "EventBridge event bus"),
        ("arn:aws:s3:::bucket", "S3 bucket"),
    ]:
        error, status, message = error_of(
            lam.put_function_event_invoke_config,
            FunctionName=worker,
            DestinationConfig={"OnFailure": {"Destination": arn}},
        )
        assert (error, status) == ("InvalidParameterValueException", 400), arn
        assert what in message and "Lambda functions only" in message
    error, status, _ = error_of(
        lam.put_function_event_invoke_config,
        FunctionName=worker,
        DestinationConfig={"OnSuccess": {"Destination": "not an arn"}},
    )
    assert (error, status) == ("ValidationException", 400)
    # What does not exist.
    error, status, message = error_of(lam.get_function_event_invoke_config, FunctionName=worker)
    assert (error, status) == ("ResourceNotFoundException", 404)
    assert message.endswith(f"function:{worker}:$LATEST doesn't have an EventInvokeConfig")
    error, status, _ = error_of(
        lam.update_function_event_invoke_config, FunctionName=worker, MaximumRetryAttempts=1
    )
    assert (error, status) == ("ResourceNotFoundException", 404)
    error, status, _ = error_of(
        lam.put_function_event_invoke_config,
        FunctionName=worker,
        Qualifier="7",
        MaximumRetryAttempts=1,
    )
    assert (error, status) == ("ResourceNotFoundException", 404)
    error, status, _ = error_of(
        lam.put_function_event_invoke_config, FunctionName=unique("ghost"), MaximumRetryAttempts=1
    )
    assert (error, status) == ("ResourceNotFoundException", 404)
    error, status, _ = error_of(lam.delete_function_event_invoke_config, FunctionName=worker)
    assert (error, status) == ("ResourceNotFoundException", 404)
    error, status, _ = error_of(
        raw.list_function_event_invoke_configs, FunctionName=worker, MaxItems=51
    )
    assert (error, status) == ("ValidationException", 400)


def test_on_success_and_on_failure_records_carry_aws_fields(
    server: Server, lam: LambdaClient, worker: str, recorder: str
) -> None:
    arn = lam.get_function(FunctionName=recorder)["Configuration"]["FunctionArn"]
    lam.put_function_event_invoke_config(
        FunctionName=worker,
        MaximumRetryAttempts=1,
        DestinationConfig={"OnSuccess": {"Destination": arn}, "OnFailure": {"Destination": arn}},
    )
    ok = event_id(lam.invoke(FunctionName=worker, InvocationType="Event", Payload=b'{"n": 1}'))
    bad = event_id(
        lam.invoke(FunctionName=worker, InvocationType="Event", Payload=b'{"n": 2, "fail": "boom"}')
    )
    got = wait_for(lambda: (found := records(server, recorder)) and len(found) == 2 and found)
    by_id = {r["requestContext"]["requestId"]: r for r in got}
    success, failure = by_id[ok], by_id[bad]
    source_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{worker}:$LATEST"
    assert set(success) == {
        "version",
        "timestamp",
        "requestContext",
        "requestPayload",
        "responseContext",
        "responsePayload",
    }
    assert success["version"] == "1.0" and TIMESTAMP.fullmatch(success["timestamp"])
    assert success["requestContext"] == {
        "requestId": ok,
        "functionArn": source_arn,
        "condition": "Success",
        "approximateInvokeCount": 1,
    }
    assert success["requestPayload"] == {"n": 1}
    assert success["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST"}
    assert success["responsePayload"] == {"done": 1}
    # One retry (MaximumRetryAttempts=1): two attempts, then the failure record.
    assert failure["requestContext"] == {
        "requestId": bad,
        "functionArn": source_arn,
        "condition": "RetriesExhausted",
        "approximateInvokeCount": 2,
    }
    assert failure["requestPayload"] == {"n": 2, "fail": "boom"}
    assert failure["responseContext"] == {
        "statusCode": 200,
        "executedVersion": "$LATEST",
        "functionError": "Unhandled",
    }
    assert failure["responsePayload"]["errorType"] == "ValueError"
    assert failure["responsePayload"]["errorMessage"] == "boom"
    attempts = [m for m in server.log_messages(worker) if m.startswith("attempt of ")]
    assert sorted(attempts) == sorted([f"attempt of {ok}"] + [f"attempt of {bad}"] * 2)
    assert (
        metric(
            server, "corral_async_events_retried_total", function=worker, reason="function_error"
        )
        == 1
    )
    assert (
        metric(
            server,
            "corral_async_events_sent_to_destination_total",
            function=worker,
            reason="Success",
        )
        == 1
    )
    assert (
        metric(
            server,
            "corral_async_events_sent_to_destination_total",
            function=worker,
            reason="RetriesExhausted",
        )
        == 1
    )
    assert metric(server, "corral_async_events_attempted_total", function=worker) == 3
    assert metric(server, "corral_async_events_delivered_total", function=recorder) == 2

    # `corral metrics` shows the same, as rates.
    def peak(name: str) -> float:
        done = corral_cli(server, "metrics", worker, "--json")
        assert done.exit_code == 0, done.output
        series = [s for s in json.loads(done.stdout)["series"] if s["name"] == name]
        return max((v for s in series for _, v in s["points"]), default=0.0)

    rates = ("received", "retried", "dropped", "delivered")
    # Sampled once a second: the last change shows within a sample or two.
    wait_for(lambda: all(peak(f"async_{r}_per_second") >= 1 for r in rates), timeout_s=10)
    table = corral_cli(server, "metrics", worker)
    assert "async events/s" in table.stdout and "async event age (mean)" in table.stdout


def test_an_alias_uses_its_own_config_and_a_failing_event_without_destination_is_kept(
    server: Server, lam: LambdaClient, worker: str
) -> None:
    lam.publish_version(FunctionName=worker)
    lam.create_alias(FunctionName=worker, Name="live", FunctionVersion="1")
    lam.put_function_event_invoke_config(
        FunctionName=worker, Qualifier="live", MaximumRetryAttempts=0
    )
    failed_id = event_id(
        lam.invoke(
            FunctionName=worker, Qualifier="live", InvocationType="Event", Payload=b'{"fail": "no"}'
        )
    )

    def kept() -> dict[str, Any] | None:
        done = corral_cli(server, "events", "failed", "--json")
        assert done.exit_code == 0, done.output
        found = [e for e in json.loads(done.stdout)["Failed"] if e["Id"] == failed_id]
        return found[0] if found else None

    entry = wait_for(kept, timeout_s=30)
    assert entry["FunctionName"] == worker and entry["Qualifier"] == "live"
    assert entry["Reason"] == "RetriesExhausted" and entry["Attempts"] == 1  # no retry
    assert json.loads(entry["Payload"]) == {"fail": "no"}
    assert metric(server, "corral_async_events_failed") >= 1
    table = corral_cli(server, "events", "failed")
    assert table.exit_code == 0 and failed_id in table.stdout and "RetriesExhausted" in table.stdout
    # Fixed, then redriven: it runs again under the same request id and succeeds.
    lam.update_function_code(
        FunctionName=worker,
        ZipFile=zip_code({"app.py": FIXED}),
    )
    lam.update_alias(
        FunctionName=worker,
        Name="live",
        FunctionVersion=lam.publish_version(FunctionName=worker)["Version"],
    )
    done = corral_cli(server, "events", "redrive", failed_id)
    assert done.exit_code == 0 and "queued again: 1" in done.stdout, done.output
    wait_for(lambda: metric(server, "corral_async_events_delivered_total", function=worker) == 1)
    assert [m for m in server.log_messages(worker) if m.startswith("attempt of ")] == [
        f"attempt of {failed_id}"
    ] * 2
    assert kept() is None
    # Bad use says what to do.
    done = corral_cli(server, "events", "purge")
    assert done.exit_code != 0 and "--all" in done.output
    done = corral_cli(server, "events", "redrive", "--all")
    assert done.exit_code == 0 and "queued again: 0" in done.stdout
    assert server.get("/corral/v1/events", Limit="0").status_code == 400
    body = json.dumps({"Ids": ["x"], "All": True}).encode()
    headers = server.signed("DELETE", "/corral/v1/events/failed", body)
    answer = httpx.request(
        "DELETE", f"{server.url}/corral/v1/events/failed", content=body, headers=headers
    )
    assert answer.status_code == 400 and "either Ids" in answer.json()["message"]


def test_a_destination_function_that_does_not_exist_keeps_the_record(
    server: Server, lam: LambdaClient, worker: str
) -> None:
    ghost = unique("ghost")
    lam.put_function_event_invoke_config(
        FunctionName=worker,
        DestinationConfig={
            "OnSuccess": {"Destination": f"arn:aws:lambda:us-east-1:123456789012:function:{ghost}"}
        },
    )
    source = event_id(lam.invoke(FunctionName=worker, InvocationType="Event", Payload=b'{"n": 5}'))

    def kept() -> dict[str, Any] | None:
        done = corral_cli(server, "events", "failed", "--json")
        found = [e for e in json.loads(done.stdout)["Failed"] if e["FunctionName"] == ghost]
        return found[0] if found else None

    entry = wait_for(kept, timeout_s=30)
    assert entry["Kind"] == "destination" and entry["Reason"] == "DestinationUnreachable"
    record = json.loads(entry["Payload"])
    assert record["requestContext"]["requestId"] == source
    assert record["requestContext"]["condition"] == "Success"
    assert (
        metric(
            server,
            "corral_async_events_retried_total",
            function=ghost,
            reason="destination_unreachable",
        )
        == 2
    )
    # Purged, it is gone.
    done = corral_cli(server, "events", "purge", entry["Id"])
    assert done.exit_code == 0 and "purged: 1" in done.stdout
    assert kept() is None


def test_an_event_older_than_its_maximum_age_goes_to_on_failure(
    server: Server, lam: LambdaClient, worker: str, recorder: str
) -> None:
    arn = lam.get_function(FunctionName=recorder)["Configuration"]["FunctionArn"]
    lam.put_function_event_invoke_config(
        FunctionName=worker,
        MaximumEventAgeInSeconds=60,
        DestinationConfig={"OnFailure": {"Destination": arn}},
    )
    lam.put_function_concurrency(FunctionName=worker, ReservedConcurrentExecutions=0)
    started = time.monotonic()
    old = event_id(lam.invoke(FunctionName=worker, InvocationType="Event", Payload=b'{"n": 9}'))
    got = wait_for(lambda: records(server, recorder), timeout_s=90, interval_s=0.5)
    waited = time.monotonic() - started
    assert 60 <= waited < 75, f"given up after {waited:.1f} s"
    assert got[0]["requestContext"] == {
        "requestId": old,
        "functionArn": f"arn:aws:lambda:us-east-1:123456789012:function:{worker}:$LATEST",
        "condition": "EventAgeExceeded",
        "approximateInvokeCount": 0,
    }
    assert got[0]["requestPayload"] == {"n": 9}
    assert "responseContext" not in got[0]  # it never ran
    assert (
        metric(
            server, "corral_async_events_dropped_total", function=worker, reason="EventAgeExceeded"
        )
        == 1
    )
    assert (
        metric(server, "corral_async_events_retried_total", function=worker, reason="throttled")
        >= 4
    )


def test_queued_events_and_records_survive_kill_9(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data")
    try:
        lam = server.client()
        for name, code in [("src", WORKER), ("blocked", WORKER), ("sink", RECORDER)]:
            lam.create_function(
                FunctionName=name,
                Runtime="python3.11",
                Role=ROLE,
                Handler="app.handler",
                Code={"ZipFile": zip_code({"app.py": code})},
            )
        sink = lam.get_function(FunctionName="sink")["Configuration"]["FunctionArn"]
        lam.put_function_event_invoke_config(
            FunctionName="src", DestinationConfig={"OnSuccess": {"Destination": sink}}
        )
        lam.put_function_concurrency(FunctionName="sink", ReservedConcurrentExecutions=0)
        lam.put_function_concurrency(FunctionName="blocked", ReservedConcurrentExecutions=0)
        sources = [
            event_id(
                lam.invoke(
                    FunctionName="src",
                    InvocationType="Event",
                    Payload=json.dumps({"n": n}).encode(),
                )
            )
            for n in range(5)
        ]
        queued = [
            event_id(
                lam.invoke(
                    FunctionName="blocked",
                    InvocationType="Event",
                    Payload=json.dumps({"n": n}).encode(),
                )
            )
            for n in range(5)
        ]
        # Every source ran; its record waits for the sink, which takes nothing yet.
        wait_for(
            lambda: (
                metric(
                    server,
                    "corral_async_events_sent_to_destination_total",
                    function="src",
                    reason="Success",
                )
                == 5
            )
        )
        assert metric(server, "corral_async_events_queued") == 10
    finally:
        server.stop(signal.SIGKILL)
    again = start_server(tmp_path / "data")
    try:
        lam = again.client()
        assert metric(again, "corral_async_events_queued") == 10
        lam.delete_function_concurrency(FunctionName="sink")
        lam.delete_function_concurrency(FunctionName="blocked")
        got = wait_for(
            lambda: (found := records(again, "sink")) and len(found) >= 5 and found, timeout_s=60
        )
        assert {r["requestContext"]["requestId"] for r in got} == set(sources)
        ran = wait_for(
            lambda: (
                (found := [m for m in again.log_messages("blocked") if m.startswith("attempt of ")])
                and len(found) >= 5
                and found
            ),
            timeout_s=60,
        )
        assert {m.split()[-1] for m in ran} == set(queued)
        wait_for(lambda: metric(again, "corral_async_events_queued") == 0)
    finally:
        again.stop()

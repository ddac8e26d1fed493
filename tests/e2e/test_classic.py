"""Classic functions (no capacity provider) against a real ``corral serve``."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest

from tests.conftest import unique
from tests.helpers import ROLE, LambdaClient, Server, invoke, wait_for, zip_code


def test_create_returns_an_active_function_with_aws_shapes(
    lam: LambdaClient, make_function: Any
) -> None:
    name = make_function(
        "shape",
        MemorySize=256,
        Timeout=7,
        Description="d",
        Environment={"Variables": {"MY_VAR": "1"}},
    )
    config = lam.get_function_configuration(FunctionName=name)
    assert config["State"] == "Active"
    assert config["FunctionArn"] == f"arn:aws:lambda:us-east-1:123456789012:function:{name}"
    assert config["Version"] == "$LATEST"
    assert (config["MemorySize"], config["Timeout"], config["Description"]) == (256, 7, "d")
    assert config["Environment"]["Variables"] == {"MY_VAR": "1"}
    assert config["Architectures"] == ["x86_64"]
    assert config["LoggingConfig"] == {"LogFormat": "Text", "LogGroup": f"/aws/lambda/{name}"}
    assert len(base64.b64decode(config["CodeSha256"])) == 32
    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1})


def test_invoke_runs_the_handler_under_awslambdaric_and_reports_the_version(
    lam: LambdaClient, make_function: Any
) -> None:
    name = make_function("echo", Environment={"Variables": {"MY_VAR": "x"}})
    response = invoke(lam, name, {"hello": "world"})
    assert response["StatusCode"] == 200
    assert response["ExecutedVersion"] == "$LATEST"
    assert "FunctionError" not in response
    body = json.loads(response["Body"])
    assert body["event"] == {"hello": "world"}
    assert body["arn"] == f"arn:aws:lambda:us-east-1:123456789012:function:{name}"
    assert body["env"]["AWS_LAMBDA_FUNCTION_NAME"] == name
    assert body["env"]["AWS_LAMBDA_INITIALIZATION_TYPE"] == "on-demand"
    assert "AWS_LAMBDA_MAX_CONCURRENCY" not in body["env"]
    assert body["env"]["MY_VAR"] == "x"
    assert body["request_id"] == response["ResponseMetadata"]["RequestId"]


def test_tail_returns_the_logs_with_start_end_report_and_init_duration_once(
    lam: LambdaClient, make_function: Any
) -> None:
    name = make_function("tail")
    first = invoke(lam, name, {"n": 1}, LogType="Tail")
    second = invoke(lam, name, {"n": 2}, LogType="Tail")
    cold = base64.b64decode(first["LogResult"]).decode()
    warm = base64.b64decode(second["LogResult"]).decode()
    request_id = json.loads(first["Body"])["request_id"]
    assert f"START RequestId: {request_id} Version: $LATEST" in cold
    assert f"handling {request_id}" in cold
    assert f"END RequestId: {request_id}" in cold
    assert "Init Duration:" in cold and "Max Memory Used:" in cold
    assert "REPORT RequestId:" in warm and "Init Duration" not in warm
    # Warm reuse: the same environment (log stream) and process answered both.
    stream = "AWS_LAMBDA_LOG_STREAM_NAME"
    one, two = json.loads(first["Body"]), json.loads(second["Body"])
    assert (one["env"][stream], one["pid"]) == (two["env"][stream], two["pid"])


def test_a_handler_exception_is_a_function_error_with_the_runtime_error_json(
    lam: LambdaClient, make_function: Any
) -> None:
    name = make_function("boom")
    response = invoke(lam, name, {"fail": "it broke"})
    assert response["StatusCode"] == 200
    assert response["FunctionError"] == "Unhandled"
    error = json.loads(response["Body"])
    assert error["errorType"] == "ValueError"
    assert error["errorMessage"] == "it broke"
    assert error["stackTrace"]


def test_a_timeout_answers_sandbox_timedout_and_the_next_call_works(
    lam: LambdaClient, make_function: Any
) -> None:
    name = make_function("slow", Timeout=1)
    started = time.monotonic()
    response = invoke(lam, name, {"sleep": 30})
    # Long before the handler would have finished (a bound a busy machine cannot reach).
    assert time.monotonic() - started < 15
    assert response["FunctionError"] == "Unhandled"
    error = json.loads(response["Body"])
    assert error["errorType"] == "Sandbox.Timedout"
    assert error["errorMessage"].endswith("Task timed out after 1.00 seconds")
    assert "FunctionError" not in invoke(lam, name, {"ok": 1})


def test_client_context_reaches_the_handler(lam: LambdaClient, make_function: Any) -> None:
    name = make_function("ctx")
    context = base64.b64encode(json.dumps({"custom": {"tenant": "t1"}}).encode()).decode()
    body = json.loads(invoke(lam, name, {}, ClientContext=context)["Body"])
    assert body["client_context"] == {"tenant": "t1"}


def test_dry_run_answers_204_without_running(
    lam: LambdaClient, make_function: Any, server: Server
) -> None:
    name = make_function("dry")
    response = invoke(lam, name, {"mark": "dry"}, InvocationType="DryRun")
    assert response["StatusCode"] == 204
    # Nothing was queued to run later either, so once a real invoke has run, the function
    # has run exactly once and never for the dry run.
    assert (
        server.get("/metrics").text.count(f'corral_async_events_received_total{{function="{name}"')
        == 0
    )
    invoke(lam, name, {"mark": "real"})
    assert server.marks(name, "dry") == [] and len(server.marks(name, "real")) == 1


def test_event_invocations_answer_202_and_run_in_the_background(
    lam: LambdaClient, make_function: Any, server: Server
) -> None:
    name = make_function("event")
    response = invoke(lam, name, {"mark": "event"}, InvocationType="Event")
    assert response["StatusCode"] == 202
    assert response["Body"] == b""
    wait_for(lambda: server.marks(name, "event"), timeout_s=20)


def test_a_failing_event_is_retried_twice(
    lam: LambdaClient, make_function: Any, server: Server
) -> None:
    code = zip_code(
        {
            "app.py": (
                "def handler(event, context):\n"
                "    print('attempt')\n"
                "    raise RuntimeError('always')\n"
            )
        }
    )
    name = make_function("retry", code=code)

    def attempts() -> int:
        return server.log_messages(name).count("attempt")

    invoke(lam, name, {}, InvocationType="Event")
    # Given up after its two retries: out of the queue, so no attempt can follow.
    dropped = (
        f'corral_async_events_dropped_total{{function="{name}",reason="RetriesExhausted"}} 1.0'
    )
    wait_for(lambda: dropped in server.get("/metrics").text, timeout_s=30)
    assert attempts() == 3


def test_update_code_and_configuration_take_effect(lam: LambdaClient, make_function: Any) -> None:
    name = make_function("update")
    invoke(lam, name, {})
    code = zip_code({"app.py": "def handler(e, c):\n    return 'v2'\n"})
    updated = lam.update_function_code(FunctionName=name, ZipFile=code)
    assert updated["LastUpdateStatus"] == "InProgress"  # as AWS answers (test_fidelity)
    lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1})
    assert invoke(lam, name, {})["Body"] == b'"v2"'
    lam.update_function_configuration(FunctionName=name, Environment={"Variables": {"MY_X": "2"}})
    code3 = zip_code({"app.py": "import os\ndef handler(e, c):\n    return os.environ['MY_X']\n"})
    lam.update_function_code(FunctionName=name, ZipFile=code3)
    assert invoke(lam, name, {})["Body"] == b'"2"'


def test_versions_and_aliases_route_to_the_right_code(
    lam: LambdaClient, make_function: Any
) -> None:
    name = make_function("ver", code=zip_code({"app.py": "def handler(e, c):\n    return 1\n"}))
    v1 = lam.publish_version(FunctionName=name)
    assert v1["Version"] == "1" and v1["State"] == "Active"
    assert lam.publish_version(FunctionName=name)["Version"] == "1"  # unchanged: same version
    lam.update_function_code(
        FunctionName=name, ZipFile=zip_code({"app.py": "def handler(e, c):\n    return 2\n"})
    )
    v2 = lam.publish_version(FunctionName=name, Description="second")
    assert v2["Version"] == "2" and v2["Description"] == "second"
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    assert invoke(lam, name, {}, Qualifier="live")["Body"] == b"1"
    assert invoke(lam, name, {}, Qualifier="live")["ExecutedVersion"] == "1"
    assert invoke(lam, f"{name}:2", {})["Body"] == b"2"
    lam.update_alias(FunctionName=name, Name="live", FunctionVersion="2")
    assert invoke(lam, name, {}, Qualifier="live")["Body"] == b"2"
    versions = [v["Version"] for v in lam.list_versions_by_function(FunctionName=name)["Versions"]]
    assert versions == ["$LATEST", "1", "2"]
    assert [a["Name"] for a in lam.list_aliases(FunctionName=name)["Aliases"]] == ["live"]
    with pytest.raises(lam.exceptions.ResourceConflictException):
        lam.delete_function(FunctionName=name, Qualifier="2")
    lam.delete_alias(FunctionName=name, Name="live")
    lam.delete_function(FunctionName=name, Qualifier="2")
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        invoke(lam, name, {}, Qualifier="2")


def test_reserved_concurrency_throttles_with_429(lam: LambdaClient, make_function: Any) -> None:
    name = make_function("reserved")
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    with pytest.raises(lam.exceptions.TooManyRequestsException) as caught:
        invoke(lam, name, {})
    assert caught.value.response["Error"].get("Code") == "TooManyRequestsException"
    error: dict[str, Any] = dict(caught.value.response)
    assert error["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"
    assert lam.get_function_concurrency(FunctionName=name)["ReservedConcurrentExecutions"] == 0
    lam.delete_function_concurrency(FunctionName=name)
    assert invoke(lam, name, {})["StatusCode"] == 200


def test_list_functions_pages_with_marker(lam: LambdaClient, make_function: Any) -> None:
    names = {make_function("page") for _ in range(3)}
    seen: list[str] = []
    marker = None
    while True:
        paging: dict[str, Any] = {"Marker": marker} if marker else {}
        page = lam.list_functions(MaxItems=2, **paging)
        assert len(page["Functions"]) <= 2
        seen += [f["FunctionName"] for f in page["Functions"]]
        marker = page.get("NextMarker")
        if not marker:
            break
    assert names <= set(seen)
    assert len(seen) == len(set(seen))


def test_tags_are_kept_and_listed(lam: LambdaClient, make_function: Any) -> None:
    name = make_function("tags", Tags={"team": "a"})
    arn = f"arn:aws:lambda:us-east-1:123456789012:function:{name}"
    lam.tag_resource(Resource=arn, Tags={"env": "dev"})
    assert lam.list_tags(Resource=arn)["Tags"] == {"team": "a", "env": "dev"}
    lam.untag_resource(Resource=arn, TagKeys=["team"])
    assert lam.get_function(FunctionName=name)["Tags"] == {"env": "dev"}


def test_get_function_gives_a_code_location_that_serves_the_zip(
    lam: LambdaClient, make_function: Any
) -> None:
    import urllib.request

    code = zip_code({"app.py": "def handler(e, c):\n    return 0\n"})
    name = make_function("dl", code=code)
    location = lam.get_function(FunctionName=name)["Code"]["Location"]
    with urllib.request.urlopen(location) as response:
        assert response.read() == code


def test_delete_function_removes_it(lam: LambdaClient) -> None:
    name = unique("gone")
    lam.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": zip_code({"app.py": "def handler(e, c):\n    return 0\n"})},
    )
    invoke(lam, name, {})
    assert lam.delete_function(FunctionName=name)["StatusCode"] == 204
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_function(FunctionName=name)

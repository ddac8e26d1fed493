"""Node.js functions as Managed Instances run them (issue #17): ``nodejs22.x`` and
``nodejs24.x`` under the official ``aws-lambda-ric`` (npm, pinned), one process per
execution environment whose worker threads each serve many requests with ``async``.

Real servers, real containers, real Node workers: what a user checks with boto3 and
``corral logs``.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from corral.cli import main
from corral.core.settings import Settings
from corral.sandbox.interpreters import RuntimeRegistry
from tests.conftest import unique
from tests.helpers import ROLE, LambdaClient, Server, error_of, raw, wait_for, zip_code

pytestmark = pytest.mark.usefixtures("node_runtimes")

# One module for every behaviour: the event says what to do.
APP = r"""
import fs from 'node:fs/promises';

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
let served = 0;

export const handler = async (event, context) => {
  served += 1;
  const id = context.awsRequestId;
  if (event.log) {
    for (let step = 0; step < event.log; step++) {
      console.log(`step ${step} of ${id}`);
      await sleep(event.pause || 0);
    }
    console.warn(`warned in ${id}`);
    process.stdout.write(`raw of ${id}\n`);
    return id;
  }
  if (event.read) return (await fs.readFile('/var/task/index.mjs', 'utf8')).length;
  if (event.throw) throw new TypeError(`bad input ${event.n}`);
  if (event.reject) {
    Promise.reject(new Error(`nobody awaits ${event.n}`));
    await sleep(100);
    return 'returned anyway';
  }
  if (event.uncaught) {
    setTimeout(() => { throw new RangeError(`late ${event.n}`); }, 10);
    await sleep(100);
    return 'returned anyway';
  }
  if (event.exit) { setTimeout(() => process.exit(3), 50); await sleep(2000); return 'never'; }
  if (event.hog) {
    const kept = [];
    for (let i = 0; i < 24; i++) { kept.push(Buffer.alloc(128 * 1024 * 1024, 1)); await sleep(1); }
    return kept.length;
  }
  await sleep(event.sleep || 0);
  return {n: event.n, id, served, remaining: context.getRemainingTimeInMillis(),
          arn: context.invokedFunctionArn, node: process.version,
          workers: process.env.AWS_LAMBDA_NODEJS_WORKER_COUNT};
};
"""


@pytest.fixture(scope="module")
def node_runtimes() -> None:
    """The Node.js runtimes must be installed (``scripts/setup`` does): a missing one is a
    failure here, not a skip."""
    installed = RuntimeRegistry(Settings.from_env().runtimes_dir).available()
    missing = {"nodejs22.x", "nodejs24.x"} - set(installed)
    assert not missing, f"run `corral runtimes install` first: {missing} not installed"


def call(lam: LambdaClient, name: str, event: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    answer = lam.invoke(FunctionName=name, Payload=json.dumps(event).encode(), **kwargs)
    result: dict[str, Any] = {"payload": json.loads(answer["Payload"].read())}
    result["error"] = answer.get("FunctionError")
    if "LogResult" in answer:
        result["tail"] = base64.b64decode(answer["LogResult"]).decode()
    return result


@pytest.fixture(scope="module")
def node_fn(lam: LambdaClient, provider_arn: str) -> Iterator[str]:
    """A Managed Instances Node.js function, version 1 on one environment of 1 vCPU with
    the default concurrency (64 per vCPU)."""
    name = unique("node")
    lam.create_function(
        FunctionName=name,
        Runtime="nodejs22.x",
        Role=ROLE,
        Handler="index.handler",
        Code={"ZipFile": zip_code({"index.mjs": APP})},
        MemorySize=2048,
        Timeout=20,
        CapacityProviderConfig={
            "LambdaManagedInstancesCapacityProviderConfig": {"CapacityProviderArn": provider_arn}
        },
    )
    lam.publish_version(FunctionName=name)
    wait_for(
        lambda: (
            lam.get_function_configuration(FunctionName=name, Qualifier="1")["State"] == "Active"
        ),
        timeout_s=60,
    )
    lam.put_function_scaling_config(
        FunctionName=name,
        Qualifier="1",
        FunctionScalingConfig={"MinExecutionEnvironments": 1, "MaxExecutionEnvironments": 1},
    )
    yield f"{name}:1"
    lam.delete_function(FunctionName=name)


def one_environment(server: Server, qualified: str) -> dict[str, Any]:
    name, version = qualified.split(":")
    environments = wait_for(
        lambda: (found := server.environments(name, version)) and len(found) == 1 and found
    )
    environment: dict[str, Any] = environments[0]
    return environment


def test_64_concurrent_awaits_share_one_environment_of_one_vcpu(
    lam: LambdaClient, server: Server, node_fn: str
) -> None:
    environment = one_environment(server, node_fn)
    assert environment["vCpu"] == 1
    assert environment["concurrencyLimit"] == 64  # Node.js: 64 per vCPU by default
    assert environment["workerPool"] == "aws-lambda-ric"
    with ThreadPoolExecutor(64) as pool:
        list(pool.map(lambda n: call(lam, node_fn, {"n": n}), range(64)))  # warm
        started = time.monotonic()
        results = list(pool.map(lambda n: call(lam, node_fn, {"n": n, "sleep": 200}), range(64)))
        elapsed = time.monotonic() - started
    assert [r["error"] for r in results] == [None] * 64
    assert sorted(r["payload"]["n"] for r in results) == list(range(64))
    assert len({r["payload"]["id"] for r in results}) == 64
    assert elapsed < 1.0, f"64 x 200 ms awaits took {elapsed:.2f} s on one environment"
    assert one_environment(server, node_fn)["id"] == environment["id"]
    first = results[0]["payload"]
    assert first["node"].startswith("v22.")
    assert first["workers"] == "8"  # aws-lambda-ric's default: 8 per vCPU
    assert first["arn"].endswith(f":function:{node_fn}")
    assert 0 < first["remaining"] <= 20000


def test_concurrent_requests_logs_are_filed_under_their_own_request(
    lam: LambdaClient, server: Server, node_fn: str
) -> None:
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda _: call(lam, node_fn, {"log": 3, "pause": 30}), range(16)))
    ids = [r["payload"] for r in results]
    name = node_fn.split(":")[0]

    def mine(request_id: str) -> list[dict[str, Any]]:
        return server.log_events(name, requestId=request_id)

    for request_id in ids:
        events = wait_for(lambda rid=request_id: (e := mine(rid)) and len(e) >= 6 and e)
        lines = [json.loads(e["message"]) for e in events]
        assert {e["requestId"] for e in events} == {request_id}
        assert lines[0]["type"] == "platform.start" and lines[-1]["type"] == "platform.report"
        app_lines = [line for line in lines if "level" in line]
        assert [line["message"] for line in app_lines] == [
            f"step 0 of {request_id}",
            f"step 1 of {request_id}",
            f"step 2 of {request_id}",
            f"warned in {request_id}",
        ]
        assert [line["level"] for line in app_lines] == ["INFO", "INFO", "INFO", "WARN"]
        assert all(line["requestId"] == request_id for line in app_lines)
    # A raw write to stdout carries no request id: it is kept, unattributed.
    raw = [e for e in server.log_events(name) if e["message"].startswith("raw of ")]
    assert {e["message"][7:] for e in raw} == set(ids)
    assert {e["requestId"] for e in raw} == {""}
    # `corral logs --request-id` gives exactly one request's lines.
    done = CliRunner().invoke(
        main.app, ["logs", name, "--request-id", ids[3], "--json", "--endpoint-url", server.url]
    )
    assert done.exit_code == 0, done.output
    printed = [json.loads(line) for line in done.stdout.splitlines()]
    assert {p["requestId"] for p in printed} == {ids[3]}
    assert sum(f"of {ids[3]}" in p["message"] for p in printed) == 3
    # LogType=Tail: the request's own lines, none of its neighbours'.
    with ThreadPoolExecutor(4) as pool:
        tails = list(
            pool.map(
                lambda _: call(lam, node_fn, {"log": 2, "pause": 20}, LogType="Tail"), range(4)
            )
        )
    for result in tails:
        rid = result["payload"]
        assert f"step 1 of {rid}" in result["tail"]
        assert all(other["payload"] not in result["tail"] for other in tails if other != result)


def test_errors_fail_only_their_own_invocation(lam: LambdaClient, node_fn: str) -> None:
    faults = [
        {"throw": True, "n": 1},
        {"reject": True, "n": 2},
        {"uncaught": True, "n": 3},
    ]
    with ThreadPoolExecutor(24) as pool:
        bystanders = [pool.submit(call, lam, node_fn, {"n": n, "sleep": 400}) for n in range(20)]
        time.sleep(0.1)
        failed = [f.result() for f in [pool.submit(call, lam, node_fn, e) for e in faults]]
        assert [b.result()["error"] for b in bystanders] == [None] * 20
    thrown, rejected, uncaught = (f["payload"] for f in failed)
    assert [f["error"] for f in failed] == ["Unhandled"] * 3
    assert thrown["errorType"] == "TypeError" and thrown["errorMessage"] == "bad input 1"
    assert thrown["trace"][0] == "TypeError: bad input 1"
    assert rejected["errorType"] == "Runtime.UnhandledPromiseRejection"
    assert rejected["errorMessage"] == "Error: nobody awaits 2"
    assert uncaught["errorType"] == "RangeError" and uncaught["errorMessage"] == "late 3"
    # The workers serve on: every one of the 8 answers again.
    with ThreadPoolExecutor(16) as pool:
        after = list(pool.map(lambda n: call(lam, node_fn, {"n": n, "sleep": 100}), range(16)))
    assert [a["error"] for a in after] == [None] * 16


def test_fs_calls_do_not_wait_for_the_next_invocation(lam: LambdaClient, node_fn: str) -> None:
    """Idle workers' polls must not hold libuv's thread pool (fs uses it)."""
    started = time.monotonic()
    result = call(lam, node_fn, {"read": True})
    assert result["error"] is None and result["payload"] == len(APP)
    assert time.monotonic() - started < 2.0


def test_a_worker_that_exits_fails_only_what_it_ran_and_is_replaced(
    lam: LambdaClient, server: Server, node_fn: str
) -> None:
    environment = one_environment(server, node_fn)
    with ThreadPoolExecutor(40) as pool:
        others = [pool.submit(call, lam, node_fn, {"n": n, "sleep": 600}) for n in range(32)]
        time.sleep(0.1)
        started = time.monotonic()
        exited = call(lam, node_fn, {"exit": True})
        took = time.monotonic() - started
        results = [o.result() for o in others]
    assert exited["error"] == "Unhandled"
    assert exited["payload"]["errorType"] == "Runtime.ExitError"
    assert exited["payload"]["errorMessage"].endswith("Runtime exited with error: exit status 3")
    assert took < 1.5, f"the exit was reported after {took:.2f} s"
    # The same worker ran a few of the others (about one in eight): those fail the same
    # way, the rest succeed.
    lost = [r for r in results if r["error"]]
    assert len(lost) < 16
    assert {r["payload"]["errorType"] for r in lost} <= {"Runtime.ExitError"}
    assert one_environment(server, node_fn)["id"] == environment["id"]
    with ThreadPoolExecutor(64) as pool:
        after = list(pool.map(lambda n: call(lam, node_fn, {"n": n, "sleep": 200}), range(64)))
    assert [a["error"] for a in after] == [None] * 64


def test_out_of_memory_ends_the_process_its_invocations_fail_and_it_is_replaced(
    lam: LambdaClient, server: Server, node_fn: str
) -> None:
    """The process dies (the kernel kills it for memory): everything it ran fails with
    Runtime.OutOfMemory, as on Lambda, and a new environment takes its place."""
    environment = one_environment(server, node_fn)
    with ThreadPoolExecutor(8) as pool:
        others = [pool.submit(call, lam, node_fn, {"n": n, "sleep": 15000}) for n in range(6)]
        time.sleep(0.1)
        crashed = call(lam, node_fn, {"hog": True})
        results = [o.result() for o in others]
    assert crashed["payload"]["errorType"] == "Runtime.OutOfMemory", crashed
    assert {r["payload"]["errorType"] for r in results} == {"Runtime.OutOfMemory"}
    replacement = wait_for(
        lambda: (
            (e := one_environment(server, node_fn))["id"] != environment["id"]
            and e["state"] == "Ready"
            and e
        ),
        timeout_s=30,
    )
    assert replacement["concurrencyLimit"] == 64
    assert call(lam, node_fn, {"n": 1})["error"] is None


CLASSIC_FILES = {
    "lib/app.js": "exports.handler = async (event, context) => ({cjs: true, event, "
    "remaining: context.getRemainingTimeInMillis(), name: context.functionName});\n",
    "esm.mjs": "export const handler = async (event) => ({esm: true, event});\n"
    "export const nested = {deep: {handler: async () => 'dotted'}};\n",
    "slow.js": "exports.handler = async () => { console.log('waiting'); "
    "await new Promise((r) => setTimeout(r, 5000)); };\n",
    "callback.js": "exports.handler = (event, context, callback) => callback(null, 1);\n",
    "broken.js": "exports.handler = async () => {\n",
    "failing.js": "exports.handler = async () => { throw new Error('classic failure'); };\n",
}


@pytest.mark.parametrize("runtime", ["nodejs22.x", "nodejs24.x"])
def test_classic_node_functions_commonjs_esm_and_errors(
    lam: LambdaClient, make_function: Any, runtime: str
) -> None:
    code = zip_code(CLASSIC_FILES)

    def make(handler: str, **kwargs: Any) -> str:
        name: str = make_function("nodec", code=code, Runtime=runtime, Handler=handler, **kwargs)
        return name

    cjs = call(lam, make("lib/app.handler"), {"a": 1}, LogType="Tail")
    assert cjs["error"] is None
    assert cjs["payload"]["cjs"] is True and cjs["payload"]["event"] == {"a": 1}
    assert 0 < cjs["payload"]["remaining"] <= 3000
    assert "START RequestId:" in cjs["tail"] and "REPORT RequestId:" in cjs["tail"]
    assert "Init Duration" in cjs["tail"]
    assert call(lam, make("esm.handler"), {"b": 2})["payload"] == {"esm": True, "event": {"b": 2}}
    assert call(lam, make("esm.nested.deep.handler"), {})["payload"] == "dotted"
    failing = call(lam, make("failing.handler"), {})
    assert failing["error"] == "Unhandled"
    assert failing["payload"]["errorType"] == "Error"
    assert failing["payload"]["errorMessage"] == "classic failure"
    slow = call(lam, make("slow.handler", Timeout=1), {}, LogType="Tail")
    assert slow["payload"]["errorType"] == "Sandbox.Timedout"
    assert "waiting" in slow["tail"]
    if runtime == "nodejs22.x":
        # Classic nodejs22.x keeps callback handlers (aws-lambda-ric 3 runs them), as on Lambda.
        assert call(lam, make("callback.handler"), {})["payload"] == 1
    refused = [
        ("broken.handler", "Runtime.UserCodeSyntaxError"),
        ("missing.handler", "Runtime.ImportModuleError"),
        ("lib/app.nothere", "Runtime.HandlerNotFound"),
    ]
    if runtime == "nodejs24.x":  # "removed starting with Node.js 24"
        refused.append(("callback.handler", "Runtime.CallbackHandlerDeprecated"))
    for handler, error_type in refused:
        result = call(lam, make(handler), {})
        assert result["error"] == "Unhandled", handler
        assert result["payload"]["errorType"] == error_type, (handler, result)


def test_managed_node_checks(lam: LambdaClient, provider_arn: str, server: Server) -> None:
    config: Any = {
        "LambdaManagedInstancesCapacityProviderConfig": {"CapacityProviderArn": provider_arn}
    }
    code = zip_code({"index.mjs": APP})
    params: dict[str, Any] = {
        "FunctionName": unique("node20"),
        "Role": ROLE,
        "Handler": "index.handler",
        "Code": {"ZipFile": code},
        "MemorySize": 2048,
    }
    error, status, message = error_of(
        lam.create_function, Runtime="nodejs20.x", CapacityProviderConfig=config, **params
    )
    assert (error, status) == ("InvalidParameterValueException", 400)
    assert "nodejs20.x" in message
    # A version whose init fails in every worker fails as a whole, with the client's error.
    broken = unique("nodebroken")
    lam.create_function(
        **{**params, "FunctionName": broken},
        Runtime="nodejs24.x",
        CapacityProviderConfig=config,
    )
    lam.update_function_code(FunctionName=broken, ZipFile=zip_code({"index.mjs": "export {"}))
    wait_for(
        lambda: (
            lam.get_function_configuration(FunctionName=broken)["LastUpdateStatus"] == "Successful"
        )
    )
    lam.publish_version(FunctionName=broken)
    failed = wait_for(
        lambda: (
            (c := lam.get_function_configuration(FunctionName=broken, Qualifier="1"))["State"]
            == "Failed"
            and c
        ),
        timeout_s=60,
    )
    assert failed["StateReasonCode"] == "FunctionError.RuntimeInitError"
    assert "Runtime.UserCodeSyntaxError" in failed["StateReason"]
    # Managed Instances refuse callback handlers on Node.js 22 too, as aws-lambda-ric 4 does.
    lam.update_function_configuration(
        FunctionName=broken, Runtime="nodejs22.x", Handler="callback.handler"
    )
    lam.update_function_code(
        FunctionName=broken, ZipFile=zip_code({"callback.js": CLASSIC_FILES["callback.js"]})
    )
    wait_for(
        lambda: (
            lam.get_function_configuration(FunctionName=broken)["LastUpdateStatus"] == "Successful"
        )
    )
    lam.publish_version(FunctionName=broken)
    callback = wait_for(
        lambda: (
            (c := lam.get_function_configuration(FunctionName=broken, Qualifier="2"))["State"]
            == "Failed"
            and c
        ),
        timeout_s=60,
    )
    assert "Runtime.CallbackHandlerDeprecated" in callback["StateReason"]
    assert "Node.js 22 with Managed Instances" in callback["StateReason"]
    lam.delete_function(FunctionName=broken)


STREAMING = r"""
import { threadId } from 'node:worker_threads';
export const handler = awslambda.streamifyResponse(async (event, responseStream, context) => {
  responseStream.setContentType('text/plain');
  responseStream.write(`first of ${context.awsRequestId} in ${threadId}\n`);
  await new Promise((resolve) => setTimeout(resolve, event.pause ?? 1000));
  if (event.fail) throw new Error('broke mid-stream');
  responseStream.write('second');
  responseStream.end();
});
"""


def stream(lam: LambdaClient, name: str, event: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Invoke with a streamed response; note when each event arrived."""
    started = time.monotonic()
    answer = lam.invoke_with_response_stream(
        FunctionName=name, Payload=json.dumps(event).encode(), **kwargs
    )
    events = [(time.monotonic() - started, e) for e in answer["EventStream"]]
    chunks = [(at, e["PayloadChunk"]["Payload"]) for at, e in events if "PayloadChunk" in e]
    complete = [e["InvokeComplete"] for _, e in events if "InvokeComplete" in e]
    assert len(complete) == 1 and "InvokeComplete" in events[-1][1], events
    return {
        "status": answer["StatusCode"],
        "content_type": answer.get("ResponseStreamContentType"),
        "version": answer.get("ExecutedVersion"),
        "chunks": chunks,
        "body": b"".join(chunk for _, chunk in chunks),
        "complete": complete[0],
        "total_s": events[-1][0],
    }


@pytest.mark.parametrize("runtime", ["nodejs22.x", "nodejs24.x"])
def test_a_streamed_response_reaches_boto3_as_it_is_written(
    lam: LambdaClient, make_function: Any, runtime: str
) -> None:
    name = make_function(
        "stream", code=zip_code({"index.mjs": STREAMING}), Runtime=runtime, Handler="index.handler"
    )
    stream(lam, name, {"pause": 0})  # the cold start is not what is measured
    got = stream(lam, name, {}, LogType="Tail")
    assert got["status"] == 200 and got["content_type"] == "text/plain"
    assert got["version"] == "$LATEST"
    first_at, first = got["chunks"][0]
    assert first.startswith(b"first of ")
    request_id, thread = first.decode().split()[2::2]
    assert got["body"] == f"first of {request_id} in {thread}\nsecond".encode()
    assert first_at < 0.5, f"the first chunk came after {first_at:.2f} s"
    assert got["total_s"] >= 1.0
    assert "ErrorCode" not in got["complete"]
    log = base64.b64decode(got["complete"]["LogResult"]).decode()
    assert f"REPORT RequestId: {request_id}" in log
    # An error after the first chunk ends the stream with the error, still a 200.
    failed = stream(lam, name, {"fail": True, "pause": 100})
    assert failed["status"] == 200 and failed["body"].startswith(b"first of ")
    assert failed["complete"]["ErrorCode"] == "Error"
    assert failed["complete"]["ErrorDetails"] == "broke mid-stream"
    # Plain Invoke of a streaming function gets the whole response at once.
    whole = lam.invoke(FunctionName=name, Payload=b'{"pause": 0}')
    assert whole["Payload"].read().endswith(b"\nsecond") and "FunctionError" not in whole


def worker_of(streamed: dict[str, Any]) -> str:
    """The worker thread that wrote a STREAMING response (its first chunk names it)."""
    return str(streamed["chunks"][0][1].decode().split()[-1])


def test_streams_of_a_managed_node_function_run_concurrently(
    lam: LambdaClient, provider_arn: str, server: Server
) -> None:
    name = unique("mstream")
    lam.create_function(
        FunctionName=name,
        Runtime="nodejs24.x",
        Role=ROLE,
        Handler="index.handler",
        Code={"ZipFile": zip_code({"index.mjs": STREAMING})},
        MemorySize=2048,
        CapacityProviderConfig={
            "LambdaManagedInstancesCapacityProviderConfig": {"CapacityProviderArn": provider_arn}
        },
    )
    try:
        lam.publish_version(FunctionName=name)
        wait_for(
            lambda: (
                lam.get_function_configuration(FunctionName=name, Qualifier="1")["State"]
                == "Active"
            ),
            timeout_s=60,
        )
        # One environment (thread ids are per process), of 1 vCPU: 8 worker threads.
        lam.put_function_scaling_config(
            FunctionName=name,
            Qualifier="1",
            FunctionScalingConfig={"MinExecutionEnvironments": 1, "MaxExecutionEnvironments": 1},
        )
        environment = one_environment(server, f"{name}:1")
        # The client runs one stream at a time per worker thread (as on Lambda), and Corral
        # hands each invocation to the longest-waiting poll: once all 8 workers poll, 8
        # streams land on 8 workers. Workers start in the background after the version is
        # Active, so first let every one of them serve once.
        seen: set[str] = set()
        for _ in range(30):
            with ThreadPoolExecutor(8) as pool:
                warm = list(pool.map(lambda _: stream(lam, f"{name}:1", {"pause": 100}), range(8)))
            seen |= {worker_of(r) for r in warm}
            if len(seen) == 8:
                break
        assert len(seen) == 8, f"only workers {sorted(seen)} served"
        with ThreadPoolExecutor(8) as pool:
            started = time.monotonic()
            results = list(pool.map(lambda _: stream(lam, f"{name}:1", {"pause": 500}), range(8)))
            elapsed = time.monotonic() - started
        assert {worker_of(r) for r in results} == seen
        assert one_environment(server, f"{name}:1")["id"] == environment["id"]
        assert all(r["body"].endswith(b"\nsecond") for r in results), [
            r["complete"] for r in results
        ]
        assert len({r["body"] for r in results}) == 8
        # Each stream's first chunk came well before its end (it waits 0.5 s in between).
        assert all(r["chunks"][0][0] < r["total_s"] - 0.3 for r in results)
        assert elapsed < 2.0, f"8 streams of 0.5 s took {elapsed:.2f} s"
    finally:
        lam.delete_function(FunctionName=name)


HTTP_STREAMING = r"""
export const handler = awslambda.streamifyResponse(async (event, responseStream) => {
  const stream = awslambda.HttpResponseStream.from(responseStream, {
    statusCode: 201, headers: {'x-kind': 'stream'}, cookies: ['c=1; Path=/'],
  });
  stream.write(`first for ${event.rawPath}\n`);
  await new Promise((resolve) => setTimeout(resolve, 1000));
  stream.write('second');
  stream.end();
});
"""


def test_a_response_stream_url_sends_chunks_as_they_are_written(
    lam: LambdaClient, make_function: Any
) -> None:
    name = make_function(
        "urlstream",
        code=zip_code({"index.mjs": HTTP_STREAMING}),
        Runtime="nodejs22.x",
        Handler="index.handler",
    )
    url = lam.create_function_url_config(
        FunctionName=name, AuthType="NONE", InvokeMode="RESPONSE_STREAM"
    )["FunctionUrl"]
    assert httpx.get(f"{url}warm", timeout=30).status_code == 201  # not the cold start

    def timed(path: str) -> tuple[httpx.Response, list[tuple[float, bytes]]]:
        started = time.monotonic()
        with httpx.stream("GET", f"{url}{path}", timeout=30) as answer:
            chunks = [(time.monotonic() - started, c) for c in answer.iter_raw() if c]
        return answer, chunks

    answer, chunks = timed("a/b")
    # The prelude gave the status, headers and cookies; the body came in two pieces, the
    # first long before the end.
    assert answer.status_code == 201 and answer.headers["x-kind"] == "stream"
    assert answer.headers["set-cookie"] == "c=1; Path=/"
    assert b"".join(c for _, c in chunks) == b"first for /a/b\nsecond"
    assert chunks[0][1] == b"first for /a/b\n" and chunks[0][0] < chunks[-1][0] - 0.5
    # A stream without a prelude is a 200 with the stream's content type.
    plain = make_function(
        "urlplain",
        code=zip_code({"index.mjs": STREAMING}),
        Runtime="nodejs22.x",
        Handler="index.handler",
    )
    url = lam.create_function_url_config(
        FunctionName=plain, AuthType="NONE", InvokeMode="RESPONSE_STREAM"
    )["FunctionUrl"]
    answer = httpx.post(url, json={"pause": 10}, timeout=30)
    assert answer.status_code == 200 and answer.headers["content-type"] == "text/plain"
    assert answer.text.endswith("\nsecond")
    # The same function behind a BUFFERED URL answers once, whole.
    lam.update_function_url_config(FunctionName=plain, InvokeMode="BUFFERED")
    assert httpx.post(url, json={"pause": 10}, timeout=30).text.endswith("\nsecond")


def test_streaming_invoke_of_a_python_function_and_bad_requests(
    lam: LambdaClient, make_function: Any, server: Server
) -> None:
    name = make_function("pystream")  # the echo handler: a buffered answer
    got = stream(lam, name, {"hello": "stream"})
    assert got["status"] == 200 and len(got["chunks"]) == 1
    assert json.loads(got["body"])["event"] == {"hello": "stream"}
    error, status, _ = error_of(
        lam.invoke_with_response_stream, FunctionName="no-such-function", Payload=b"{}"
    )
    assert (error, status) == ("ResourceNotFoundException", 404)
    dry = lam.invoke_with_response_stream(FunctionName=name, InvocationType="DryRun")
    assert dry["StatusCode"] == 204
    path = f"/2021-11-15/functions/{name}/response-streaming-invocations"
    status, error, _ = raw(server, "POST", path, b"{}", {"X-Amz-Invocation-Type": "Event"})
    assert (status, error) == (400, "ValidationException")
    assert raw(server, "POST", path, b"{nope")[:2] == (400, "InvalidRequestContentException")
    assert raw(server, "POST", path, b"{}", signed=False)[0] == 403

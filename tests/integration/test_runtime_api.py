"""The Runtime API server against raw HTTP clients playing runtime workers.

These pin the status codes an unmodified runtime client relies on (LMI_FACTS §3.4).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
import pytest_asyncio

from corral.runtime.invocation import MAX_RESPONSE_BYTES, Invocation, InvocationResult
from corral.runtime.server import RuntimeApiServer
from tests.helpers import eventually


@dataclass
class Hooks:
    """Records what the server reports; resolves invocations like an environment would."""

    ready: int = 0
    polls: int = 0
    completed: list[tuple[str, bytes, str | None]] = field(default_factory=list)
    deadlines: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    init_errors: list[tuple[str, bytes]] = field(default_factory=list)

    def on_first_next(self) -> None:
        self.ready += 1

    def on_poll(self, pid: int | None) -> None:
        self.polls += 1

    def on_dispatch(self, invocation: Invocation) -> None:
        pass

    def on_complete(self, invocation: Invocation, payload: bytes, error_type: str | None) -> None:
        self.completed.append((invocation.request_id, payload, error_type))
        invocation.resolve(InvocationResult(payload=payload, error_type=error_type))

    def on_deadline(self, invocation: Invocation) -> None:
        self.deadlines.append(invocation.request_id)
        invocation.resolve(InvocationResult(payload=b"timeout", error_type="Sandbox.Timedout"))

    def on_worker_lost(self, invocation: Invocation | None, pid: int | None) -> None:
        if invocation is None:
            self.lost.append("(idle worker)")
            return
        self.lost.append(invocation.request_id)
        invocation.resolve(InvocationResult(payload=b"lost", error_type="Runtime.ExitError"))

    def on_init_error(self, error_type: str, body: bytes) -> None:
        self.init_errors.append((error_type, body))

    def peer_pid(self, peer_port: int) -> int | None:
        return None


class Worker:
    """A keep-alive HTTP/1.1 connection, like libcurl's in a runtime worker."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def send(self, method: str, path: str, body: bytes = b"", headers: str = "") -> None:
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n{headers}\r\n"
        )
        self.writer.write(head.encode() + body)
        await self.writer.drain()

    async def answer(self) -> tuple[int, dict[str, str], bytes]:
        status_line = await self.reader.readline()
        status = int(status_line.split()[1])
        headers: dict[str, str] = {}
        while True:
            line = (await self.reader.readline()).decode().rstrip("\r\n")
            if not line:
                break
            name, _, value = line.partition(":")
            headers[name.lower()] = value.strip()
        body = await self.reader.readexactly(int(headers.get("content-length", "0")))
        return status, headers, body

    async def call(
        self, method: str, path: str, body: bytes = b"", headers: str = ""
    ) -> tuple[int, dict[str, str], bytes]:
        await self.send(method, path, body, headers)
        return await self.answer()

    def close(self) -> None:
        self.writer.close()


_open: list[Worker] = []


@pytest_asyncio.fixture
async def served() -> AsyncIterator[tuple[RuntimeApiServer, Hooks]]:
    hooks = Hooks()
    server = RuntimeApiServer(hooks, concurrency=2)
    await server.start()
    yield server, hooks
    await server.stop()
    for worker in _open:
        worker.close()
        with contextlib.suppress(OSError):
            await worker.writer.wait_closed()
    _open.clear()


async def connect(server: RuntimeApiServer) -> Worker:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    worker = Worker(reader, writer)
    _open.append(worker)
    return worker


def invocation(request_id: str, timeout_s: float = 5.0, payload: bytes = b'{"a": 1}') -> Invocation:
    return Invocation(
        request_id=request_id,
        payload=payload,
        invoked_arn="arn:aws:lambda:us-east-1:123456789012:function:f",
        timeout_s=timeout_s,
        future=asyncio.get_running_loop().create_future(),
        client_context='{"custom":{"k":"v"}}',
        trace_id="Root=1-1-1;Sampled=0",
    )


NEXT = "/2018-06-01/runtime/invocation/next"


async def assigned(server: RuntimeApiServer, job: Invocation) -> Worker:
    """A worker that polled and received ``job``."""
    worker = await connect(server)
    idle = server.idle_workers
    await worker.send("GET", NEXT)
    await eventually(lambda: server.idle_workers > idle)
    server.dispatch(job)
    status, headers, _ = await worker.answer()
    assert status == 200 and headers["lambda-runtime-aws-request-id"] == job.request_id
    return worker


def response_path(request_id: str) -> str:
    return f"/2018-06-01/runtime/invocation/{request_id}/response"


@pytest.mark.asyncio
async def test_next_long_polls_and_carries_the_lambda_headers(
    served: tuple[RuntimeApiServer, Hooks],
) -> None:
    server, hooks = served
    worker = await connect(server)
    await worker.send("GET", NEXT)
    await eventually(lambda: server.idle_workers == 1)
    assert hooks.ready == 1
    job = invocation("req-1")
    server.dispatch(job)
    status, headers, body = await worker.answer()
    assert status == 200 and body == b'{"a": 1}'
    assert headers["lambda-runtime-aws-request-id"] == "req-1"
    assert headers["lambda-runtime-invoked-function-arn"].endswith(":function:f")
    assert headers["lambda-runtime-client-context"] == '{"custom":{"k":"v"}}'
    assert headers["lambda-runtime-trace-id"] == "Root=1-1-1;Sampled=0"
    assert int(headers["lambda-runtime-deadline-ms"]) > 0
    status, _, _ = await worker.call("POST", response_path("req-1"), b'"done"')
    assert status == 202
    assert (await job.future).payload == b'"done"'
    assert server.busy == 0


@pytest.mark.asyncio
async def test_a_second_answer_or_an_unknown_id_gets_400(
    served: tuple[RuntimeApiServer, Hooks],
) -> None:
    server, _ = served
    worker = await assigned(server, invocation("req-2"))
    assert (await worker.call("POST", response_path("req-2"), b"1"))[0] == 202
    status, _, body = await worker.call("POST", response_path("req-2"), b"2")
    assert status == 400 and json.loads(body)["errorType"] == "InvalidRequestID"
    assert (await worker.call("POST", response_path("nope"), b"3"))[0] == 400


@pytest.mark.asyncio
async def test_an_answer_after_the_deadline_gets_410_and_the_slot_is_held_until_then(
    served: tuple[RuntimeApiServer, Hooks],
) -> None:
    server, hooks = served
    job = invocation("slow", timeout_s=0.1)
    worker = await assigned(server, job)
    result = await asyncio.wait_for(job.future, 2)
    assert result.error_type == "Sandbox.Timedout" and hooks.deadlines == ["slow"]
    assert server.busy == 1  # the worker still runs the code
    status, _, body = await worker.call("POST", response_path("slow"), b"late")
    assert status == 410 and json.loads(body)["errorType"] == "InvokeTimeout"
    assert server.busy == 0


@pytest.mark.asyncio
async def test_a_late_answer_never_reaches_another_request(
    served: tuple[RuntimeApiServer, Hooks],
) -> None:
    server, hooks = served
    slow = invocation("slow", timeout_s=0.1)
    slow_worker = await assigned(server, slow)
    assert (await asyncio.wait_for(slow.future, 2)).error_type == "Sandbox.Timedout"
    # Another request is in flight on another worker when the late answer comes.
    other = invocation("other")
    other_worker = await assigned(server, other)
    status, _, _ = await slow_worker.call("POST", response_path("slow"), b'"late"')
    assert status == 410
    # The late answer went nowhere: neither to the timed-out caller nor to the other one,
    # and a second post of it is an unknown id.
    assert not other.future.done()
    assert (await slow_worker.call("POST", response_path("slow"), b'"again"'))[0] == 400
    assert (await other_worker.call("POST", response_path("other"), b'"mine"'))[0] == 202
    assert (await other.future).payload == b'"mine"'
    assert [c[0] for c in hooks.completed] == ["slow", "other"]


@pytest.mark.asyncio
async def test_an_error_answer_keeps_the_runtime_error_type(
    served: tuple[RuntimeApiServer, Hooks],
) -> None:
    server, hooks = served
    job = invocation("bad")
    worker = await assigned(server, job)
    error = json.dumps({"errorType": "ValueError", "errorMessage": "x"}).encode()
    status, _, _ = await worker.call(
        "POST",
        "/2018-06-01/runtime/invocation/bad/error",
        error,
        "Content-Type: application/json\r\n",
    )
    assert status == 202
    assert (await job.future).error_type == "ValueError"


@pytest.mark.asyncio
async def test_a_response_over_6_mb_gets_413_and_a_size_error(
    served: tuple[RuntimeApiServer, Hooks],
) -> None:
    server, _ = served
    job = invocation("big")
    worker = await assigned(server, job)
    status, _, _ = await worker.call("POST", response_path("big"), b"x" * (MAX_RESPONSE_BYTES + 1))
    assert status == 413
    result = await job.future
    assert result.error_type == "Function.ResponseSizeTooLarge"
    assert json.loads(result.payload)["errorMessage"].startswith("Response payload size exceeded")


@pytest.mark.asyncio
async def test_init_error_is_accepted_once_then_forbidden(
    served: tuple[RuntimeApiServer, Hooks],
) -> None:
    server, hooks = served
    first, second = await connect(server), await connect(server)
    body = b'{"errorType": "Runtime.ImportModuleError", "errorMessage": "no module"}'
    header = "Lambda-Runtime-Function-Error-Type: Runtime.ImportModuleError\r\n"
    assert (await first.call("POST", "/2018-06-01/runtime/init/error", body, header))[0] == 202
    assert (await second.call("POST", "/2018-06-01/runtime/init/error", body, header))[0] == 403
    assert hooks.init_errors == [("Runtime.ImportModuleError", body)]
    second.close()


@pytest.mark.asyncio
async def test_a_worker_that_dies_while_polling_never_swallows_an_invocation(
    served: tuple[RuntimeApiServer, Hooks],
) -> None:
    server, hooks = served
    alive = await connect(server)
    await alive.send("GET", NEXT)
    await eventually(lambda: server.idle_workers == 1)
    # A worker parked after it (so picked first), then killed: its socket is closed before
    # Corral's event loop has seen the close.
    dead = socket.create_connection(("127.0.0.1", server.port))
    dead.sendall(f"GET {NEXT} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await eventually(lambda: server.idle_workers == 2)
    dead.close()
    job = invocation("survives")
    server.dispatch(job)  # no await in between: the close is not processed yet
    status, headers, _ = await alive.answer()
    assert status == 200 and headers["lambda-runtime-aws-request-id"] == "survives"
    await alive.call("POST", response_path("survives"), b"ok")
    assert (await job.future).payload == b"ok"
    assert hooks.lost == ["(idle worker)"]  # reported, so the environment gets replaced


@pytest.mark.asyncio
async def test_a_worker_that_dies_mid_invocation_fails_only_that_invocation(
    served: tuple[RuntimeApiServer, Hooks],
) -> None:
    server, hooks = served
    first, second = await connect(server), await connect(server)
    for worker in (first, second):
        await worker.send("GET", NEXT)
    await eventually(lambda: server.idle_workers == 2)
    doomed, fine = invocation("doomed"), invocation("fine")
    server.dispatch(doomed)
    server.dispatch(fine)
    answers = {}
    for worker in (first, second):
        _, headers, _ = await worker.answer()
        answers[headers["lambda-runtime-aws-request-id"]] = worker
    answers["doomed"].writer.transport.abort()
    assert (await asyncio.wait_for(doomed.future, 2)).error_type == "Runtime.ExitError"
    await answers["fine"].call("POST", response_path("fine"), b"ok")
    assert (await fine.future).payload == b"ok"
    assert hooks.lost == ["doomed"] and server.busy == 0


@pytest.mark.asyncio
async def test_invocations_wait_in_the_environment_only_up_to_its_concurrency(
    served: tuple[RuntimeApiServer, Hooks],
) -> None:
    server, _ = served
    assert server.has_free_slot
    server.dispatch(invocation("q1"))
    server.dispatch(invocation("q2"))
    assert not server.has_free_slot  # two slots: a third must go elsewhere or be throttled
    worker = await connect(server)
    status, headers, _ = await worker.call("GET", NEXT)
    assert status == 200 and headers["lambda-runtime-aws-request-id"] == "q1"


@pytest.mark.asyncio
async def test_stop_hands_back_every_unanswered_invocation(
    served: tuple[RuntimeApiServer, Hooks],
) -> None:
    server, _ = served
    queued = invocation("queued")
    server.dispatch(queued)
    orphans = await server.stop()
    assert [o.request_id for o in orphans] == ["queued"]
    assert server.busy == 0


@pytest.mark.asyncio
async def test_a_signed_lambda_api_call_is_not_served_by_the_runtime_api(
    served: tuple[RuntimeApiServer, Hooks],
) -> None:
    """An API key opens nothing here: the Runtime API serves its own paths only."""
    server, hooks = served
    worker = await connect(server)
    signature = (
        "Authorization: AWS4-HMAC-SHA256 Credential=AKCREXAMPLE/20261128/us-east-1/lambda/"
        "aws4_request, SignedHeaders=host;x-amz-date, Signature=00\r\n"
        "X-Amz-Date: 20261128T120000Z\r\n"
    )
    for method, path in (
        ("GET", "/2015-03-31/functions/"),
        ("POST", "/2015-03-31/functions/f/invocations"),
        ("GET", "/corral/v1/state"),
    ):
        status, _, _ = await worker.call(method, path, b"{}", signature)
        assert status == 404
    assert hooks.completed == [] and hooks.init_errors == []

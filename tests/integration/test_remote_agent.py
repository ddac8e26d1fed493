"""The server's side of a remote instance (``backends.remote``) against a real agent process
(``python -m corral.agent.node``) on its own loopback address, without Ray: the link's
handshake, environments launched there with code fetched from the server, invocations and
their results, log records shipped back, slots freed after a timeout, and a lost instance.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from corral.agent.environment import EnvironmentConfig
from corral.agent.handle import EnvironmentHandle
from corral.agent.registry import EnvironmentRegistry
from corral.backends.remote import RemoteEnvironment, RemoteInstance
from corral.core import errors, models
from corral.core.settings import Settings
from corral.runtime.invocation import Invocation, LogTail, new_request_id
from corral.sandbox.interpreters import RuntimeRegistry
from corral.store.code import CodeStore
from corral.telemetry.logs import LogRecord
from tests.factories import function_spec
from tests.helpers import ECHO, eventually, zip_code

AGENT_HOST = "127.0.0.3"
SECRET = b"s3cret-of-the-cluster"


@dataclasses.dataclass
class Agent:
    proc: subprocess.Popen[str]
    address: tuple[str, int]


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[Agent]:
    """An agent process on 127.0.0.3 (the process sandbox: quick to start)."""
    secret_file = tmp_path / "secret"
    secret_file.write_bytes(SECRET)
    data = Path(f"/tmp/corral-node-{uuid.uuid4().hex[:8]}")
    env = {**os.environ, "CORRAL_SANDBOX": "process", "CORRAL_DRAIN_TIMEOUT_S": "2"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "corral.agent.node",
            "--host",
            AGENT_HOST,
            "--secret-file",
            str(secret_file),
            "--data-dir",
            str(data),
            "--instance-id",
            "i-remote",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
        start_new_session=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("listening on "), line
    host, port = line.split()[-1].rsplit(":", 1)
    yield Agent(proc, (host, int(port)))
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    proc.stdout.close()
    subprocess.run(["rm", "-rf", str(data)], check=False)


class Sink:
    def __init__(self) -> None:
        self.records: list[LogRecord] = []

    def emit(self, record: LogRecord) -> None:
        self.records.append(record)


@dataclasses.dataclass
class Server:
    instance: RemoteInstance
    registry: EnvironmentRegistry
    sink: Sink
    code: CodeStore
    lost: list[str]


@pytest_asyncio.fixture
async def remote(agent: Agent, tmp_path: Path) -> AsyncIterator[Server]:
    registry = EnvironmentRegistry()
    sink = Sink()
    code = CodeStore(tmp_path / "code")
    lost: list[str] = []
    instance = RemoteInstance(
        "i-remote",
        agent.address,
        SECRET,
        listener=registry,
        sink=sink,
        code=code,
        on_lost=lambda i: lost.append(i.lost_reason),
    )
    await instance.connect()
    yield Server(instance, registry, sink, code, lost)
    instance.close()


def config(remote: Server, source: str = ECHO, **spec: Any) -> EnvironmentConfig:
    stored = remote.code.put(zip_code({"app.py": source}))
    interpreter = RuntimeRegistry(Settings.from_env().runtimes_dir).available()["python3.11"]
    return EnvironmentConfig(
        ref=models.VersionRef("f", "1"),
        spec=function_spec(
            runtime="python3.11",
            code_sha256=stored.code_sha256,
            code_size=stored.size,
            **spec,
        ),
        function_arn="arn:aws:lambda:us-east-1:123456789012:function:f",
        code_dir=remote.code.path(base64.b64decode(stored.code_sha256).hex()),
        interpreter=interpreter,
        region="us-east-1",
        log_group="/aws/lambda/f",
        init_timeout_s=30.0,
        instance_id="i-remote",
        revision_id="r1",
    )


def invocation(payload: object, *, timeout_s: float = 10.0, tail: bool = False) -> Invocation:
    return Invocation(
        request_id=new_request_id(),
        payload=json.dumps(payload).encode(),
        invoked_arn="arn:aws:lambda:us-east-1:123456789012:function:f:1",
        timeout_s=timeout_s,
        future=asyncio.get_running_loop().create_future(),
        tail=LogTail() if tail else None,
    )


async def ready(remote: Server, **spec: Any) -> RemoteEnvironment:
    environment = remote.instance.launch(uuid.uuid4().hex, config(remote, **spec))
    remote.registry.add(environment)  # as the backend does
    await asyncio.wait_for(environment.wait_ready(), 60)
    return environment


@pytest.mark.asyncio
async def test_an_environment_runs_remotely_and_answers_with_its_logs(remote: Server) -> None:
    environment = await ready(remote)
    assert remote.registry.ready_for(environment.ref) == [environment]
    assert environment.log_stream.endswith(environment.id)
    job = invocation({"mark": "far"}, tail=True)
    environment.dispatch(job)
    assert environment.outstanding == 1
    result = await asyncio.wait_for(job.future, 30)
    assert json.loads(result.payload)["request_id"] == job.request_id
    assert any(b"MARK far " in line for line in result.log_lines)
    assert environment.outstanding == 0
    # The lines came back filed under their request, as on one host.
    await eventually(lambda: any(r.request_id == job.request_id for r in remote.sink.records))
    lines = [r for r in remote.sink.records if r.request_id == job.request_id and r.kind]
    assert {r.kind for r in lines} >= {"lines", "text.report"}
    await eventually(lambda: environment.memory_bytes > 0)  # usage arrives every second


@pytest.mark.asyncio
async def test_a_timed_out_invocation_frees_its_slot_when_its_runtime_answers(
    remote: Server,
) -> None:
    environment = await ready(
        remote,
        managed=models.ManagedInstancesConfig(
            "arn:aws:lambda:us-east-1:123456789012:capacity-provider:p", 2
        ),
        memory_size_mb=2048,
    )
    job = invocation({"sleep": 2}, timeout_s=0.5)
    environment.dispatch(job)
    result = await asyncio.wait_for(job.future, 30)
    assert result.error_type == "Sandbox.Timedout"
    assert environment.outstanding == 1  # the code runs on (Managed Instances)
    await eventually(lambda: environment.outstanding == 0, timeout_s=10)


@pytest.mark.asyncio
async def test_a_killed_agent_fails_what_it_held_and_ends_its_environments(
    remote: Server, agent: Agent
) -> None:
    environment = await ready(remote)
    ended: list[EnvironmentHandle] = []
    remote.registry.subscribe(ready=lambda e: None, ended=ended.append)
    job = invocation({"sleep": 20})
    environment.dispatch(job)
    await asyncio.sleep(0.5)
    os.killpg(agent.proc.pid, signal.SIGKILL)
    with pytest.raises(errors.EnvironmentGone, match="was lost"):
        await asyncio.wait_for(job.future, 5)  # noticed within seconds
    assert ended == [environment] and environment.state is models.EnvironmentState.FAILED
    assert remote.lost and remote.registry.get(environment.id) is None


@pytest.mark.asyncio
async def test_an_agent_refuses_a_server_without_the_secret(agent: Agent, tmp_path: Path) -> None:
    impostor = RemoteInstance(
        "i-remote",
        agent.address,
        b"a guess",
        listener=EnvironmentRegistry(),
        sink=Sink(),
        code=CodeStore(tmp_path / "code"),
        on_lost=lambda i: None,
    )
    with pytest.raises(errors.BackendError, match="cannot reach the agent"):
        await impostor.connect()

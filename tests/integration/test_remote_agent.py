"""The server's side of a remote instance (``backends.remote``) against a real agent process
(``python -m corral.agent.node``) on its own loopback address, without Ray: the link's
handshake, environments launched there with code fetched from the server, invocations and
their results (client context and trace id in, logs and usage back), slots freed after a
timeout, drains and stops, launches that fail (init errors, wrong or missing code, a node
without the runtime), a server that starts again or goes away, an agent stopped by its
operator, and an instance lost (killed, or silent).

(Frames and the handshake themselves: ``test_link.py``.)
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
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import pytest_asyncio

from corral.agent.environment import EnvironmentConfig
from corral.agent.handle import EnvironmentHandle
from corral.agent.registry import EnvironmentRegistry
from corral.backends import remote as remote_module
from corral.backends.remote import RemoteEnvironment, RemoteInstance
from corral.core import errors, models
from corral.core.settings import Settings
from corral.runtime.invocation import Invocation, LogTail, new_request_id, new_trace_id
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


StartAgent = Callable[..., Agent]


@pytest.fixture
def start_agent(tmp_path: Path) -> Iterator[StartAgent]:
    """Start agent processes on 127.0.0.3 (the process sandbox: quick to start), each with
    ``CORRAL_*`` settings of its own; all are stopped (SIGTERM: an orderly exit) afterwards."""
    started: list[tuple[Agent, Path]] = []
    secret_file = tmp_path / "secret"
    secret_file.write_bytes(SECRET)

    def start(**settings: str) -> Agent:
        data = Path(f"/tmp/corral-node-{uuid.uuid4().hex[:8]}")
        env = {**os.environ, "CORRAL_SANDBOX": "process", "CORRAL_DRAIN_TIMEOUT_S": "2"}
        env.update({f"CORRAL_{name.upper()}": value for name, value in settings.items()})
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
        started.append((Agent(proc, (host, int(port))), data))
        return started[-1][0]

    yield start
    for agent, data in started:
        if agent.proc.poll() is None:
            os.killpg(agent.proc.pid, signal.SIGCONT)  # in case a test left it stopped
            os.killpg(agent.proc.pid, signal.SIGTERM)
            agent.proc.wait(timeout=30)
        assert agent.proc.stdout is not None
        agent.proc.stdout.close()
        subprocess.run(["rm", "-rf", str(data)], check=False)


@pytest.fixture
def agent(start_agent: StartAgent) -> Agent:
    """An agent process with the default settings of these tests."""
    return start_agent()


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


Connect = Callable[[Agent], Awaitable[Server]]


@pytest_asyncio.fixture
async def connect(start_agent: StartAgent, tmp_path: Path) -> AsyncIterator[Connect]:
    """Connect servers (a ``RemoteInstance`` each, with its own code store) to agents; all
    are closed afterwards, before their agents stop."""
    connected: list[RemoteInstance] = []

    async def make(agent: Agent) -> Server:
        registry = EnvironmentRegistry()
        sink = Sink()
        code = CodeStore(tmp_path / f"code-{len(connected)}")
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
        connected.append(instance)
        return Server(instance, registry, sink, code, lost)

    yield make
    for instance in connected:
        instance.close()


@pytest_asyncio.fixture
async def remote(agent: Agent, connect: Connect) -> Server:
    return await connect(agent)


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


def invocation(
    payload: object, *, timeout_s: float = 10.0, tail: bool = False, **extra: Any
) -> Invocation:
    return Invocation(
        request_id=new_request_id(),
        payload=json.dumps(payload).encode(),
        invoked_arn="arn:aws:lambda:us-east-1:123456789012:function:f:1",
        timeout_s=timeout_s,
        future=asyncio.get_running_loop().create_future(),
        tail=LogTail() if tail else None,
        **extra,
    )


async def ready(
    remote: Server, *, options: dict[str, Any] | None = None, **spec: Any
) -> RemoteEnvironment:
    launched = dataclasses.replace(config(remote, **spec), **(options or {}))
    environment = remote.instance.launch(uuid.uuid4().hex, launched)
    remote.registry.add(environment)  # as the backend does
    await asyncio.wait_for(environment.wait_ready(), 60)
    return environment


# Holds ``mb`` MB (touched) and its slot until the file ``until`` exists: tests let it go
# once they have seen what they wait for, instead of guessing a duration.
HOLD = """
import os, time

def handler(event, context):
    held = b"x" * (event.get("mb", 0) * 1024 * 1024)
    while not os.path.exists(event["until"]):
        time.sleep(0.01)
    return len(held)
"""


def running(pid: int | None) -> bool:
    """Whether a process of this host (an agent's runtime, here) still runs."""
    if pid is None:
        return False
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def state_of(environment: RemoteEnvironment) -> models.EnvironmentState:
    """Its state now (read through a call: the state changes under awaits)."""
    return environment.state


def watch_ended(remote: Server) -> list[EnvironmentHandle]:
    ended: list[EnvironmentHandle] = []
    remote.registry.subscribe(ready=lambda e: None, ended=ended.append)
    return ended


async def failed_launch(remote: Server, config: EnvironmentConfig) -> RemoteEnvironment:
    """Launch an environment that must never become ready; return it once it ended."""
    environment = remote.instance.launch(uuid.uuid4().hex, config)
    remote.registry.add(environment)
    with pytest.raises(errors.BackendError) as failed:
        await asyncio.wait_for(environment.wait_ready(), 60)
    assert environment.state is models.EnvironmentState.FAILED
    assert str(failed.value) == environment.end_reason
    assert remote.registry.get(environment.id) is None
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
async def test_a_remote_worker_past_its_deadline_is_killed_and_replaced_when_asked(
    remote: Server,
) -> None:
    environment = await ready(
        remote,
        options={"kill_on_timeout": True, "fork_after_init": True},
        managed=models.ManagedInstancesConfig(
            "arn:aws:lambda:us-east-1:123456789012:capacity-provider:p", 2
        ),
        memory_size_mb=2048,
    )
    job = invocation({"sleep": 60}, timeout_s=0.5)
    environment.dispatch(job)
    result = await asyncio.wait_for(job.future, 30)
    assert result.error_type == "Sandbox.Timedout"
    # The LAUNCH frame carried the option: the worker is killed, its slot free again.
    await eventually(lambda: environment.outstanding == 0, timeout_s=5)
    again = invocation({"mark": "after"})
    environment.dispatch(again)
    assert (await asyncio.wait_for(again.future, 30)).error_type is None
    assert environment.state is models.EnvironmentState.READY


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
    code = CodeStore(tmp_path / "code")
    impostor = RemoteInstance(
        "i-remote",
        agent.address,
        b"a guess",
        listener=EnvironmentRegistry(),
        sink=Sink(),
        code=code,
        on_lost=lambda i: None,
    )
    with pytest.raises(errors.BackendError, match="cannot reach the agent"):
        await impostor.connect()
    # Nothing can be launched through it, and closing it is harmless.
    launched = config(Server(impostor, EnvironmentRegistry(), Sink(), code, []))
    with pytest.raises(errors.BackendError, match="instance i-remote is lost"):
        impostor.launch(uuid.uuid4().hex, launched)
    assert impostor.environments == []
    impostor.close()


@pytest.mark.asyncio
async def test_a_draining_remote_environment_finishes_its_invocation_then_stops(
    remote: Server,
) -> None:
    environment = await ready(remote)
    ended = watch_ended(remote)
    job = invocation({"sleep": 0.5, "mark": "last"})
    environment.dispatch(job)
    assert environment.take_peak_outstanding() == 1  # what the scaler reads each tick
    draining = asyncio.create_task(environment.drain(10), name="drain")
    await asyncio.sleep(0)  # the task runs to its first wait: the DRAIN frame is sent
    assert state_of(environment) is models.EnvironmentState.DRAINING
    assert not environment.has_free_slot  # the router sends it nothing more
    result = await asyncio.wait_for(job.future, 30)
    assert result.error_type is None and json.loads(result.payload)["event"]["mark"] == "last"
    await asyncio.wait_for(draining, 15)
    assert environment.take_peak_outstanding() == 1 and environment.take_peak_outstanding() == 0
    assert environment.state is models.EnvironmentState.STOPPED
    assert environment.end_reason == "drained" and environment.failure is None
    assert ended == [environment] and remote.registry.get(environment.id) is None
    assert not running(environment.pid)


@pytest.mark.asyncio
async def test_a_stopped_remote_environment_ends_with_the_reason_it_was_given(
    remote: Server,
) -> None:
    environment = await ready(remote)
    ended = watch_ended(remote)
    assert running(environment.pid)
    await asyncio.wait_for(environment.stop("scaled in"), 15)
    assert environment.state is models.EnvironmentState.STOPPED
    assert environment.end_reason == "scaled in"
    assert ended == [environment] and remote.registry.get(environment.id) is None
    await eventually(lambda: not running(environment.pid))
    await asyncio.wait_for(environment.stop("again"), 1)  # already ended: at once
    await asyncio.wait_for(environment.drain(10), 1)
    assert environment.end_reason == "scaled in" and ended == [environment]


@pytest.mark.asyncio
async def test_a_remote_environment_whose_function_fails_to_initialise_says_why(
    remote: Server,
) -> None:
    broken = "raise RuntimeError('no table configured')\n\ndef handler(event, context):\n    pass\n"
    environment = await failed_launch(remote, config(remote, source=broken))
    failure = environment.failure
    assert failure is not None
    assert failure.reason_code == "FunctionError.RuntimeInitError"
    assert failure.error_type == "RuntimeError"  # the runtime's own word, as on one host
    assert b"no table configured" in failure.payload
    assert "no table configured" in environment.end_reason


@pytest.mark.asyncio
async def test_an_agent_refuses_code_that_does_not_match_its_digest(remote: Server) -> None:
    launched = config(remote)
    digest = base64.b64decode(launched.spec.code_sha256).hex()
    # The server's store holds other bytes under that digest (a disk that lies).
    remote.code.zip_path(digest).write_bytes(zip_code({"app.py": "def handler(e, c):\n  pass\n"}))
    environment = await failed_launch(remote, launched)
    assert environment.end_reason == f"the server sent other code than {digest[:12]}"
    assert environment.failure is None


@pytest.mark.asyncio
async def test_a_launch_the_agent_cannot_make_sense_of_fails_instead_of_hanging(
    remote: Server,
) -> None:
    launched = config(remote)
    garbled = dataclasses.replace(launched.spec, code_sha256="abc")  # not base64
    environment = await failed_launch(remote, dataclasses.replace(launched, spec=garbled))
    assert "padding" in environment.end_reason


@pytest.mark.asyncio
async def test_a_node_without_the_runtime_interpreter_fails_the_launch_with_the_reason(
    start_agent: StartAgent, connect: Connect, tmp_path: Path
) -> None:
    bare = tmp_path / "bare-node"
    (bare / "runtimes").mkdir(parents=True)
    (bare / "bin").mkdir()
    server = await connect(
        start_agent(runtimes_dir=str(bare / "runtimes"), python_path=str(bare / "bin"))
    )
    environment = await failed_launch(server, config(server))
    assert environment.end_reason == (
        "runtime python3.11 cannot run on instance i-remote: no host interpreter found"
    )


@pytest.mark.asyncio
async def test_a_server_asking_for_code_it_does_not_store_logs_an_error_and_the_launch_fails(
    remote: Server, caplog: pytest.LogCaptureFixture
) -> None:
    launched = config(remote)
    digest = base64.b64decode(launched.spec.code_sha256).hex()
    remote.code.zip_path(digest).unlink()
    started = time.monotonic()
    environment = await failed_launch(remote, launched)
    assert environment.end_reason == f"the server has no code {digest[:12]} to send"
    assert time.monotonic() - started < 10  # told at once, not after the agent's wait
    assert f"instance i-remote asked for code {digest}, which is not stored" in caplog.messages


@pytest.mark.asyncio
@pytest.mark.parametrize("how", ["stop", "drain"])
async def test_an_environment_ended_while_it_launches_never_serves_and_leaves_no_runtime(
    agent: Agent, remote: Server, how: str
) -> None:
    ended = watch_ended(remote)
    environment = remote.instance.launch(uuid.uuid4().hex, config(remote))
    remote.registry.add(environment)
    # At once, in the same turn: the agent has the LAUNCH and is still fetching the code.
    if how == "stop":
        await asyncio.wait_for(environment.stop("scaled in"), 15)
    else:
        await asyncio.wait_for(environment.drain(1), 15)
    assert environment.state is models.EnvironmentState.STOPPED
    assert environment.end_reason == ("scaled in" if how == "stop" else "drained")
    assert ended == [environment] and remote.registry.get(environment.id) is None
    assert not environment.has_free_slot
    runtimes = [
        p
        for p in psutil.Process(agent.proc.pid).children(recursive=True)
        if "awslambdaric" in " ".join(p.cmdline())
    ]
    assert runtimes == []


@pytest.mark.asyncio
async def test_a_server_that_starts_again_resets_what_the_agent_ran_for_its_predecessor(
    agent: Agent, remote: Server, connect: Connect
) -> None:
    old = await ready(remote)
    successor = await connect(agent)
    # The agent serves the newest server only: the old one's link goes, and with it the
    # old environment; the RESET stops its runtime on the node.
    await eventually(lambda: remote.lost == ["its agent link closed"])
    assert old.state is models.EnvironmentState.FAILED
    assert old.end_reason == "its instance was lost (its agent link closed)"
    await eventually(lambda: not running(old.pid), timeout_s=15)
    new = await ready(successor)
    job = invocation({"mark": "again"})
    new.dispatch(job)
    assert json.loads((await asyncio.wait_for(job.future, 30)).payload)["event"] == {
        "mark": "again"
    }


@pytest.mark.asyncio
async def test_an_agent_left_without_a_server_stops_its_environments_after_a_grace_period(
    start_agent: StartAgent, connect: Connect
) -> None:
    server = await connect(start_agent(drain_timeout_s="1"))  # the grace period
    environment = await ready(server)
    server.instance.close()
    await eventually(lambda: not running(environment.pid), timeout_s=15)


@pytest.mark.asyncio
async def test_a_server_back_within_the_grace_period_keeps_what_it_launches(
    start_agent: StartAgent, connect: Connect
) -> None:
    agent = start_agent(drain_timeout_s="1")  # the grace period
    server = await connect(agent)
    old = await ready(server)
    server.instance.close()
    successor = await connect(agent)
    new = await ready(successor)
    await eventually(lambda: not running(old.pid), timeout_s=15)  # reset by the successor
    # Nothing to wait for: what must not happen is the end of the grace period (1 s from
    # the close) stopping the successor's environment.
    await asyncio.sleep(1.5)
    assert running(new.pid) and new.state is models.EnvironmentState.READY
    job = invocation({"mark": "kept"})
    new.dispatch(job)
    assert (await asyncio.wait_for(job.future, 30)).error_type is None


@pytest.mark.asyncio
async def test_a_silent_agent_is_declared_lost_and_what_it_held_fails(
    remote: Server, agent: Agent, tmp_path: Path
) -> None:
    environment = await ready(remote, source=HOLD)
    job = invocation({"until": str(tmp_path / "go")}, timeout_s=30)
    environment.dispatch(job)
    os.kill(agent.proc.pid, signal.SIGSTOP)  # alive and connected, but says nothing
    try:
        with pytest.raises(errors.EnvironmentGone, match=r"was lost: its agent said nothing"):
            await asyncio.wait_for(job.future, remote_module.SILENCE_S + 5)
        assert remote.lost and remote.lost[0].startswith("its agent said nothing for 3.")
        assert environment.state is models.EnvironmentState.FAILED
        # Whatever still reaches the lost instance fails at once, with the same story.
        late = invocation({"until": str(tmp_path / "go")})
        environment.dispatch(late)
        with pytest.raises(errors.EnvironmentGone, match=r"\(i-remote\) was lost: its agent"):
            late.future.result()
        assert environment.outstanding == 0
        with pytest.raises(errors.BackendError, match="instance i-remote is lost"):
            remote.instance.launch(uuid.uuid4().hex, config(remote))
        assert remote.instance.environments == []
    finally:
        (tmp_path / "go").touch()
        os.kill(agent.proc.pid, signal.SIGCONT)


@pytest.mark.asyncio
async def test_client_context_and_trace_id_reach_a_remote_function(remote: Server) -> None:
    source = (
        "import os\n\n"
        "def handler(event, context):\n"
        "    return {'custom': context.client_context.custom,\n"
        "            'trace': os.environ.get('_X_AMZN_TRACE_ID')}\n"
    )
    environment = await ready(remote, source=source)
    trace_id = new_trace_id()
    job = invocation(
        {}, client_context=json.dumps({"custom": {"tenant": "t-7"}}), trace_id=trace_id
    )
    environment.dispatch(job)
    result = await asyncio.wait_for(job.future, 30)
    assert json.loads(result.payload) == {"custom": {"tenant": "t-7"}, "trace": trace_id}


@pytest.mark.asyncio
async def test_a_remote_environment_near_its_memory_size_is_reported_overloaded(
    remote: Server, tmp_path: Path
) -> None:
    environment = await ready(remote, source=HOLD, memory_size_mb=128)
    assert environment.overload is None
    job = invocation({"mb": 130, "until": str(tmp_path / "go")})
    environment.dispatch(job)
    await eventually(lambda: environment.overload == "memory")  # from USAGE frames
    assert environment.memory_utilization >= 0.95
    assert environment.peak_memory_bytes >= 130 * 1024 * 1024
    (tmp_path / "go").touch()
    assert (await asyncio.wait_for(job.future, 30)).error_type is None
    await eventually(lambda: environment.overload is None)  # the memory was given back
    assert environment.peak_memory_bytes >= 130 * 1024 * 1024


@pytest.mark.asyncio
async def test_an_invocation_the_agent_has_no_slot_for_fails_as_gone(
    remote: Server, tmp_path: Path
) -> None:
    environment = await ready(remote, source=HOLD)
    assert environment.concurrency == 1
    first = invocation({"until": str(tmp_path / "go")})
    environment.dispatch(first)
    # A second one the server should not have sent (its slot count disagrees with the
    # agent's): the agent turns it away, and the slot it took here comes back.
    second = invocation({"until": str(tmp_path / "go")})
    environment.dispatch(second)
    with pytest.raises(errors.EnvironmentGone, match="the execution environment had no free slot"):
        await asyncio.wait_for(second.future, 10)
    assert environment.outstanding == 1 and not first.future.done()
    (tmp_path / "go").touch()
    assert (await asyncio.wait_for(first.future, 30)).error_type is None
    assert environment.outstanding == 0


@pytest.mark.asyncio
async def test_a_note_about_throttled_output_comes_back_through_the_link(
    start_agent: StartAgent, connect: Connect
) -> None:
    server = await connect(start_agent(log_rate_bytes_per_s="262144"))
    # 800 KB: well past the 256 KiB burst plus what refills while a slow machine prints.
    source = (
        "def handler(event, context):\n"
        "    for _ in range(80):\n"
        "        print('y' * 10_000)\n"
        "    return 'done'\n"
    )
    environment = await ready(server, source=source)
    job = invocation({})
    environment.dispatch(job)
    assert (await asyncio.wait_for(job.future, 30)).error_type is None
    await eventually(
        lambda: any(
            "faster than 0.25 MiB/s" in r.message for r in server.sink.records if not r.kind
        )
    )
    note = next(r for r in server.sink.records if not r.kind)
    assert note.log_stream == environment.log_stream and note.request_id == ""


@pytest.mark.asyncio
async def test_environments_of_one_function_launched_together_all_start(remote: Server) -> None:
    # One fetch of the code serves both launches.
    launched = config(remote)
    environments = [remote.instance.launch(uuid.uuid4().hex, launched) for _ in range(2)]
    await asyncio.wait_for(asyncio.gather(*(e.wait_ready() for e in environments)), 60)
    jobs = [invocation({"mark": str(n)}) for n in range(2)]
    for environment, job in zip(environments, jobs, strict=True):
        environment.dispatch(job)
    results = await asyncio.wait_for(asyncio.gather(*(job.future for job in jobs)), 30)
    assert {json.loads(r.payload)["pid"] for r in results} == {e.pid for e in environments}


@pytest.mark.asyncio
async def test_an_agent_stopped_by_its_operator_finishes_its_work_and_reports_its_end(
    remote: Server, agent: Agent, tmp_path: Path
) -> None:
    environment = await ready(remote, source=HOLD)
    ended = watch_ended(remote)
    job = invocation({"until": str(tmp_path / "go")})
    environment.dispatch(job)
    # Its START record came back: the runtime has the invocation.
    await eventually(lambda: any(r.request_id == job.request_id for r in remote.sink.records))
    agent.proc.send_signal(signal.SIGTERM)
    (tmp_path / "go").touch()
    assert (await asyncio.wait_for(job.future, 30)).error_type is None
    assert await asyncio.to_thread(agent.proc.wait, 30) == 0
    # The server heard the environment stop before the link closed: it was not lost.
    assert ended == [environment] and environment.state is models.EnvironmentState.STOPPED
    assert remote.lost == ["its agent link closed"]
    assert environment.end_reason == "drained"
    assert not running(environment.pid)

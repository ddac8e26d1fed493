"""One execution environment: a runtime process tree, its Runtime API server, its logs.

Lifecycle (``EnvironmentState``)::

    Starting --first /next--> Ready --drain()--> Draining --> Stopped
        |                       |
        +--init error/exit/timeout--> Failed      +--runtime exits--> Failed

Invariants:

* The router only sees ``Ready`` environments with a free slot; an environment never holds
  more than ``concurrency`` invocations (queued plus running).
* Every invocation handed to ``dispatch`` gets exactly one result: its answer, a timeout,
  or a platform error when the runtime dies under it.
* Every log line is attributed to the request its process was running when it wrote it.

Callers: ``agent.agent.Agent`` creates, starts and stops environments; ``router`` dispatches.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import time
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from corral.agent import procfs
from corral.agent.command import runtime_argv, write_node_guard
from corral.agent.handle import EnvironmentListener
from corral.agent.runtime_env import RuntimeEnvInputs, runtime_environment
from corral.agent.stream import EnvironmentStream
from corral.core import errors, extras, models
from corral.core.tasks import TaskGroup
from corral.runtime.invocation import Invocation, InvocationResult, error_payload
from corral.runtime.logsock import LogBudget
from corral.runtime.server import RuntimeApiServer
from corral.sandbox.base import (
    ExitStatus,
    RuntimeCommand,
    Sandbox,
    SandboxProcess,
    SandboxSlot,
    SandboxSpec,
)
from corral.sandbox.interpreters import Interpreter
from corral.telemetry import logs

__all__ = [
    "EnvironmentConfig",
    "EnvironmentListener",
    "EnvironmentSettings",
    "ExecutionEnvironment",
    "InitFailure",
]

_log = logging.getLogger("corral.environment")
# Share of its vCPUs or memory above which an environment takes no new invocation.
_OVERLOAD = 0.95
# When a worker vanishes, how long to wait for the runtime's exit status before failing
# its invocation without one (the runtime itself may live on).
_LOST_WORKER_WAIT_S = 1.0
# When an idle worker's connection closes, how long before looking whether it exited.
_LOST_IDLE_CHECK_S = 0.5


@dataclass(frozen=True)
class EnvironmentConfig:
    """Everything one execution environment needs, decided by its agent."""

    ref: models.VersionRef
    spec: models.FunctionSpec
    function_arn: str
    code_dir: Path
    interpreter: Interpreter
    region: str
    log_group: str
    init_timeout_s: float
    instance_id: str
    revision_id: str
    capacity_provider: str | None = None
    # Opt-in extras (``corral:`` tags) for Managed Instances workers: forked from one
    # process that ran the init; killed and replaced when they run past a deadline.
    fork_after_init: bool = False
    kill_on_timeout: bool = False
    # Started for an invocation that waits for it (a version scaled to zero woken up): its
    # first invocation reports the init as a cold start does (``Init Duration``).
    report_init: bool = False

    @property
    def concurrency(self) -> int:
        return self.spec.concurrency

    @property
    def owns_workers(self) -> bool:
        """Whether Corral's worker pool runs the workers instead of awslambdaric's."""
        return (
            self.spec.managed is not None
            and not self.interpreter.is_node
            and (self.fork_after_init or self.kill_on_timeout)
        )

    @property
    def shared_process(self) -> bool:
        """Whether many invocations share one runtime process (Node.js on Managed
        Instances: worker threads), so neither a connection nor a pid names a request."""
        return self.spec.managed is not None and self.interpreter.is_node

    @property
    def vcpus(self) -> int:
        managed = self.spec.managed
        return 1 if managed is None else managed.vcpus(self.spec.memory_size_mb)


@dataclass(frozen=True)
class EnvironmentSettings:
    """What every environment is allowed: waits for its runtime, and its log output."""

    # SIGTERM to SIGKILL when an environment stops.
    stop_grace_s: float = 2.0
    # How long a worker may go on running past its invocation's timeout before the
    # environment is recycled (Managed Instances does not stop timed-out code).
    stuck_worker_grace_s: float = 60.0
    # Log output read per second and per vCPU of the environment (0: unlimited); faster
    # writers wait (``runtime.logsock``).
    log_rate_bytes_per_s: float = 1024 * 1024

    def log_budget(self, vcpus: int) -> LogBudget:
        rate = self.log_rate_bytes_per_s * vcpus
        return LogBudget(rate_bytes_per_s=rate, burst_bytes=max(rate, 256 * 1024))


@dataclass(frozen=True)
class InitFailure:
    """Why an environment never became ready: a Lambda ``StateReasonCode`` and the story."""

    reason_code: str
    reason: str
    error_type: str
    payload: bytes


class ExecutionEnvironment:
    """A long-lived runtime serving invocations of one function version."""

    def __init__(
        self,
        config: EnvironmentConfig,
        *,
        sandbox: Sandbox,
        run_dir: Path,
        sink: logs.LogSink,
        listener: EnvironmentListener,
        env_settings: EnvironmentSettings,
        environment_id: str | None = None,
    ) -> None:
        self.id = environment_id or uuid.uuid4().hex
        self.config = config
        self.state = models.EnvironmentState.STARTING
        self.failure: InitFailure | None = None
        self.end_reason = ""
        self.created_s = time.time()
        self.init_duration_ms: float | None = None
        self.invocations = 0
        self.last_used_mono = time.monotonic()
        self.peak_memory_bytes = 0
        self.memory_bytes = 0
        self.cpu_utilization = 0.0
        self._cpu_seen: tuple[float, float] | None = None
        self._peak_outstanding = 0
        self._sandbox = sandbox
        self._dir = run_dir / self.id
        self._sink = sink
        self._listener = listener
        self._stop_grace_s = env_settings.stop_grace_s
        self._stuck_grace_s = env_settings.stuck_worker_grace_s
        self._started_mono = time.monotonic()
        self._process: SandboxProcess | None = None
        self._slot: SandboxSlot | None = None
        self._runtime = RuntimeApiServer(
            self, concurrency=config.concurrency, shared_process=config.shared_process
        )
        self._ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._init_timer: asyncio.TimerHandle | None = None
        # Every background task of the environment: named, its failure logged, and the
        # others cancelled when it ends (``_finish``).
        self._tasks = TaskGroup(f"environment:{self.id[:8]}")
        self._stopping = False
        self._finished = False
        self._ended = asyncio.Event()
        self._out_of_memory = False
        self.reserved = False
        self._init_error: tuple[str, bytes] | None = None
        # Requests whose worker was killed at their deadline (corral:kill-on-timeout).
        self._killed: set[str] = set()
        self._cold_pending = config.spec.managed is None or config.report_init
        self.stream = EnvironmentStream(
            config,
            logs.stream_name(config.ref.version, self.id),
            sink,
            env_settings.log_budget(config.vcpus),
        )
        self._channels = self.stream.channels

    # --- what the router sees ---------------------------------------------------------------
    @property
    def ref(self) -> models.VersionRef:
        return self.config.ref

    @property
    def outstanding(self) -> int:
        return self._runtime.busy

    @property
    def concurrency(self) -> int:
        return self._runtime.concurrency

    @property
    def has_free_slot(self) -> bool:
        return (
            self.state is models.EnvironmentState.READY
            and not self.reserved
            and self._runtime.has_free_slot
        )

    @property
    def log_stream(self) -> str:
        """The name of the environment's log stream (``YYYY/MM/DD/[version]id``)."""
        return self.stream.name

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    @property
    def overload(self) -> str | None:
        """``cpu`` or ``memory`` when nearly exhausted (no new invocations), else None."""
        if self.cpu_utilization >= _OVERLOAD:
            return "cpu"
        if self.memory_bytes >= _OVERLOAD * self.config.spec.memory_size_mb * 1024 * 1024:
            return "memory"
        return None

    @property
    def memory_utilization(self) -> float:
        """Memory in use as a share of the function's MemorySize."""
        return self.memory_bytes / (self.config.spec.memory_size_mb * 1024 * 1024)

    def take_peak_outstanding(self) -> int:
        """The most invocations held at once since the last call (then reset to now)."""
        peak = self._peak_outstanding
        self._peak_outstanding = self._runtime.busy
        return peak

    def dispatch(self, invocation: Invocation) -> None:
        """Hand an invocation to this environment (the caller checked ``has_free_slot``)."""
        self.reserved = False
        self.invocations += 1
        self.last_used_mono = time.monotonic()
        self._runtime.dispatch(invocation)
        if self._runtime.busy > self._peak_outstanding:
            self._peak_outstanding = self._runtime.busy

    # --- lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        """Spawn the runtime; readiness is reported later through the listener.

        Raises:
            errors.BackendError: the runtime could not be started (sandbox, sockets, disk).
        """
        try:
            await self._start()
        except OSError as exc:
            self._stopping = True
            if self._process is not None:
                await self._process.stop(0.0)
            await self._finish(None)
            raise errors.BackendError(f"could not start execution environment: {exc}") from exc

    async def _start(self) -> None:
        cfg = self.config
        self._dir.mkdir(parents=True, exist_ok=True)
        self._slot = slot = self._sandbox.prepare(
            SandboxSpec(
                environment_id=self.id,
                code_dir=cfg.code_dir,
                work_dir=self._dir,
                interpreter=cfg.interpreter,
                memory_limit_mb=cfg.spec.memory_size_mb,
                vcpus=cfg.vcpus,
                ephemeral_storage_mb=cfg.spec.ephemeral_storage_mb,
            )
        )
        layout = slot.layout
        # Workers of Managed Instances connect here (their runtime is told where); a
        # container's main process connects its own stdout and stderr here too.
        host_socket = self._dir / "ipc" / "log.sock"
        host_socket.parent.mkdir(exist_ok=True)
        self._channels.listen(host_socket)
        log_socket = layout.log_socket if cfg.spec.managed is not None else None
        port = await self._runtime.start(sock=slot.listen())
        env = runtime_environment(
            RuntimeEnvInputs(
                function_name=cfg.ref.function,
                version=cfg.ref.version,
                spec=cfg.spec,
                region=cfg.region,
                runtime_api=f"127.0.0.1:{port}",
                task_root=layout.task_root,
                runtime_dir=layout.runtime_dir,
                interpreter_bin=layout.executable.parent,
                log_group=cfg.log_group,
                log_stream=self.stream.name,
                log_socket=log_socket,
                tmp_dir=layout.tmp_dir,
                fork_after_init=cfg.owns_workers and cfg.fork_after_init,
                node=cfg.interpreter.is_node,
            )
        )
        if cfg.interpreter.is_node:
            write_node_guard(host_socket.parent)
        stdout = self._channels.socket_pair("stdout")
        stderr = self._channels.socket_pair("stderr")
        try:
            self._process = await slot.start(
                RuntimeCommand(
                    argv=runtime_argv(
                        cfg.interpreter, cfg.spec, layout, owns_workers=cfg.owns_workers
                    ),
                    env=env,
                    stdout=stdout,
                    stderr=stderr,
                    output_socket=layout.log_socket,
                )
            )
        except errors.SandboxError:
            await self._cleanup()
            raise
        finally:
            stdout.close()
            stderr.close()
        loop = asyncio.get_running_loop()
        self._init_timer = loop.call_later(cfg.init_timeout_s, self._init_timed_out)
        self._tasks.spawn(self._watch(), name="watch")

    async def wait_ready(self) -> None:
        """Wait until the runtime polls ``/next``.

        Raises:
            errors.BackendError: the environment failed before it became ready.
        """
        await asyncio.shield(self._ready)

    def request_drain(self, timeout_s: float, reason: str) -> None:
        """Stop taking invocations now and drain in the background."""
        if self.state in (models.EnvironmentState.STOPPED, models.EnvironmentState.FAILED):
            return
        self.end_reason = self.end_reason or reason
        self.state = models.EnvironmentState.DRAINING
        if reason.startswith(extras.RECYCLED):
            # The function's own log says why its environment went (corral:recycle-* tags).
            self.stream.note(
                f"This environment is {reason}: it takes no new invocation, finishes what it "
                "runs and stops; a new environment serves in its place."
            )
        self._tasks.spawn(self.drain(timeout_s), name="drain")

    async def drain(self, timeout_s: float) -> None:
        """Stop taking invocations, let running ones finish (bounded), then stop."""
        if self.state in (models.EnvironmentState.STOPPED, models.EnvironmentState.FAILED):
            return
        self.state = models.EnvironmentState.DRAINING
        deadline = time.monotonic() + timeout_s
        while self._waited_for() > 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        await self.stop("drained")

    async def stop(self, reason: str) -> None:
        """Stop the runtime now; invocations still running get ``Runtime.ExitError``.

        Returns once the environment has ended, also when another stop was under way.
        """
        if self._stopping:
            await self._ended.wait()
            return
        self._stopping = True
        self.end_reason = self.end_reason or reason
        if self.state is not models.EnvironmentState.FAILED:
            self.state = models.EnvironmentState.STOPPED
        if self._process is not None:
            await self._process.stop(self._stop_grace_s)
        await self._finish(None)

    def _waited_for(self) -> int:
        """Invocations held here whose callers still wait (timed-out ones are not)."""
        return self._runtime.busy - sum(1 for i in self._runtime.running() if i.future.done())

    def sample_memory(self) -> int:
        """Memory of the environment now; also updates ``peak_memory_bytes``."""
        if self._process is None:
            return 0
        current = self._process.memory_bytes()
        self.memory_bytes = current
        self.peak_memory_bytes = max(
            self.peak_memory_bytes, current, self._process.peak_memory_bytes()
        )
        return current

    def sample_usage(self) -> None:
        """Refresh memory and CPU use (CPU as a share of the environment's vCPUs)."""
        if self._process is None:
            return
        self.sample_memory()
        now = time.monotonic()
        used = self._process.cpu_seconds()
        if self._cpu_seen is not None:
            seconds, then = self._cpu_seen
            elapsed = now - then
            if elapsed > 0:
                self.cpu_utilization = max(0.0, used - seconds) / elapsed / self.config.vcpus
        self._cpu_seen = (used, now)

    # --- RuntimeHooks --------------------------------------------------------------------------
    def on_first_next(self) -> None:
        if self.state is not models.EnvironmentState.STARTING:
            return
        self.init_duration_ms = (time.monotonic() - self._started_mono) * 1000
        if self._init_timer is not None:
            self._init_timer.cancel()
        self.state = models.EnvironmentState.READY
        pid = None if self._process is None else self._process.pid
        if pid is not None:
            self._channels.set_pid(pid)
        if not self._ready.done():
            self._ready.set_result(None)
        self._listener.environment_ready(self)

    def on_poll(self, pid: int | None) -> None:
        # The worker asks for work only after writing everything of its previous
        # invocation: read it now so those lines keep that invocation's request id.
        self.stream.polled(pid)

    def on_dispatch(self, invocation: Invocation) -> None:
        self.stream.started(invocation)

    def on_complete(self, invocation: Invocation, payload: bytes, error_type: str | None) -> None:
        duration_ms = (time.monotonic() - invocation.dispatched_mono) * 1000
        if self.config.spec.managed is None and self._process is not None:
            # One read of the kernel-tracked peak for REPORT's "Max Memory Used" (a cgroup
            # file, about 16 us: less than a hop to a thread would cost the loop); the rest
            # of the usage is read by the agent's sampler, off the loop.
            self.peak_memory_bytes = max(self.peak_memory_bytes, self._process.peak_memory_bytes())
        init_ms = self._take_cold_start()
        # Lines written before the answer come before END/REPORT (one select(), ~2 us).
        tail = self.stream.finished(
            invocation, duration_ms, error_type, init_ms, self.peak_memory_bytes
        )
        invocation.resolve(
            InvocationResult(
                payload=payload,
                error_type=error_type,
                duration_ms=duration_ms,
                log_lines=tail,
                init_duration_ms=init_ms,
            )
        )

    def on_deadline(self, invocation: Invocation) -> None:
        message = (
            f"RequestId: {invocation.request_id} Error: Task timed out after "
            f"{invocation.timeout_s:.2f} seconds"
        )
        self._fail_invocation(invocation, "Sandbox.Timedout", message)
        if self.config.owns_workers and self.config.kill_on_timeout:
            self._kill_worker(invocation)
        elif self.config.spec.managed is not None:
            # The code runs on (LMI_FACTS §2.7); a worker that never comes back is recycled.
            asyncio.get_running_loop().call_later(
                self._stuck_grace_s, self._check_stuck, invocation
            )
        else:
            # Classic Lambda resets the sandbox after a timeout; Managed Instances lets the
            # code run on (LMI_FACTS §2.7).
            self.state = models.EnvironmentState.DRAINING
            self._tasks.spawn(self.stop("timed out"), name="reset")

    def on_worker_lost(self, invocation: Invocation | None, pid: int | None) -> None:
        if self._out_of_memory or (self._process is not None and self._process.out_of_memory()):
            # The kernel killed a process for memory: the environment is unhealthy and
            # goes, failing everything it holds with Runtime.OutOfMemory (LMI_FACTS §3.4).
            self._kill_out_of_memory(invocation)
            return
        if invocation is not None and invocation.request_id in self._killed:
            # Killed at its deadline (corral:kill-on-timeout): the pool forks a new worker.
            self._killed.discard(invocation.request_id)
            return
        if invocation is None and pid is not None and self.config.spec.managed is not None:
            # An idle worker's connection closed: its client may just have opened another
            # (the native client does after a 410 for a late answer). Gone only if it exited.
            self._tasks.spawn(self._confirm_lost(pid), name="lost-idle")
            return
        self._worker_gone()
        if invocation is not None:
            self._tasks.spawn(self._fail_lost(invocation), name="lost")

    def _worker_gone(self) -> None:
        if self.state is not models.EnvironmentState.READY:
            return
        if self.config.spec.managed is None:
            self.state = models.EnvironmentState.DRAINING  # the runtime was the worker
        else:
            # A worker is gone and the runtime will not restart it: replace the
            # environment, letting the other workers finish what they run.
            self.request_drain(self.config.spec.timeout_s, "a runtime worker exited")

    async def _confirm_lost(self, pid: int) -> None:
        await asyncio.sleep(_LOST_IDLE_CHECK_S)
        if not procfs.process_alive(pid):
            self._worker_gone()

    def on_init_error(self, error_type: str, body: bytes) -> None:
        self._init_error = (error_type, body)
        self._set_failure(
            InitFailure(
                reason_code="FunctionError.RuntimeInitError",
                reason=_init_error_story(error_type, body),
                error_type=error_type,
                payload=body,
            )
        )

    def peer_pid(self, peer_port: int) -> int | None:
        if self._process is None:
            return None
        return procfs.tcp_socket_owner(self._process.pids(), peer_port, self._runtime.port)

    # --- internals -----------------------------------------------------------------------------
    def _take_cold_start(self) -> float | None:
        if not self._cold_pending:
            return None
        self._cold_pending = False
        return self.init_duration_ms

    def _fail_invocation(self, invocation: Invocation, error_type: str, message: str) -> None:
        # Lines a timed-out worker writes later still carry this request id (on_poll ends it).
        elapsed = invocation.timeout_s * 1000
        if invocation.dispatched_mono:
            elapsed = (time.monotonic() - invocation.dispatched_mono) * 1000
        tail = self.stream.finished(
            invocation, elapsed, error_type, self._take_cold_start(), self.peak_memory_bytes
        )
        invocation.resolve(
            InvocationResult(
                payload=error_payload(error_type, message),
                error_type=error_type,
                duration_ms=elapsed,
                log_lines=tail,
            )
        )

    async def _fail_lost(self, invocation: Invocation) -> None:
        """Fail an invocation whose worker vanished, saying how the runtime ended if it did
        (a worker also vanishes when the whole runtime dies)."""
        status: ExitStatus | None = None
        if self._process is not None:
            with contextlib.suppress(TimeoutError):
                status = await asyncio.wait_for(
                    asyncio.shield(self._process.wait()), _LOST_WORKER_WAIT_S
                )
        if invocation.future.done():
            return
        if status is None:
            self._fail_invocation(
                invocation,
                "Runtime.ExitError",
                f"RequestId: {invocation.request_id} Error: Runtime exited without providing "
                "a reason",
            )
            return
        self._fail_invocation(
            invocation,
            "Runtime.OutOfMemory" if status.out_of_memory else "Runtime.ExitError",
            f"RequestId: {invocation.request_id} Error: Runtime exited with error: "
            f"{status.describe()}",
        )

    def _kill_worker(self, invocation: Invocation) -> None:
        """End the worker running a timed-out invocation; its pool forks a fresh one."""
        pid = invocation.worker_pid
        if pid is None or invocation.runtime_answered:
            return
        self._killed.add(invocation.request_id)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            self._killed.discard(invocation.request_id)
            return
        _log.info(
            "environment %s: killed worker %d, still running request %s at its timeout",
            self.id[:8],
            pid,
            invocation.request_id,
        )

    def _check_stuck(self, invocation: Invocation) -> None:
        if invocation.runtime_answered or self.state is not models.EnvironmentState.READY:
            return
        self.request_drain(
            self.config.spec.timeout_s,
            f"a worker was still running request {invocation.request_id} "
            f"{self._stuck_grace_s:.0f} s after its timeout",
        )

    def _kill_out_of_memory(self, lost: Invocation | None) -> None:
        self._out_of_memory = True
        status = ExitStatus(returncode=-9, out_of_memory=True)
        if lost is not None and not lost.future.done():
            self._fail_invocation(
                lost,
                "Runtime.OutOfMemory",
                f"RequestId: {lost.request_id} Error: Runtime exited with error: "
                f"{status.describe()}",
            )
        if self._stopping:
            return  # already going: the rest is failed on the way out
        self._stopping = True
        self.state = models.EnvironmentState.FAILED  # takes nothing more from now on
        self.end_reason = f"Runtime exited with error: {status.describe()} (Runtime.OutOfMemory)"

        async def kill() -> None:
            if self._process is not None:
                await self._process.stop(0.0)
            await self._finish(status)

        self._tasks.spawn(kill(), name="oom")

    def _init_timed_out(self) -> None:
        if self.state is not models.EnvironmentState.STARTING:
            return
        seconds = self.config.init_timeout_s
        self._set_failure(
            InitFailure(
                reason_code="FunctionError.InitTimeout",
                reason=f"Function initialization exceeded the {seconds:.0f} second init timeout.",
                error_type="Runtime.InitTimeout",
                payload=error_payload(
                    "Sandbox.Timedout", f"Init phase timed out after {seconds:.2f} seconds"
                ),
            )
        )
        self._tasks.spawn(self.stop("init timeout"), name="init-timeout")

    def _set_failure(self, failure: InitFailure) -> None:
        if self.state is not models.EnvironmentState.STARTING or self.failure is not None:
            return
        self.failure = failure
        self.state = models.EnvironmentState.FAILED
        self.end_reason = failure.reason
        if not self._ready.done():
            self._ready.set_exception(errors.BackendError(failure.reason))
            self._ready.exception()  # a failure nobody awaits is not an error

    async def _watch(self) -> None:
        assert self._process is not None
        status = await self._process.wait()
        if self._stopping:
            return
        await self._finish(status)

    async def _finish(self, status: ExitStatus | None) -> None:
        """Fail what is left, close the servers, tell the listener; runs once.

        Each step is tried on its own (a failing one is logged, the rest still run), and
        whatever happens the environment ends and its listener is told, so the registry
        and the scaler never keep an environment that is gone.
        """
        if self._finished:
            return
        self._finished = True
        if self._init_timer is not None:
            self._init_timer.cancel()
        try:
            self._record_exit(status)
            await self._step("failing its invocations", self._fail_remaining(status))
            await self._step("closing its log channels", self._close_channels())
            if self._process is not None and status is not None:
                await self._step("stopping its processes", self._process.stop(0.0))
            await self._step("removing its sandbox", self._cleanup())
        finally:
            self._tasks.cancel_others()
            if self.state is not models.EnvironmentState.FAILED:
                self.state = models.EnvironmentState.STOPPED
            self._ended.set()
            _log.info(
                "environment %s of %s:%s ended (%s): %s",
                self.id[:8],
                self.ref.function,
                self.ref.version,
                self.state.value,
                self.end_reason or "stopped",
            )
            self._listener.environment_ended(self)

    async def _step(self, what: str, step: Coroutine[Any, Any, None]) -> None:
        try:
            await step
        except Exception:
            _log.exception("environment %s: %s failed", self.id[:8], what)

    def _record_exit(self, status: ExitStatus | None) -> None:
        """The state and reason an exit of the runtime leaves."""
        if status is not None and self.state is models.EnvironmentState.STARTING:
            exit_type = "Runtime.OutOfMemory" if status.out_of_memory else "Runtime.ExitError"
            error_type, body = self._init_error or (
                exit_type,
                error_payload(
                    exit_type,
                    f"RequestId: Error: Runtime exited with error: {status.describe()}",
                ),
            )
            self._set_failure(
                InitFailure(
                    reason_code="FunctionError.RuntimeInitError",
                    reason=_init_error_story(error_type, body),
                    error_type=error_type,
                    payload=body,
                )
            )
        elif status is not None and self.state is not models.EnvironmentState.FAILED:
            self.state = models.EnvironmentState.FAILED
            self.end_reason = f"Runtime exited with error: {status.describe()}"
            if status.out_of_memory:
                self.end_reason += " (Runtime.OutOfMemory)"
        if not self._ready.done():
            self._ready.set_exception(errors.BackendError(self.end_reason or "stopped"))
            self._ready.exception()

    async def _fail_remaining(self, status: ExitStatus | None) -> None:
        error_type = (
            "Runtime.OutOfMemory" if status and status.out_of_memory else "Runtime.ExitError"
        )
        detail = status.describe() if status is not None else "stopped"
        for invocation in await self._runtime.stop():
            if invocation.runtime_answered or invocation.future.done():
                continue
            self._fail_invocation(
                invocation,
                error_type,
                f"RequestId: {invocation.request_id} Error: Runtime exited with error: {detail}",
            )

    async def _close_channels(self) -> None:
        self.stream.close()

    async def _cleanup(self) -> None:
        def remove() -> None:
            if self._slot is not None:
                self._slot.close()
            shutil.rmtree(self._dir, True)

        await asyncio.to_thread(remove)


def _init_error_story(error_type: str, body: bytes) -> str:
    message = ""
    with contextlib.suppress(ValueError):
        data = json.loads(body)
        if isinstance(data, dict):
            message = str(data.get("errorMessage", ""))
    story = f"{error_type}: {message}" if message else error_type
    return f"Function initialization failed. {story}"[:1024]


def host_memory_bytes() -> int:
    """Total memory of this host."""
    return int(psutil.virtual_memory().total)

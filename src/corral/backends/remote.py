"""Environments on another instance, seen from the server: the far end of the agent link.

``RemoteInstance`` is the server's side of one instance agent (``agent.node``): it connects
and authenticates, launches environments there, and turns the agent's frames back into
what the rest of the server expects of a local environment. ``RemoteEnvironment`` is the
``EnvironmentHandle`` the router, the scaler, the registry and the API use: the same calls
as ``ExecutionEnvironment``, forwarded.

Invariants:

* Slots are counted here as on the agent: one taken by ``dispatch``, freed when the agent
  says the runtime answered (``rel`` on a RESULT, or a RELEASED frame after a timeout), so
  the router never sends an environment more than it can take.
* Every invocation sent gets exactly one result: the agent's, or, if the link breaks first,
  ``EnvironmentGone`` (the API answers it as a service error, async events retry it).
* When the link breaks the instance is lost: every environment on it ends (``Failed``,
  "instance lost") and the registry hears of it, so the scaler replaces them elsewhere.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from corral.agent.environment import EnvironmentConfig, InitFailure
from corral.agent.handle import EnvironmentListener
from corral.agent.link import Kind, LinkError, LinkProtocol, Role
from corral.agent.node import config_to_wire
from corral.core import errors, models
from corral.core.tasks import TaskGroup
from corral.runtime.invocation import Invocation, InvocationResult
from corral.store.code import CodeStore
from corral.telemetry import logs

__all__ = ["RemoteEnvironment", "RemoteInstance"]

_log = logging.getLogger("corral.remote")
_OVERLOAD = 0.95
# An agent that said nothing (not even usage, sent every second) for this long is lost.
SILENCE_S = 3.0
_CONNECT_TIMEOUT_S = 10.0


class RemoteEnvironment:
    """An execution environment that runs on a remote instance."""

    def __init__(self, instance: RemoteInstance, environment_id: str, config: EnvironmentConfig):
        self.id = environment_id
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
        self.reserved = False
        self.stream = ""
        self.remote_pid: int | None = None
        self._instance = instance
        self._busy = 0
        self._peak = 0
        self._pending: dict[str, Invocation] = {}
        self._stopping = False
        self._ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._ended = asyncio.Event()

    # what the router and the scaler see ----------------------------------------------------
    @property
    def ref(self) -> models.VersionRef:
        return self.config.ref

    @property
    def outstanding(self) -> int:
        return self._busy

    @property
    def concurrency(self) -> int:
        return self.config.concurrency

    @property
    def has_free_slot(self) -> bool:
        return (
            self.state is models.EnvironmentState.READY
            and not self.reserved
            and self._busy < self.config.concurrency
        )

    @property
    def overload(self) -> str | None:
        if self.cpu_utilization >= _OVERLOAD:
            return "cpu"
        if self.memory_bytes >= _OVERLOAD * self.config.spec.memory_size_mb * 1024 * 1024:
            return "memory"
        return None

    @property
    def memory_utilization(self) -> float:
        return self.memory_bytes / (self.config.spec.memory_size_mb * 1024 * 1024)

    @property
    def log_stream(self) -> str:
        return self.stream

    @property
    def pid(self) -> int | None:
        """The runtime's pid on its node (not a process of this host)."""
        return self.remote_pid

    def take_peak_outstanding(self) -> int:
        peak = self._peak
        self._peak = self._busy
        return peak

    def dispatch(self, invocation: Invocation) -> None:
        """Send an invocation (the caller checked ``has_free_slot``)."""
        self.reserved = False
        self.invocations += 1
        self.last_used_mono = time.monotonic()
        self._busy += 1
        self._peak = max(self._peak, self._busy)
        self._pending[invocation.request_id] = invocation
        meta: dict[str, Any] = {
            "e": self.id,
            "r": invocation.request_id,
            "a": invocation.invoked_arn,
            "t": invocation.timeout_s,
        }
        if invocation.client_context:
            meta["c"] = invocation.client_context
        if invocation.trace_id:
            meta["x"] = invocation.trace_id
        if invocation.tail is not None:
            meta["tail"] = 1
        if not self._instance.send(Kind.DISPATCH, meta, invocation.payload):
            self._pending.pop(invocation.request_id, None)
            self._busy -= 1
            invocation.future.set_exception(self._lost_error(invocation.request_id))

    async def wait_ready(self) -> None:
        await asyncio.shield(self._ready)

    def request_drain(self, timeout_s: float, reason: str) -> None:
        if self.state in (models.EnvironmentState.STOPPED, models.EnvironmentState.FAILED):
            return
        self.end_reason = self.end_reason or reason
        self.state = models.EnvironmentState.DRAINING
        self._instance.send(Kind.DRAIN, {"id": self.id, "timeout_s": timeout_s, "reason": reason})

    async def drain(self, timeout_s: float) -> None:
        self.request_drain(timeout_s, "drained")
        await self._wait_ended(timeout_s + 10.0)

    async def stop(self, reason: str) -> None:
        if self.state not in (models.EnvironmentState.STOPPED, models.EnvironmentState.FAILED):
            self._stopping = True  # a READY still on its way changes nothing now
            self.end_reason = self.end_reason or reason
            self._instance.send(Kind.STOP, {"id": self.id, "reason": reason})
        await self._wait_ended(30.0)

    async def _wait_ended(self, timeout_s: float) -> None:
        try:
            await asyncio.wait_for(self._ended.wait(), timeout_s)
        except TimeoutError:
            asked = self.end_reason
            self.end_reason = ""  # what it was asked, and that nothing came back
            why = "its instance did not answer"
            self.ended(models.EnvironmentState.FAILED, f"{asked}: {why}" if asked else why, None)

    # what the agent says --------------------------------------------------------------------
    def became_ready(self, meta: dict[str, Any]) -> None:
        if self.state is not models.EnvironmentState.STARTING or self._stopping:
            return
        self.state = models.EnvironmentState.READY
        init_ms = meta.get("init_ms")
        self.init_duration_ms = None if init_ms is None else float(init_ms)
        self.remote_pid = meta.get("pid")
        self.stream = str(meta.get("stream", ""))
        if not self._ready.done():
            self._ready.set_result(None)
        self._instance.listener.environment_ready(self)

    def result(self, meta: dict[str, Any], body: bytes) -> None:
        request_id = str(meta["r"])
        invocation = self._pending.get(request_id)
        if meta.get("rel"):
            self.released(request_id)
        if invocation is None or invocation.future.done():
            return
        gone = meta.get("gone")
        if gone:
            why = gone if isinstance(gone, str) else "stopped"
            invocation.future.set_exception(
                errors.EnvironmentGone(
                    f"RequestId: {request_id} Error: the execution environment {why}"
                )
            )
            return
        size = int(meta["pl"])
        tail_lines = int(meta.get("tl", 0))
        tail = tuple(body[size:].split(b"\n")) if tail_lines else ()
        init = meta.get("i")
        invocation.future.set_result(
            InvocationResult(
                payload=body[:size],
                error_type=meta.get("et"),
                duration_ms=float(meta["d"]),
                log_lines=tail,
                init_duration_ms=None if init is None else float(init),
            )
        )

    def released(self, request_id: str) -> None:
        invocation = self._pending.pop(request_id, None)
        if invocation is not None:
            self._busy -= 1
            if invocation.on_release is not None:
                invocation.on_release()

    def usage(self, values: list[float]) -> None:
        self.cpu_utilization = float(values[0])
        self.memory_bytes = int(values[1])
        self.peak_memory_bytes = max(self.peak_memory_bytes, int(values[2]))

    def ended(
        self, state: models.EnvironmentState, reason: str, failure: InitFailure | None
    ) -> None:
        """The environment is gone: fail what it still holds, tell the registry; once."""
        if self._ended.is_set():
            return
        self.state = state
        self.end_reason = self.end_reason or reason
        if failure is not None:
            self.failure = failure
        for request_id, invocation in list(self._pending.items()):
            if not invocation.future.done():
                invocation.future.set_exception(self._lost_error(request_id))
        self._pending.clear()
        self._busy = 0
        if not self._ready.done():
            self._ready.set_exception(errors.BackendError(self.end_reason or "stopped"))
            self._ready.exception()
        self._ended.set()
        self._instance.forget(self)
        self._instance.listener.environment_ended(self)

    def _lost_error(self, request_id: str) -> errors.EnvironmentGone:
        return errors.EnvironmentGone(
            f"RequestId: {request_id} Error: the instance running this execution environment "
            f"({self._instance.instance_id}) was lost: {self._instance.lost_reason or 'gone'}"
        )


class RemoteInstance:
    """The server's end of the link to one instance's agent."""

    def __init__(
        self,
        instance_id: str,
        address: tuple[str, int],
        secret: bytes,
        *,
        listener: EnvironmentListener,
        sink: logs.LogSink,
        code: CodeStore,
        on_lost: Callable[[RemoteInstance], None],
    ) -> None:
        self.instance_id = instance_id
        self.address = address
        self.listener = listener
        self._secret = secret
        self._sink = sink
        self._code = code
        self._on_lost = on_lost
        self._link: LinkProtocol | None = None
        self._environments: dict[str, RemoteEnvironment] = {}
        self._last_heard = time.monotonic()
        self._watchdog: asyncio.TimerHandle | None = None
        self._tasks = TaskGroup(f"instance:{instance_id}")
        self.lost_reason = ""

    async def connect(self) -> None:
        """Connect, authenticate, and reset the agent (environments of an earlier server go).

        Raises:
            errors.BackendError: the agent cannot be reached or refused the secret.
        """
        loop = asyncio.get_running_loop()
        host, port = self.address
        try:
            _, link = await asyncio.wait_for(
                loop.create_connection(
                    lambda: LinkProtocol(Role.SERVER, self._secret, self._on_frame), host, port
                ),
                _CONNECT_TIMEOUT_S,
            )
            await asyncio.wait_for(link.authenticated, _CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError, LinkError) as exc:
            raise errors.BackendError(
                f"cannot reach the agent of instance {self.instance_id} at {host}:{port}: {exc}"
            ) from exc
        self._link = link
        link.closed.add_done_callback(lambda _: self.lose("its agent link closed"))
        link.send(Kind.RESET, {})
        self._last_heard = time.monotonic()
        self._watchdog = loop.call_later(SILENCE_S, self._check_silence)

    @property
    def environments(self) -> list[RemoteEnvironment]:
        return list(self._environments.values())

    def launch(self, environment_id: str, config: EnvironmentConfig) -> RemoteEnvironment:
        """Ask the agent to start an environment; it reports readiness through the listener.

        Raises:
            errors.BackendError: the instance is lost.
        """
        environment = RemoteEnvironment(self, environment_id, config)
        self._environments[environment_id] = environment
        if not self.send(Kind.LAUNCH, {"id": environment_id, "config": config_to_wire(config)}):
            self._environments.pop(environment_id, None)
            raise errors.BackendError(f"instance {self.instance_id} is lost")
        return environment

    def send(self, kind: Kind, meta: dict[str, Any], body: bytes = b"") -> bool:
        link = self._link
        return link is not None and link.send(kind, meta, body)

    def forget(self, environment: RemoteEnvironment) -> None:
        self._environments.pop(environment.id, None)

    def lose(self, reason: str) -> None:
        """The instance is gone: end every environment on it; once."""
        if self.lost_reason:
            return
        self.lost_reason = reason
        if self._watchdog is not None:
            self._watchdog.cancel()
        if self._link is not None:
            self._link.close()
        _log.warning("instance %s lost: %s", self.instance_id, reason)
        for environment in list(self._environments.values()):
            environment.ended(
                models.EnvironmentState.FAILED, f"its instance was lost ({reason})", None
            )
        self._on_lost(self)

    def close(self) -> None:
        """Stop listening to the agent (at shutdown: its environments were stopped)."""
        self.lost_reason = self.lost_reason or "closed"
        if self._watchdog is not None:
            self._watchdog.cancel()
        if self._link is not None:
            self._link.close()

    # frames -------------------------------------------------------------------------------------
    def _on_frame(self, kind: Kind, meta: dict[str, Any], body: bytes) -> None:
        self._last_heard = time.monotonic()
        if kind is Kind.RESULT:
            environment = self._environments.get(str(meta["e"]))
            if environment is not None:
                environment.result(meta, body)
        elif kind is Kind.RELEASED:
            environment = self._environments.get(str(meta["e"]))
            if environment is not None:
                environment.released(str(meta["r"]))
        elif kind is Kind.LOGS:
            self._logs(meta, body)
        elif kind is Kind.USAGE:
            for environment_id, values in dict(meta["u"]).items():
                environment = self._environments.get(environment_id)
                if environment is not None:
                    environment.usage(values)
        elif kind is Kind.READY:
            environment = self._environments.get(str(meta["id"]))
            if environment is not None:
                environment.became_ready(meta)
        elif kind is Kind.ENDED:
            self._ended(meta, body)
        elif kind is Kind.FETCH_CODE:
            self._tasks.spawn(self._send_code(str(meta["sha256"])), name="code")

    def _ended(self, meta: dict[str, Any], body: bytes) -> None:
        environment = self._environments.get(str(meta["id"]))
        if environment is None:
            return
        failure = None
        described = meta.get("failure")
        if described:
            failure = InitFailure(
                reason_code=str(described["reason_code"]),
                reason=str(described["reason"]),
                error_type=str(described["error_type"]),
                payload=body,
            )
        environment.ended(models.EnvironmentState(str(meta["state"])), str(meta["reason"]), failure)

    def _logs(self, meta: dict[str, Any], body: bytes) -> None:
        offset = 0
        for timestamp_s, group, stream, request_id, kind, args in meta["r"]:
            if kind == logs.LINES:
                size, minimum = args
                block = body[offset : offset + size]
                offset += size
                record = logs.LogRecord(
                    timestamp_s, group, stream, request_id, kind=kind, args=(block, minimum)
                )
            elif kind:
                record = logs.LogRecord(
                    timestamp_s, group, stream, request_id, kind=kind, args=tuple(args)
                )
            else:
                record = logs.LogRecord(timestamp_s, group, stream, request_id, str(args))
            self._sink.emit(record)

    async def _send_code(self, digest: str) -> None:
        try:
            data = await asyncio.to_thread(self._code.read_zip, digest)
        except OSError:
            _log.error(
                "instance %s asked for code %s, which is not stored", self.instance_id, digest
            )
            self.send(Kind.CODE, {"sha256": digest, "missing": 1})
            return
        self.send(Kind.CODE, {"sha256": digest}, data)

    def _check_silence(self) -> None:
        silent_s = time.monotonic() - self._last_heard
        if silent_s >= SILENCE_S:
            self.lose(f"its agent said nothing for {silent_s:.1f} s")
            return
        self._watchdog = asyncio.get_running_loop().call_later(
            SILENCE_S - silent_s + 0.05, self._check_silence
        )

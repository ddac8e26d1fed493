"""The agent of a remote instance: the agent layer of a node, behind the agent link.

The server (``backends.remote``) connects to it over the link (``agent.link``) and asks it
to launch environments, hand them invocations, drain and stop them. Everything else is
today's agent layer on this node: ``Agent`` starts ``ExecutionEnvironment``s in this node's
sandbox (runc containers, cgroups, network namespaces), each serves its runtime's Runtime
API here and samples its CPU and memory here. The agent sends back what the server must
know: environments ready and ended, results, freed slots, usage once a second, and every
log record (each line already filed under its request, as on one host).

Function code comes by its SHA-256 from the server's code store, once, and is kept in this
node's code store. A runtime missing on this node is installed before its first
environment starts (``corral runtimes install``'s work).

One server is served at a time: a newly authenticated connection replaces the previous one,
and the environments it had are stopped (a server that starts again rebuilds them), so no
environment runs that no server knows of.

Run as ``python -m corral.agent.node --host 127.0.0.3 --secret-file F --data-dir D`` (it
prints ``listening on HOST:PORT``), or inside the Ray actor of ``backends.ray``.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import logging
import subprocess
import time
from pathlib import Path
from typing import Any

from corral.agent.agent import Agent
from corral.agent.environment import EnvironmentConfig, EnvironmentSettings, ExecutionEnvironment
from corral.agent.handle import EnvironmentHandle
from corral.agent.link import Kind, LinkProtocol, Role
from corral.agent.registry import EnvironmentRegistry
from corral.core import errors, models
from corral.core.settings import Settings
from corral.core.tasks import TaskGroup
from corral.runtime.invocation import Invocation, InvocationResult, LogTail
from corral.sandbox.base import Sandbox
from corral.sandbox.choose import open_sandbox
from corral.sandbox.install import RuntimeUnavailable, prepare_runtime
from corral.sandbox.interpreters import Interpreter, RuntimeRegistry
from corral.store import codec
from corral.store.code import CodeStore
from corral.telemetry import logs

__all__ = ["NodeAgent", "config_from_wire", "config_to_wire"]

_log = logging.getLogger("corral.node")
_USAGE_INTERVAL_S = 1.0
_LOG_FLUSH_S = 0.1
_MAX_BUFFERED_RECORDS = 200_000
_CODE_WAIT_S = 120.0


def config_to_wire(config: EnvironmentConfig) -> dict[str, Any]:
    """An environment's configuration as the LAUNCH frame carries it (paths stay home)."""
    return {
        "function": config.ref.function,
        "version": config.ref.version,
        "spec": codec.spec_to_json(config.spec),
        "function_arn": config.function_arn,
        "region": config.region,
        "log_group": config.log_group,
        "init_timeout_s": config.init_timeout_s,
        "instance_id": config.instance_id,
        "revision_id": config.revision_id,
        "capacity_provider": config.capacity_provider,
        "fork_after_init": config.fork_after_init,
        "kill_on_timeout": config.kill_on_timeout,
        "report_init": config.report_init,
    }


def config_from_wire(
    data: dict[str, Any], code_dir: Path, interpreter: Interpreter
) -> EnvironmentConfig:
    """The configuration a LAUNCH frame describes, with this node's code and runtime."""
    return EnvironmentConfig(
        ref=models.VersionRef(str(data["function"]), str(data["version"])),
        spec=codec.spec_from_json(str(data["spec"])),
        function_arn=str(data["function_arn"]),
        code_dir=code_dir,
        interpreter=interpreter,
        region=str(data["region"]),
        log_group=str(data["log_group"]),
        init_timeout_s=float(data["init_timeout_s"]),
        instance_id=str(data["instance_id"]),
        revision_id=str(data["revision_id"]),
        capacity_provider=data.get("capacity_provider"),
        fork_after_init=bool(data.get("fork_after_init", False)),
        kill_on_timeout=bool(data.get("kill_on_timeout", False)),
        report_init=bool(data.get("report_init", False)),
    )


class _Shipper:
    """The log sink of this node's environments: records go to the server in batches."""

    def __init__(self) -> None:
        self.pending: list[logs.LogRecord] = []
        self.dropped = 0

    def emit(self, record: logs.LogRecord) -> None:
        if len(self.pending) >= _MAX_BUFFERED_RECORDS:
            self.dropped += 1  # no server to take them: bounded, counted
            return
        self.pending.append(record)

    def frame(self) -> tuple[dict[str, Any], bytes] | None:
        """The pending records as one LOGS frame (blocks of output go in the body)."""
        if not self.pending:
            return None
        records, self.pending = self.pending, []
        rows: list[list[Any]] = []
        blocks: list[bytes] = []
        for record in records:
            if record.kind == logs.LINES:
                block, minimum = record.args
                blocks.append(block)
                args: Any = [len(block), minimum]
            elif record.kind:
                args = list(record.args)
            else:
                args = record.message
            rows.append(
                [
                    record.timestamp_s,
                    record.log_group,
                    record.log_stream,
                    record.request_id,
                    record.kind,
                    args,
                ]
            )
        return {"r": rows}, b"".join(blocks)


class NodeAgent:
    """The environments of one remote instance, served to one Corral server."""

    def __init__(self, settings: Settings, instance_id: str, secret: bytes) -> None:
        self._settings = settings
        self.instance_id = instance_id
        self._secret = secret
        self._registry = EnvironmentRegistry()
        self._shipper = _Shipper()
        self._code = CodeStore(settings.code_dir)
        self._runtimes = RuntimeRegistry(settings.runtimes_dir)
        self._installing = asyncio.Lock()
        self._agent: Agent | None = None
        self._sandbox: Sandbox | None = None
        self._server: asyncio.AbstractServer | None = None
        self._link: LinkProtocol | None = None
        self._environments: dict[str, ExecutionEnvironment] = {}
        self._code_waiters: dict[str, asyncio.Future[bytes]] = {}
        # Launches under way, and why the server ended one before it was there (STOP or
        # DRAIN that came while its code, runtime or process was still on the way).
        self._launching: dict[str, str | None] = {}
        self._tasks = TaskGroup(f"node:{instance_id}")
        self.sandbox_name = ""
        self.warnings: tuple[str, ...] = ()
        self._registry.subscribe(ready=self._on_ready, ended=self._on_ended)

    async def start(self, host: str, port: int = 0) -> int:
        """Open the sandbox and listen for the server; return the port.

        Raises:
            errors.CorralError: the sandbox cannot run here.
        """
        settings = self._settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        settings.run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        choice = await asyncio.to_thread(open_sandbox, settings)
        self.sandbox_name = choice.sandbox.describe()["sandbox"]
        self.warnings = choice.warnings
        for warning in choice.warnings:
            _log.warning("%s: %s", self.instance_id, warning)
        self._agent = Agent(
            self.instance_id,
            sandbox=choice.sandbox,
            registry=self._registry,
            sink=self._shipper,
            run_dir=settings.run_dir,
            env_settings=EnvironmentSettings(
                stop_grace_s=settings.environment_stop_grace_s,
                stuck_worker_grace_s=settings.stuck_worker_grace_s,
                log_rate_bytes_per_s=settings.log_rate_bytes_per_s,
            ),
        )
        self._agent.start()
        self._sandbox = choice.sandbox
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._new_link, host, port)
        self._tasks.spawn(self._report_forever(), name="report")
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Stop every environment, close the link and the sandbox."""
        await self._tasks.cancel_all()
        if self._server is not None:
            self._server.close()
        if self._agent is not None:
            await self._agent.stop(self._settings.drain_timeout_s)
        self._flush_logs()
        if self._link is not None:
            self._link.close()
        if self._sandbox is not None:
            await asyncio.to_thread(self._sandbox.close)

    @property
    def environments(self) -> int:
        return len(self._environments)

    # the link ------------------------------------------------------------------------------
    def _new_link(self) -> LinkProtocol:
        link = LinkProtocol(Role.AGENT, self._secret, self._on_frame)
        link.authenticated.add_done_callback(lambda done: self._authenticated(link, done))
        link.closed.add_done_callback(lambda _: self._link_closed(link))
        return link

    def _authenticated(self, link: LinkProtocol, done: asyncio.Future[None]) -> None:
        """Adopt a newly authenticated connection as the server's (the newest wins)."""
        if done.cancelled() or done.exception() is not None:
            _log.warning("%s: refused a connection from %s", self.instance_id, link.peer)
            return
        previous = self._link
        self._link = link
        if previous is not None and previous is not link:
            previous.close()
        _log.info("%s: serving the Corral server at %s", self.instance_id, link.peer)

    def _link_closed(self, link: LinkProtocol) -> None:
        if link is not self._link:
            return
        self._link = None
        # No server knows of these environments now: stop them, unless a server is back
        # within the grace period (it resets them itself).
        self._tasks.spawn(self._orphaned(), name="orphaned")

    async def _orphaned(self) -> None:
        await asyncio.sleep(self._settings.drain_timeout_s)
        if self._link is not None:
            return
        for environment in list(self._environments.values()):
            self._tasks.spawn(environment.stop("no Corral server"), name="orphan-stop")

    def _send(self, kind: Kind, meta: dict[str, Any], body: bytes = b"") -> None:
        link = self._link
        if link is not None:
            link.send(kind, meta, body)

    def _on_frame(self, kind: Kind, meta: dict[str, Any], body: bytes) -> None:
        if kind is Kind.DISPATCH:
            self._dispatch(meta, body)
        elif kind is Kind.LAUNCH:
            self._launching[str(meta["id"])] = None  # from now on a STOP for it counts
            self._tasks.spawn(self._launch(meta), name=f"launch:{str(meta['id'])[:8]}")
        elif kind is Kind.DRAIN:
            environment = self._environments.get(str(meta["id"]))
            if environment is not None:
                environment.request_drain(float(meta["timeout_s"]), str(meta["reason"]))
            elif str(meta["id"]) in self._launching:
                self._launching[str(meta["id"])] = str(meta["reason"])
        elif kind is Kind.STOP:
            environment = self._environments.get(str(meta["id"]))
            if environment is not None:
                self._tasks.spawn(environment.stop(str(meta["reason"])), name="stop")
            elif str(meta["id"]) in self._launching:
                self._launching[str(meta["id"])] = str(meta["reason"])
        elif kind is Kind.CODE:
            waiter = self._code_waiters.pop(str(meta["sha256"]), None)
            if waiter is not None and not waiter.done():
                if meta.get("missing"):
                    waiter.set_exception(
                        errors.BackendError(
                            f"the server has no code {str(meta['sha256'])[:12]} to send"
                        )
                    )
                    waiter.exception()
                else:
                    waiter.set_result(body)
        elif kind is Kind.RESET:
            for launching in self._launching:
                self._launching[launching] = "the server started again"
            for environment in list(self._environments.values()):
                self._tasks.spawn(environment.stop("the server started again"), name="reset")

    # environments --------------------------------------------------------------------------
    async def _launch(self, meta: dict[str, Any]) -> None:
        environment_id = str(meta["id"])
        wire = dict(meta["config"])
        try:
            spec = codec.spec_from_json(str(wire["spec"]))
            code_dir = await self._code_dir(spec.code_sha256)
            interpreter = await self._interpreter(spec.runtime)
            config = config_from_wire(wire, code_dir, interpreter)
            assert self._agent is not None
            stopped = self._launching.get(environment_id)
            if stopped is not None:  # ended by the server before it could start
                self._send(
                    Kind.ENDED,
                    {"id": environment_id, "state": "Stopped", "reason": stopped, "failure": None},
                )
                return
            environment = await self._agent.launch(config, environment_id)
        except errors.CorralError as exc:
            self._send(
                Kind.ENDED,
                {"id": environment_id, "state": "Failed", "reason": exc.message, "failure": None},
            )
            return
        except Exception as exc:  # a bug or the disk: the server must hear of it anyway
            _log.exception("%s: could not launch environment %s", self.instance_id, environment_id)
            self._send(
                Kind.ENDED,
                {"id": environment_id, "state": "Failed", "reason": str(exc), "failure": None},
            )
            return
        finally:
            stopped = self._launching.pop(environment_id, None)
        self._environments[environment_id] = environment
        if stopped is not None:  # ended by the server while its runtime was starting
            self._tasks.spawn(environment.stop(stopped), name="stop")

    async def _code_dir(self, code_sha256: str) -> Path:
        digest = base64.b64decode(code_sha256).hex()
        target = self._code.path(digest)
        if await asyncio.to_thread(target.is_dir):
            return target
        waiter = self._code_waiters.get(digest)
        if waiter is None:
            waiter = asyncio.get_running_loop().create_future()
            self._code_waiters[digest] = waiter
            self._send(Kind.FETCH_CODE, {"sha256": digest})
        try:
            data = await asyncio.wait_for(asyncio.shield(waiter), _CODE_WAIT_S)
        except TimeoutError as exc:
            self._code_waiters.pop(digest, None)
            raise errors.BackendError(
                f"the server did not send code {digest[:12]} in time"
            ) from exc
        stored = await asyncio.to_thread(self._code.put, data)
        if stored.sha256_hex != digest:
            raise errors.BackendError(f"the server sent other code than {digest[:12]}")
        return self._code.path(digest)

    async def _interpreter(self, runtime: str) -> Interpreter:
        found = self._runtimes.available().get(runtime)
        if found is not None:
            return found
        async with self._installing:
            self._runtimes.refresh()
            found = self._runtimes.available().get(runtime)
            if found is not None:
                return found
            _log.info("%s: installing runtime %s", self.instance_id, runtime)
            try:
                installed = await asyncio.to_thread(
                    prepare_runtime,
                    self._settings.runtimes_dir,
                    runtime,
                    self._settings.python_path,
                    say=_log.info,
                )
            except RuntimeUnavailable as exc:
                raise errors.BackendError(
                    f"runtime {runtime} cannot run on instance {self.instance_id}: {exc}"
                ) from exc
            except subprocess.CalledProcessError as exc:
                raise errors.BackendError(
                    f"runtime {runtime} could not be installed on instance "
                    f"{self.instance_id}: {str(exc.stderr or exc)[-500:]}"
                ) from exc
            self._runtimes.refresh()
            return installed

    def _dispatch(self, meta: dict[str, Any], payload: bytes) -> None:
        environment_id = str(meta["e"])
        request_id = str(meta["r"])
        environment = self._environments.get(environment_id)
        if environment is None or not environment.has_free_slot:
            why = "stopped" if environment is None else "had no free slot"
            self._send(Kind.RESULT, {"e": environment_id, "r": request_id, "gone": why, "rel": 1})
            return
        invocation = Invocation(
            request_id=request_id,
            payload=payload,
            invoked_arn=str(meta["a"]),
            timeout_s=float(meta["t"]),
            future=asyncio.get_running_loop().create_future(),
            client_context=str(meta.get("c", "")),
            trace_id=str(meta.get("x", "")),
            tail=LogTail() if meta.get("tail") else None,
        )
        invocation.on_release = lambda: self._released(environment_id, invocation)
        invocation.future.add_done_callback(
            lambda future: self._answer(environment_id, invocation, future)
        )
        environment.dispatch(invocation)

    def _answer(
        self, environment_id: str, invocation: Invocation, future: asyncio.Future[InvocationResult]
    ) -> None:
        result = future.result()
        meta: dict[str, Any] = {
            "e": environment_id,
            "r": invocation.request_id,
            "d": result.duration_ms,
            "pl": len(result.payload),
        }
        if result.error_type is not None:
            meta["et"] = result.error_type
        if result.init_duration_ms is not None:
            meta["i"] = result.init_duration_ms
        if invocation.runtime_answered:
            meta["rel"] = 1  # the slot is free: no RELEASED frame follows
            invocation.on_release = None
        tail = b"\n".join(result.log_lines)
        if result.log_lines:
            meta["tl"] = len(result.log_lines)
        # Its log records first, in the same write (the link keeps the order): once the
        # caller has its answer, `corral logs --request-id` finds every line, as on one host.
        frames: list[tuple[Kind, dict[str, Any], bytes]] = []
        logged = self._shipper.frame()
        if logged is not None:
            frames.append((Kind.LOGS, *logged))
        frames.append((Kind.RESULT, meta, result.payload + tail))
        link = self._link
        if link is not None:
            link.send_many(frames)

    def _released(self, environment_id: str, invocation: Invocation) -> None:
        if invocation.future.done():  # after the caller's answer (a timeout): say so now
            self._send(Kind.RELEASED, {"e": environment_id, "r": invocation.request_id})

    def _on_ready(self, environment: EnvironmentHandle) -> None:
        self._send(
            Kind.READY,
            {
                "id": environment.id,
                "init_ms": environment.init_duration_ms,
                "pid": environment.pid,
                "stream": environment.log_stream,
            },
        )

    def _on_ended(self, environment: EnvironmentHandle) -> None:
        self._environments.pop(environment.id, None)
        failure = environment.failure
        meta: dict[str, Any] = {
            "id": environment.id,
            "state": environment.state.value,
            "reason": environment.end_reason,
            "failure": None,
        }
        body = b""
        if failure is not None:
            meta["failure"] = {
                "reason_code": failure.reason_code,
                "reason": failure.reason,
                "error_type": failure.error_type,
            }
            body = failure.payload
        self._send(Kind.ENDED, meta, body)

    # reports -------------------------------------------------------------------------------
    async def _report_forever(self) -> None:
        """Logs ten times a second, usage once a second."""
        next_usage = time.monotonic()
        while True:
            await asyncio.sleep(_LOG_FLUSH_S)
            self._flush_logs()
            if time.monotonic() >= next_usage:
                next_usage = time.monotonic() + _USAGE_INTERVAL_S
                self._send(Kind.USAGE, {"u": self._usage()})

    def _usage(self) -> dict[str, list[float]]:
        return {
            env.id: [env.cpu_utilization, env.memory_bytes, env.peak_memory_bytes]
            for env in self._environments.values()
        }

    def _flush_logs(self) -> None:
        if self._link is None or not self._link.alive:
            return
        frame = self._shipper.frame()
        if frame is not None:
            self._send(Kind.LOGS, *frame)


def main(argv: list[str] | None = None) -> int:
    """``python -m corral.agent.node``: serve one instance's agent until SIGTERM or Ctrl+C."""
    import argparse
    import signal
    import sys

    import uvloop

    parser = argparse.ArgumentParser(description="A Corral instance agent (see module doc).")
    parser.add_argument("--host", required=True, help="the address to listen on")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--secret-file", type=Path, required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--instance-id", default="i-standalone")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    settings = dataclasses.replace(Settings.from_env(), data_dir=args.data_dir.resolve())
    secret = args.secret_file.read_bytes().strip()

    async def serve() -> int:
        agent = NodeAgent(settings, args.instance_id, secret)
        port = await agent.start(args.host, args.port)
        print(f"listening on {args.host}:{port}", flush=True)
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stopping.set)
        await stopping.wait()
        await agent.stop()
        return 0

    return uvloop.run(serve())


if __name__ == "__main__":
    raise SystemExit(main())

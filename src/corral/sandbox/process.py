"""The ``process`` sandbox: the runtime runs as a plain process group on this host.

For development machines without runc. It isolates nothing: functions can read each other's
code, the data directory and the host. Corral says so loudly at start-up and in
``corral status``. Processes are started in their own session so the whole tree can be
signalled, and they die with Corral (``PR_SET_PDEATHSIG``) if Corral is killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket

import psutil

from corral.core import errors
from corral.sandbox.base import (
    ExitStatus,
    RuntimeCommand,
    RuntimeLayout,
    SandboxProcess,
    SandboxSlot,
    SandboxSpec,
)
from corral.sandbox.spawn import dying_with_parent

__all__ = ["ProcessSandbox"]


def process_tree(root: int) -> list[int]:
    """``root`` and its descendants, read from ``/proc/<pid>/task/<tid>/children``.

    Much cheaper than scanning every process of the host for parent ids.
    """
    found: list[int] = []
    pending = [root]
    while pending:
        pid = pending.pop()
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        found.append(pid)
        for tid in tasks:
            try:
                with open(f"/proc/{pid}/task/{tid}/children") as handle:
                    pending.extend(int(child) for child in handle.read().split())
            except OSError:
                continue
    return found


class _Process:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self._proc = proc
        self._status: ExitStatus | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid

    async def wait(self) -> ExitStatus:
        if self._status is None:
            code = await self._proc.wait()
            self._status = ExitStatus(returncode=code)
        return self._status

    def pids(self) -> list[int]:
        return process_tree(self._proc.pid)

    def cpu_seconds(self) -> float:
        total = 0.0
        for pid in self.pids():
            with contextlib.suppress(psutil.Error):
                times = psutil.Process(pid).cpu_times()
                total += times.user + times.system
        return total

    def memory_bytes(self) -> int:
        total = 0
        for pid in self.pids():
            with contextlib.suppress(psutil.Error):
                total += psutil.Process(pid).memory_info().rss
        return total

    def peak_memory_bytes(self) -> int:
        return 0  # sampled by the environment instead

    def out_of_memory(self) -> bool:
        return False  # no memory limit here

    async def stop(self, grace_s: float) -> None:
        pids = self.pids()
        self._signal_group(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.wait(), timeout=grace_s)
        except TimeoutError:
            pass
        self._signal_group(signal.SIGKILL)
        for pid in pids:
            # Workers forked by the runtime may have left the process group.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        await self.wait()

    def _signal_group(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._proc.pid, sig)


class _Slot:
    def __init__(self, spec: SandboxSpec) -> None:
        self._spec = spec
        tmp_dir = spec.work_dir / "tmp"
        self.layout = RuntimeLayout(
            task_root=spec.code_dir,
            runtime_dir=spec.interpreter.executable.parent.parent,
            executable=spec.interpreter.executable,
            tmp_dir=tmp_dir,
            log_socket=spec.log_socket,
        )

    def listen(self) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        return sock

    async def start(self, command: RuntimeCommand) -> SandboxProcess:
        try:
            self.layout.tmp_dir.mkdir(parents=True, exist_ok=True)
            proc = await asyncio.create_subprocess_exec(
                *dying_with_parent(command.argv, signal.SIGKILL),
                cwd=str(self._spec.code_dir),
                env=dict(command.env),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=command.stdout.fileno(),
                stderr=command.stderr.fileno(),
                start_new_session=True,
            )
        except OSError as exc:
            raise errors.SandboxError(f"could not start {command.argv[0]}: {exc}") from exc
        return _Process(proc)

    def close(self) -> None:
        pass


class ProcessSandbox:
    """Runs each execution environment as a process group (no isolation)."""

    name = "process"
    isolated = False

    def prepare(self, spec: SandboxSpec) -> SandboxSlot:
        return _Slot(spec)

    def describe(self) -> dict[str, str]:
        return {
            "sandbox": self.name,
            "isolation": "none: functions can read each other's code, the data directory "
            "and the host",
            "network": "host",
        }

    def close(self) -> None:
        pass

"""The ``Sandbox`` protocol: start one execution environment's runtime, stop it, watch it.

Callers (``agent.environment``) describe what to run with a ``SandboxSpec``; the sandbox
decides how it is isolated and returns a ``SandboxProcess`` to wait on and stop.
"""

from __future__ import annotations

import signal
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

__all__ = ["ExitStatus", "Sandbox", "SandboxProcess", "SandboxSpec"]


@dataclass(frozen=True)
class SandboxSpec:
    """What to run: the command, its environment, and its resources."""

    environment_id: str
    argv: Sequence[str]
    env: Mapping[str, str]
    code_dir: Path
    work_dir: Path
    memory_limit_mb: int
    vcpus: int
    stdout: socket.socket
    stderr: socket.socket
    extra_paths: Sequence[Path] = field(default_factory=tuple)


@dataclass(frozen=True)
class ExitStatus:
    """How the runtime's main process ended."""

    returncode: int
    out_of_memory: bool = False

    def describe(self) -> str:
        """Lambda's wording, e.g. ``exit status 1`` or ``signal: killed``."""
        if self.out_of_memory:
            return "signal: killed (out of memory)"
        if self.returncode < 0:
            return f"signal: {_signal_name(-self.returncode)}"
        return f"exit status {self.returncode}"


# How Lambda (Go's os/exec) writes the signal that ended a runtime.
_SIGNAL_WORDS = {
    signal.SIGABRT: "aborted",
    signal.SIGBUS: "bus error",
    signal.SIGFPE: "floating point exception",
    signal.SIGHUP: "hangup",
    signal.SIGILL: "illegal instruction",
    signal.SIGINT: "interrupt",
    signal.SIGKILL: "killed",
    signal.SIGPIPE: "broken pipe",
    signal.SIGQUIT: "quit",
    signal.SIGSEGV: "segmentation fault",
    signal.SIGTERM: "terminated",
    signal.SIGUSR1: "user defined signal 1",
    signal.SIGUSR2: "user defined signal 2",
}


def _signal_name(number: int) -> str:
    try:
        sig = signal.Signals(number)
    except ValueError:
        return f"signal {number}"
    return _SIGNAL_WORDS.get(sig, sig.name.removeprefix("SIG").lower())


class SandboxProcess(Protocol):
    """A running execution environment."""

    @property
    def pid(self) -> int:
        """The pid of the runtime's main process, as this host sees it."""

    async def wait(self) -> ExitStatus:
        """Wait until the main process exits."""

    def pids(self) -> list[int]:
        """Every process of the environment (host pids)."""

    async def stop(self, grace_s: float) -> None:
        """Ask every process to stop (SIGTERM), then kill what is left after ``grace_s``."""

    def memory_bytes(self) -> int:
        """Memory used by the whole environment now."""

    def cpu_seconds(self) -> float:
        """CPU time used by the processes of the environment that are alive now."""


class Sandbox(Protocol):
    """Starts execution environments in one kind of isolation."""

    name: str

    async def start(self, spec: SandboxSpec) -> SandboxProcess:
        """Start the runtime described by ``spec``."""

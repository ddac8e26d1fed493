"""The ``Sandbox`` protocol: start one execution environment's runtime, stop it, watch it.

Callers (``agent.environment``) describe an environment with a ``SandboxSpec`` and get a
``SandboxSlot``: the paths the runtime will see (``RuntimeLayout``) and a listening socket
for its Runtime API that only that runtime can reach. ``slot.start`` then runs the runtime
and returns a ``SandboxProcess`` to wait on, measure and stop.

Two sandboxes: ``container`` (``sandbox.container``, runc) and ``process``
(``sandbox.process``, no isolation).
"""

from __future__ import annotations

import signal
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from corral.sandbox.interpreters import Interpreter

__all__ = [
    "ExitStatus",
    "RuntimeCommand",
    "RuntimeLayout",
    "Sandbox",
    "SandboxProcess",
    "SandboxSlot",
    "SandboxSpec",
]


@dataclass(frozen=True)
class SandboxSpec:
    """What one execution environment needs: its code, runtime and resources (host view)."""

    environment_id: str
    code_dir: Path
    work_dir: Path
    interpreter: Interpreter
    memory_limit_mb: int
    vcpus: int
    ephemeral_storage_mb: int = 512

    @property
    def log_socket(self) -> Path:
        """Where the environment's log socket lives on the host."""
        return self.work_dir / "ipc" / "log.sock"


@dataclass(frozen=True)
class RuntimeLayout:
    """Where the runtime finds things, as paths seen from inside its sandbox."""

    task_root: Path
    runtime_dir: Path
    executable: Path
    tmp_dir: Path
    log_socket: Path


@dataclass(frozen=True)
class RuntimeCommand:
    """The runtime's main process: its command line, environment and output sockets.

    ``output_socket`` (the path inside the sandbox of the environment's log socket): a
    sandbox that would relay the process's stdout and stderr (runc copies a container's
    through pipes, after the fact) connects them to it instead, so that what the runtime
    writes before it answers an invocation is readable when the answer arrives.
    """

    argv: Sequence[str]
    env: Mapping[str, str]
    stdout: socket.socket
    stderr: socket.socket
    output_socket: Path | None = None


@dataclass(frozen=True)
class ExitStatus:
    """How the runtime's main process ended.

    ``out_of_memory``: the environment hit its memory limit and the kernel killed a
    process of it. Lambda still writes the exit as ``signal: killed``; the error type
    (``Runtime.OutOfMemory``) tells the two apart.
    """

    returncode: int
    out_of_memory: bool = False

    def describe(self) -> str:
        """Lambda's wording, e.g. ``exit status 1`` or ``signal: killed``."""
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
    def pid(self) -> int | None:
        """The runtime's main process as this host sees it (None until it is known)."""

    async def wait(self) -> ExitStatus:
        """Wait until the main process exits."""

    def pids(self) -> list[int]:
        """Every process of the environment (host pids)."""

    async def stop(self, grace_s: float) -> None:
        """Ask every process to stop (SIGTERM), then kill what is left after ``grace_s``."""

    def memory_bytes(self) -> int:
        """Memory used by the whole environment now."""

    def peak_memory_bytes(self) -> int:
        """The most memory the environment has held at once, if the sandbox tracks it (else 0)."""

    def cpu_seconds(self) -> float:
        """CPU time used by the environment (monotonic while it runs)."""

    def out_of_memory(self) -> bool:
        """Whether the kernel killed a process of the environment for exceeding its memory."""


class SandboxSlot(Protocol):
    """One environment's place in a sandbox, reserved before its runtime starts."""

    layout: RuntimeLayout

    def listen(self) -> socket.socket:
        """A listening TCP socket for the Runtime API, reachable by this runtime only
        (as ``127.0.0.1:<its port>``)."""

    async def start(self, command: RuntimeCommand) -> SandboxProcess:
        """Start the runtime.

        Raises:
            errors.SandboxError: it could not be started.
        """

    def close(self) -> None:
        """Release what ``listen`` and ``start`` took (idempotent)."""


class Sandbox(Protocol):
    """Starts execution environments in one kind of isolation."""

    name: str
    # Whether functions are isolated from each other and from the host.
    isolated: bool

    def prepare(self, spec: SandboxSpec) -> SandboxSlot:
        """Reserve a slot for the environment described by ``spec``.

        Raises:
            errors.SandboxError: the sandbox cannot hold it (namespaces, cgroups, disk).
        """

    def describe(self) -> dict[str, str]:
        """What ``corral status`` shows about this sandbox (name, isolation, network)."""

    def close(self) -> None:
        """Release what the sandbox holds on the host (after every environment stopped)."""

"""The ``container`` sandbox: every execution environment is an OCI container run by runc.

Per environment (``prepare`` then ``start``):

1. a network namespace holding the Runtime API socket (``sandbox.netns``), plus
   ``slirp4netns`` for outbound traffic when egress is on;
2. a cgroup with the environment's limits (``sandbox.cgroups``);
3. a bundle (``config.json`` from ``sandbox.oci``) over the shared read-only skeleton
   (``sandbox.rootfs``);
4. ``runc run`` in the foreground: it exits with the runtime's main process, which is the
   container's pid 1, so when the runtime exits every worker dies with it.

``runc`` gets ``SIGTERM`` if Corral dies (``PR_SET_PDEATHSIG``) and passes it to the runtime;
whatever a crash still leaves behind is killed at the next start (``CgroupTree.sweep``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from corral.core import errors
from corral.sandbox import oci
from corral.sandbox.base import (
    ExitStatus,
    RuntimeCommand,
    RuntimeLayout,
    SandboxProcess,
    SandboxSlot,
    SandboxSpec,
)
from corral.sandbox.cgroups import CgroupTree, EnvironmentCgroup, Limits
from corral.sandbox.netns import SLIRP_DNS, Egress, NetworkNamespace
from corral.sandbox.rootfs import SYSTEM_DIRS, build_rootfs
from corral.sandbox.spawn import dying_with_parent

__all__ = ["ContainerOptions", "ContainerSandbox"]

_log = logging.getLogger("corral.sandbox")
_LAYOUT = RuntimeLayout(
    task_root=oci.TASK_ROOT,
    runtime_dir=oci.RUNTIME_DIR,
    executable=oci.RUNTIME_DIR / "bin" / "python",
    tmp_dir=Path("/tmp"),
    log_socket=oci.LOG_DIR / "log.sock",
)


@dataclass(frozen=True)
class ContainerOptions:
    """How containers are run on this host."""

    run_dir: Path
    runc: str = "runc"
    # ``slirp4netns`` binary for outbound network access; None: loopback only.
    egress: str | None = None
    pids_limit: int = 1024
    cgroup_name: str = "corral"


# The runtime is the container's pid 1, and the kernel drops signals sent to a namespace's
# init that it has no handler for: SIGTERM would be ignored. This prelude gives SIGTERM a
# C-level handler (``_exit``, async-signal-safe, runs even while the runtime waits inside
# its native client), connects stdout and stderr to the environment's log socket when one is
# named (runc relays a foreground container's stdio through pipes, so a line written just
# before an answer could reach Corral after it; a socket of its own has no relay, and the
# kernel tells Corral its pid), and then runs the module exactly as ``python -m`` does (or
# the program, as ``python -c`` does). A
# SIGTERM handler the function installs itself replaces this one, as it would on Lambda.
_PID1_PRELUDE = """
import ctypes, os, runpy, socket, sys
c = ctypes.CDLL(None)
c.signal(15, ctypes.cast(c._exit, ctypes.c_void_p))
path = sys.argv.pop(1)
if path:
    for fd in (1, 2):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(path)
        os.dup2(s.fileno(), fd)
        s.close()
if sys.argv.pop(1) == "-m":
    runpy._run_module_as_main(sys.argv.pop(1))
else:
    code = sys.argv.pop(1)
    sys.argv[0] = "-c"
    exec(compile(code, "<string>", "exec"), {"__name__": "__main__"})
"""


# Another program (Node.js) is run by the host's Python (mounted with /usr): it connects
# stdout and stderr to the log socket as above, then becomes that program. That program
# handles SIGTERM itself (Corral's Node.js layer does).
_EXEC_PRELUDE = """
import os, socket, sys
for fd in (1, 2):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sys.argv[1])
    os.dup2(s.fileno(), fd)
    s.close()
os.execv(sys.argv[2], sys.argv[2:])
"""
_SYSTEM_PYTHON = "/usr/bin/python3"


def _as_pid1(argv: Sequence[str], output_socket: Path | None = None) -> list[str]:
    """``python -m module args`` (or ``python -c program args``) as a command fit to be a
    container's pid 1; another program with its output connected to ``output_socket``."""
    if len(argv) >= 3 and argv[1] in ("-m", "-c"):
        return [argv[0], "-c", _PID1_PRELUDE, str(output_socket or ""), *argv[1:]]
    if output_socket is not None and Path(_SYSTEM_PYTHON).exists():
        return [_SYSTEM_PYTHON, "-c", _EXEC_PRELUDE, str(output_socket), *argv]
    return list(argv)


_STOPPED_WHILE_STARTING = "the execution environment was stopped while it was starting"


def _exit_status(code: int, out_of_memory: bool) -> ExitStatus:
    """runc exits with the container's status; a signal death shows as 128 + signal."""
    if 128 < code < 128 + 65:
        return ExitStatus(returncode=-(code - 128), out_of_memory=out_of_memory)
    return ExitStatus(returncode=code, out_of_memory=out_of_memory)


class _Container:
    """A running container (``SandboxProcess``)."""

    def __init__(
        self, proc: asyncio.subprocess.Process, slot: _ContainerSlot, cgroup: EnvironmentCgroup
    ) -> None:
        self._proc = proc
        self._slot = slot
        self._cgroup = cgroup
        self._status: ExitStatus | None = None
        self._pid: int | None = None
        self._done = asyncio.Lock()

    @property
    def pid(self) -> int | None:
        if self._pid is None:
            with contextlib.suppress(OSError, ValueError):
                self._pid = int(self._slot.pid_file.read_text())
        return self._pid

    async def wait(self) -> ExitStatus:
        async with self._done:
            if self._status is None:
                code = await self._proc.wait()
                status = _exit_status(code, self._cgroup.oom_kills() > 0)
                if status.returncode == -signal.SIGKILL and self._cgroup.reached_limit():
                    # Killed while at its memory limit: the counter of the kill went with
                    # runc's cgroup (v1), but this is the kernel's OOM killer.
                    status = ExitStatus(status.returncode, out_of_memory=True)
                _log.debug("container %s exited: runc %d, %s", self._slot.name, code, status)
                await asyncio.to_thread(self._slot.release)
                self._status = status
        return self._status

    def pids(self) -> list[int]:
        return self._cgroup.pids()

    def memory_bytes(self) -> int:
        return self._cgroup.memory_bytes()

    def peak_memory_bytes(self) -> int:
        return self._cgroup.peak_memory_bytes()

    def cpu_seconds(self) -> float:
        return self._cgroup.cpu_seconds()

    def out_of_memory(self) -> bool:
        return self._cgroup.oom_kills() > 0

    async def stop(self, grace_s: float) -> None:
        if self._proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(asyncio.shield(self._proc.wait()), timeout=grace_s)
            except TimeoutError:
                pass
            await asyncio.to_thread(self._cgroup.kill_all)
        await self.wait()


class _ContainerSlot:
    """One environment's network, cgroup and bundle (``SandboxSlot``)."""

    def __init__(self, sandbox: ContainerSandbox, spec: SandboxSpec) -> None:
        self._sandbox = sandbox
        self._spec = spec
        # The runtime's program at its place under /var/runtime (bin/python or bin/node).
        self.layout = dataclasses.replace(
            _LAYOUT, executable=oci.RUNTIME_DIR / "bin" / spec.interpreter.executable.name
        )
        self.name = spec.environment_id[:8]
        self._bundle = spec.work_dir / "bundle"
        self.pid_file = self._bundle / "runtime.pid"
        self._namespace: NetworkNamespace | None = None
        self._egress: Egress | None = None
        self._cgroup = sandbox.cgroups.environment(spec.environment_id)
        self._cgroup_made = False
        # ``close`` may come from the event loop while ``_prepare`` runs in a thread (the
        # environment is stopped while it starts): one waits for the other, and a closed
        # slot starts nothing more (a slirp4netns made after the release would leak).
        self._lock = threading.Lock()
        self._closed = False

    def listen(self) -> socket.socket:
        if self._namespace is None:
            self._namespace = NetworkNamespace()
        return self._namespace.socket

    async def start(self, command: RuntimeCommand) -> SandboxProcess:
        if self._namespace is None:
            self.listen()
        assert self._namespace is not None
        try:
            await asyncio.to_thread(self._prepare, command)
            if self._closed or self._namespace is None:
                raise errors.SandboxError(_STOPPED_WHILE_STARTING)
            # runc passes SIGTERM on to the runtime, which then exits with its container.
            argv = [
                self._sandbox.options.runc,
                "--root",
                str(self._sandbox.state_dir),
                "--log",
                str(self._spec.work_dir / "runc.log"),
                "run",
                "--bundle",
                str(self._bundle),
                "--pid-file",
                str(self.pid_file),
                self._spec.environment_id,
            ]
            proc = await asyncio.create_subprocess_exec(
                *dying_with_parent(argv, signal.SIGTERM),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=command.stdout.fileno(),
                stderr=command.stderr.fileno(),
                pass_fds=(self._namespace.fd,),
            )
        except (OSError, errors.SandboxError) as exc:
            await asyncio.to_thread(self.release)
            if isinstance(exc, errors.SandboxError):
                raise
            raise errors.SandboxError(f"could not start runc: {exc}") from exc
        return _Container(proc, self, self._cgroup)

    def _prepare(self, command: RuntimeCommand) -> None:
        with self._lock:
            if self._closed or self._namespace is None:
                raise errors.SandboxError(_STOPPED_WHILE_STARTING)
            self._prepare_locked(command, self._namespace)

    def _prepare_locked(self, command: RuntimeCommand, namespace: NetworkNamespace) -> None:
        spec = self._spec
        if self._sandbox.options.egress is not None:
            self._egress = Egress(self._sandbox.options.egress, namespace)
        self._cgroup.create(
            Limits(
                memory_bytes=spec.memory_limit_mb * 1024 * 1024,
                vcpus=spec.vcpus,
                pids=self._sandbox.options.pids_limit,
            )
        )
        self._cgroup_made = True
        log_dir = spec.log_socket.parent
        log_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(log_dir, 0o755)
        if spec.log_socket.exists():
            os.chmod(spec.log_socket, 0o666)
        self._bundle.mkdir(parents=True, exist_ok=True)
        prefix = spec.interpreter.prefix
        read_only = self._sandbox.system_dirs
        if not any(prefix.is_relative_to(d) for d in read_only):
            self._sandbox.add_mount_point(prefix)
            read_only = (*read_only, prefix)
        config = oci.oci_config(
            oci.ContainerInputs(
                argv=_as_pid1(command.argv, command.output_socket),
                env=command.env,
                rootfs=self._sandbox.rootfs,
                code_dir=spec.code_dir,
                runtime_dir=spec.interpreter.executable.parent.parent,
                log_dir=log_dir,
                read_only_dirs=read_only,
                network_namespace=namespace.path,
                cgroup_path=self._cgroup.runtime_path,
                tmp_size_mb=spec.ephemeral_storage_mb,
                pids_limit=self._sandbox.options.pids_limit,
            )
        )
        (self._bundle / "config.json").write_text(json.dumps(config))

    def release(self) -> None:
        """Kill what is left and free the network, cgroup and bundle (idempotent)."""
        with self._lock:
            self._release_locked()

    def _release_locked(self) -> None:
        if self._cgroup_made:
            self._cgroup.kill_all()
            self._cgroup.remove()
            self._cgroup_made = False
        if self._egress is not None:
            self._egress.close()
            self._egress = None
        if self._namespace is not None:
            self._namespace.close()
            self._namespace = None
        shutil.rmtree(self._bundle, ignore_errors=True)

    def close(self) -> None:
        self._closed = True
        self.release()


class ContainerSandbox:
    """Runs each execution environment in its own runc container."""

    name = "container"
    isolated = True

    def __init__(self, options: ContainerOptions) -> None:
        self.options = options
        self.state_dir = options.run_dir / "runc"
        self.rootfs = options.run_dir / "rootfs"
        self.cgroups = CgroupTree(options.cgroup_name)
        self.system_dirs = tuple(
            Path(d) for d in SYSTEM_DIRS if Path(d).is_dir() and not Path(d).is_symlink()
        )

    def setup(self) -> None:
        """Build the skeleton, claim Corral's cgroups and run one container to be sure.

        Raises:
            errors.SandboxError: containers cannot run here; the message says why.
        """
        if shutil.which(self.options.runc) is None:
            raise errors.SandboxError(
                f"{self.options.runc!r} not found: install runc (Debian: apt install runc)"
            )
        build_rootfs(
            self.rootfs,
            extra_dirs=(),
            nameserver=SLIRP_DNS if self.options.egress else None,
        )
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.cgroups.create()
        self._probe()

    def add_mount_point(self, directory: Path) -> None:
        """Make sure the skeleton has ``directory`` (for a bind mount at the same path)."""
        current = self.rootfs
        for part in directory.parts[1:]:
            current = current / part
            if not current.is_dir():
                with contextlib.suppress(FileExistsError):
                    current.mkdir(mode=0o755)
                os.chmod(current, 0o755)

    def _probe(self) -> None:
        """Run ``true`` in a container configured like the real ones."""
        bundle = self.options.run_dir / "probe"
        bundle.mkdir(parents=True, exist_ok=True)
        namespace = NetworkNamespace()
        cgroup = self.cgroups.environment("probe")
        try:
            cgroup.create(Limits(memory_bytes=64 * 1024 * 1024, vcpus=1, pids=16))
            config = oci.oci_config(
                oci.ContainerInputs(
                    argv=["/usr/bin/true"],
                    env={"PATH": "/usr/bin:/bin"},
                    rootfs=self.rootfs,
                    code_dir=bundle,
                    runtime_dir=bundle,
                    log_dir=bundle,
                    read_only_dirs=self.system_dirs,
                    network_namespace=namespace.path,
                    cgroup_path=cgroup.runtime_path,
                    tmp_size_mb=1,
                    pids_limit=16,
                )
            )
            (bundle / "config.json").write_text(json.dumps(config))
            done = subprocess.run(
                [
                    self.options.runc,
                    "--root",
                    str(self.state_dir),
                    "run",
                    "--bundle",
                    str(bundle),
                    "corral-probe",
                ],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=30,
                pass_fds=(namespace.fd,),
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise errors.SandboxError(f"runc could not run a test container: {exc}") from exc
        finally:
            namespace.socket.close()
            namespace.close()
            cgroup.kill_all()
            cgroup.remove()
            shutil.rmtree(bundle, ignore_errors=True)
        if done.returncode != 0:
            detail = (done.stderr or done.stdout).strip().splitlines()
            raise errors.SandboxError(
                f"runc could not run a test container: {detail[-1] if detail else 'no output'}"
            )
        if self.options.egress is not None:
            probe_ns = NetworkNamespace(port=0)
            try:
                Egress(self.options.egress, probe_ns).close()
            finally:
                probe_ns.socket.close()
                probe_ns.close()

    def prepare(self, spec: SandboxSpec) -> SandboxSlot:
        return _ContainerSlot(self, spec)

    def close(self) -> None:
        self.cgroups.sweep()

    def describe(self) -> dict[str, str]:
        network = (
            "outbound through slirp4netns (host loopback unreachable)"
            if self.options.egress
            else "none (loopback only)"
        )
        return {
            "sandbox": self.name,
            "isolation": f"runc containers, cgroup v{self.cgroups.version}",
            "network": network,
        }

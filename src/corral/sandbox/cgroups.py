"""Control groups of execution environments, on cgroup v1 and v2 hosts.

Corral creates one cgroup per environment and puts the limits there itself (memory =
MemorySize with no swap, CPU quota = the environment's vCPUs, a pids limit); runc runs the
container in a child cgroup (``runtime``) that it creates and removes. Keeping the limits
one level up means the counters Corral reads outlive the container: after the runtime dies
Corral can still tell whether the kernel killed it for memory (``oom_kill``).

Layout (``<root>`` is ``/sys/fs/cgroup`` on v2, ``/sys/fs/cgroup/<controller>`` on v1)::

    <root>/corral-<hash>/<environment id>/            limits, counters (Corral)
    <root>/corral-<hash>/<environment id>/runtime/    the container's processes (runc)

A host is v2 when ``/sys/fs/cgroup`` itself is a cgroup2 mount; a hybrid host (v1
controllers plus an empty ``unified`` tree) is driven through v1, as runc does.
"""

from __future__ import annotations

import contextlib
import os
import signal
from dataclasses import dataclass
from pathlib import Path

from corral.core import errors

__all__ = ["CgroupTree", "EnvironmentCgroup", "Limits", "detect_version"]

_CGROUP2_MAGIC = 0x63677270
_V1_CONTROLLERS = ("memory", "cpu", "cpuacct", "pids")
_CPU_PERIOD_US = 100_000
RUNTIME_LEAF = "runtime"


def detect_version(root: Path = Path("/sys/fs/cgroup")) -> int:
    """2 on a unified (cgroup v2) host, 1 on v1 or hybrid hosts."""
    if (root / "cgroup.controllers").exists():
        return 2
    return 1


@dataclass(frozen=True)
class Limits:
    """What one environment may use."""

    memory_bytes: int
    vcpus: int
    pids: int


def _write(path: Path, value: str) -> None:
    try:
        path.write_text(value)
    except OSError as exc:
        raise errors.SandboxError(f"could not write {value!r} to {path}: {exc}") from exc


def _read_int(path: Path) -> int:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0


def _read_keyed(path: Path, key: str) -> int:
    """The value of ``key`` in a flat-keyed file such as ``memory.stat``."""
    try:
        text = path.read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name == key:
            with contextlib.suppress(ValueError):
                return int(value)
    return 0


def _procs(directory: Path) -> list[int]:
    """Pids in ``directory`` and every cgroup below it."""
    found: list[int] = []
    for current, _dirs, files in os.walk(directory):
        if "cgroup.procs" not in files:
            continue
        with contextlib.suppress(OSError, ValueError):
            found.extend(int(p) for p in Path(current, "cgroup.procs").read_text().split())
    return found


def _remove_tree(directory: Path) -> None:
    """``rmdir`` a cgroup and its children, deepest first (cgroupfs has no ``rm -r``)."""
    if not directory.is_dir():
        return
    for current, _dirs, _files in sorted(os.walk(directory), key=lambda w: -len(w[0])):
        with contextlib.suppress(FileNotFoundError):
            os.rmdir(current)


class EnvironmentCgroup:
    """The cgroup of one environment, in one or every v1 hierarchy."""

    def __init__(self, tree: CgroupTree, name: str) -> None:
        self._tree = tree
        self.relative = f"{tree.name}/{name}"

    @property
    def runtime_path(self) -> str:
        """The cgroup path runc gets (``linux.cgroupsPath``)."""
        return f"/{self.relative}/{RUNTIME_LEAF}"

    def _dir(self, controller: str) -> Path:
        return self._tree.controller_root(controller) / self.relative

    def create(self, limits: Limits) -> None:
        """Make the cgroup and apply ``limits``.

        Raises:
            errors.SandboxError: the cgroup filesystem refused.
        """
        try:
            for controller in self._tree.controllers:
                self._dir(controller).mkdir(exist_ok=True)
        except OSError as exc:
            raise errors.SandboxError(f"could not create cgroup {self.relative}: {exc}") from exc
        quota = limits.vcpus * _CPU_PERIOD_US
        if self._tree.version == 2:
            base = self._dir("")
            _write(base / "memory.max", str(limits.memory_bytes))
            with contextlib.suppress(errors.SandboxError):
                _write(base / "memory.swap.max", "0")
            # The whole environment goes when one process is killed for memory, as on AWS.
            with contextlib.suppress(errors.SandboxError):
                _write(base / "memory.oom.group", "1")
            _write(base / "cpu.max", f"{quota} {_CPU_PERIOD_US}")
            _write(base / "pids.max", str(limits.pids))
            _write(base / "cgroup.subtree_control", "+memory +cpu +pids")
            return
        memory = self._dir("memory")
        _write(memory / "memory.limit_in_bytes", str(limits.memory_bytes))
        if (memory / "memory.memsw.limit_in_bytes").exists():
            _write(memory / "memory.memsw.limit_in_bytes", str(limits.memory_bytes))
        with contextlib.suppress(errors.SandboxError):
            _write(memory / "memory.swappiness", "0")
        cpu = self._dir("cpu")
        _write(cpu / "cpu.cfs_period_us", str(_CPU_PERIOD_US))
        _write(cpu / "cpu.cfs_quota_us", str(quota))
        _write(self._dir("pids") / "pids.max", str(limits.pids))

    def memory_bytes(self) -> int:
        """Memory in use, without reclaimable file cache (as ``docker stats`` counts)."""
        if self._tree.version == 2:
            base = self._dir("")
            used = _read_int(base / "memory.current")
            inactive = _read_keyed(base / "memory.stat", "inactive_file")
        else:
            base = self._dir("memory")
            used = _read_int(base / "memory.usage_in_bytes")
            inactive = _read_keyed(base / "memory.stat", "total_inactive_file")
        return max(0, used - inactive)

    def peak_memory_bytes(self) -> int:
        """The highest memory use so far (kernel-tracked, so no spike is missed)."""
        if self._tree.version == 2:
            return _read_int(self._dir("") / "memory.peak")
        return _read_int(self._dir("memory") / "memory.max_usage_in_bytes")

    def cpu_seconds(self) -> float:
        if self._tree.version == 2:
            return _read_keyed(self._dir("") / "cpu.stat", "usage_usec") / 1e6
        return _read_int(self._dir("cpuacct") / "cpuacct.usage") / 1e9

    def oom_kills(self) -> int:
        """How many processes the kernel killed here for exceeding the memory limit.

        v2 counts for the whole subtree. v1 counts in the victim's own cgroup, runc's leaf,
        which runc removes when the runtime exits: after that only ``limit_hits`` is left.
        """
        if self._tree.version == 2:
            return _read_keyed(self._dir("") / "memory.events", "oom_kill")
        memory = self._dir("memory")
        return _read_keyed(memory / "memory.oom_control", "oom_kill") + _read_keyed(
            memory / RUNTIME_LEAF / "memory.oom_control", "oom_kill"
        )

    def reached_limit(self) -> bool:
        """Whether memory use ever reached the limit (reclaim, and possibly an OOM kill)."""
        if self._tree.version == 2:
            return _read_keyed(self._dir("") / "memory.events", "max") > 0
        # v1: recent kernels no longer count ``memory.failcnt``; the peak tells.
        memory = self._dir("memory")
        limit = _read_int(memory / "memory.limit_in_bytes")
        return limit > 0 and _read_int(memory / "memory.max_usage_in_bytes") >= limit

    def pids(self) -> list[int]:
        """Every process of the environment (host pids)."""
        return _procs(self._dir("" if self._tree.version == 2 else "pids"))

    def kill_all(self) -> None:
        """SIGKILL every process, however many times they fork meanwhile (bounded)."""
        if self._tree.version == 2:
            kill = self._dir("") / "cgroup.kill"
            if kill.exists():
                with contextlib.suppress(OSError):
                    kill.write_text("1")
                    return
        for _ in range(50):
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)

    def remove(self) -> None:
        """Remove the cgroup (its processes must be gone)."""
        for controller in self._tree.controllers:
            with contextlib.suppress(OSError):
                _remove_tree(self._dir(controller))


class CgroupTree:
    """Corral's own subtree of the host's cgroups: ``corral-<hash>``."""

    def __init__(self, name: str, root: Path = Path("/sys/fs/cgroup")) -> None:
        self.name = name
        self.root = root
        self.version = detect_version(root)
        self.controllers: tuple[str, ...] = ("",) if self.version == 2 else _V1_CONTROLLERS

    def controller_root(self, controller: str) -> Path:
        return self.root / controller if controller else self.root

    def create(self) -> None:
        """Create Corral's subtree, killing what a previous run left in it.

        Raises:
            errors.SandboxError: cgroups cannot be managed here (not root, read-only).
        """
        self.sweep()
        try:
            for controller in self.controllers:
                (self.controller_root(controller) / self.name).mkdir(exist_ok=True)
        except OSError as exc:
            raise errors.SandboxError(f"could not create cgroup {self.name}: {exc}") from exc
        if self.version == 2:
            with contextlib.suppress(errors.SandboxError):
                _write(self.root / "cgroup.subtree_control", "+memory +cpu +pids")
            _write(self.root / self.name / "cgroup.subtree_control", "+memory +cpu +pids")

    def environment(self, name: str) -> EnvironmentCgroup:
        return EnvironmentCgroup(self, name)

    def sweep(self) -> None:
        """Kill every process left under Corral's subtree and remove it."""
        for controller in self.controllers:
            top = self.controller_root(controller) / self.name
            if not top.is_dir():
                continue
            for child in top.iterdir():
                if child.is_dir():
                    leftover = EnvironmentCgroup(self, child.name)
                    leftover.kill_all()
            with contextlib.suppress(OSError):
                _remove_tree(top)

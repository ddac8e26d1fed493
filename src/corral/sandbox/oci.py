"""The OCI runtime configuration (``config.json``) of one execution environment's container.

Pure: inputs in, a JSON-ready dict out (unit-tested). What it asks of runc:

* the shared read-only skeleton (``sandbox.rootfs``) as root, host system directories,
  the Python installation and the runtime bind-mounted read-only and ``nosuid``;
* the function's code read-only at ``/var/task``; a ``tmpfs`` of EphemeralStorage size at
  ``/tmp`` (the only writable place); the log socket directory at ``/run/corral``;
* new pid, mount, ipc and uts namespaces, and the environment's own network namespace;
* the runtime user (uid 993), no capabilities, ``noNewPrivileges``, a pids limit, and
  the usual masked ``/proc`` paths.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from corral.sandbox.rootfs import RUNTIME_GID, RUNTIME_UID

__all__ = ["ContainerInputs", "LOG_DIR", "RUNTIME_DIR", "TASK_ROOT", "oci_config"]

TASK_ROOT = Path("/var/task")
RUNTIME_DIR = Path("/var/runtime")
LOG_DIR = Path("/run/corral")

_MASKED = (
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
)
_READ_ONLY = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")


@dataclass(frozen=True)
class ContainerInputs:
    """Everything the configuration depends on."""

    argv: Sequence[str]
    env: Mapping[str, str]
    rootfs: Path
    code_dir: Path
    runtime_dir: Path
    log_dir: Path
    read_only_dirs: Sequence[Path]
    network_namespace: Path
    cgroup_path: str
    tmp_size_mb: int
    pids_limit: int
    hostname: str = "localhost"


def _bind(source: Path, destination: Path, *, writable: bool = False) -> dict[str, Any]:
    return {
        "destination": str(destination),
        "type": "bind",
        "source": str(source),
        "options": ["rbind", "rw" if writable else "ro", "nosuid", "nodev"],
    }


def oci_config(inputs: ContainerInputs) -> dict[str, Any]:
    """The ``config.json`` runc runs."""
    mounts: list[dict[str, Any]] = [
        {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid"]},
        {
            "destination": "/dev",
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["nosuid", "noexec", "strictatime", "mode=755", "size=1024k"],
        },
        {
            "destination": "/dev/shm",
            "type": "tmpfs",
            "source": "shm",
            "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        },
        {
            "destination": "/tmp",
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["nosuid", "nodev", "mode=1777", f"size={inputs.tmp_size_mb}m"],
        },
    ]
    mounts += [_bind(path, path) for path in inputs.read_only_dirs]
    mounts += [
        _bind(inputs.runtime_dir, RUNTIME_DIR),
        _bind(inputs.code_dir, TASK_ROOT),
        _bind(inputs.log_dir, LOG_DIR),
    ]
    no_caps: list[str] = []
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False,
            "user": {"uid": RUNTIME_UID, "gid": RUNTIME_GID},
            "args": list(inputs.argv),
            "env": [f"{key}={value}" for key, value in inputs.env.items()],
            "cwd": str(TASK_ROOT),
            "capabilities": {
                "bounding": no_caps,
                "effective": no_caps,
                "permitted": no_caps,
                "inheritable": no_caps,
                "ambient": no_caps,
            },
            # Lambda quota: 1,024 file descriptors.
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": str(inputs.rootfs), "readonly": True},
        "hostname": inputs.hostname,
        "mounts": mounts,
        "linux": {
            "namespaces": [
                {"type": "pid"},
                {"type": "ipc"},
                {"type": "uts"},
                {"type": "mount"},
                {"type": "network", "path": str(inputs.network_namespace)},
            ],
            "cgroupsPath": inputs.cgroup_path,
            "resources": {
                "pids": {"limit": inputs.pids_limit},
                "devices": [{"allow": False, "access": "rwm"}],
            },
            "maskedPaths": list(_MASKED),
            "readonlyPaths": list(_READ_ONLY),
        },
    }
